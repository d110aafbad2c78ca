//! git-dgrid: a decentralized task grid on any git remote.
//!
//! Data flows one way: the CLI parses, a library operation decides, a grid transition writes a commit,
//! git pushes it (`docs/ARCHITECTURE.md#compare-and-swap`).
//!
//! Modules sit in layers that use only the layers below them (`docs/ARCHITECTURE.md#layers`;
//! the table and the tests that keep it are in `layers/`): base (config, log, exit, time, text) <
//! contract (task, fields, layout, node, problem, validate) < git plumbing (odb, gitcmd, repo,
//! hooks) < grid; exec uses the contract only; worker and dashboard use the grid; cli uses all.

#[macro_use]
mod macros;

pub mod cli;
pub mod config;
pub mod dashboard;
pub mod exec;
pub mod exit;
pub mod fields;
pub mod gitcmd;
pub mod grid;
pub mod hooks;
#[cfg(test)]
mod layers;
pub mod layout;
pub mod log;
pub mod node;
pub mod odb;
pub mod problem;
pub mod quorum;
pub mod repo;
pub mod secrets;
pub mod settings;
pub mod task;
pub mod text;
pub mod time;
pub mod trust;
pub mod validate;
pub mod worker;

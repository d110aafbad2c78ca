//! git-dgrid: a decentralized task grid on any git remote.
//!
//! Data flows one way: the CLI parses, a library operation decides, a grid transition writes a commit,
//! git pushes it. See DESIGN.md for the protocol.

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
pub mod layout;
pub mod log;
pub mod node;
pub mod odb;
pub mod problem;
pub mod repo;
pub mod settings;
pub mod task;
pub mod validate;
pub mod worker;

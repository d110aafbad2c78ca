//! Executors: how a task's command runs. Only the docker executor exists; it never touches git.

pub mod capture;
pub mod docker;
pub mod registry;
pub mod secrets_mount;
pub mod verdict;

//! Exit codes scripts can rely on, the same for every command.

use std::process::ExitCode;

/// Done: valid, claimed, submitted.
pub const OK: u8 = 0;
/// A clean "no": files invalid, nothing to claim, a task failed, an unknown id.
pub const NO: u8 = 1;
/// Usage error, git error, remote refused, or anything unexpected.
pub const ERROR: u8 = 2;

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

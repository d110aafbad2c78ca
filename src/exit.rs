//! Exit codes scripts can rely on, the same for every command, and the one rule that turns how a
//! command ended into a code and a message (the README's "Exit codes" table).
//!
//! Commands return `Result<()>`. `Ok` is 0. A clean "no" is an [`No`] error (exit 1, its message
//! printed as it is: it is an answer, not a failure). A closed stdout (`git dgrid status | head -1`)
//! ends the command quietly with [`CLOSED_PIPE`]. Everything else is `error: ...` with its context
//! chain, exit 2. Errors of lower layers that mean "no" are turned into [`No`] by the command line
//! (`cli::exit_kind`), which knows them; this module knows none of them.

use std::io::Write;
use std::process::ExitCode;

/// Done: valid, claimed, submitted.
pub const OK: u8 = 0;
/// A clean "no": files invalid, nothing to claim, a task failed, an unknown id.
pub const NO: u8 = 1;
/// Usage error, git error, remote refused, or anything unexpected.
pub const ERROR: u8 = 2;
/// Whoever read stdout stopped reading: what a shell reports for a process killed by SIGPIPE
/// (128 + 13), as `git log | head -1` does for git, so `set -o pipefail` sees the same for both.
pub const CLOSED_PIPE: u8 = 141;

/// A clean "no" (exit 1). `message` is printed on stderr as it is; `None` when the command has
/// already said why (e.g. it listed the problems it found).
#[derive(Debug)]
pub struct No {
    pub message: Option<String>,
}

impl No {
    pub fn new(message: impl Into<String>) -> No {
        No {
            message: Some(message.into()),
        }
    }

    /// A "no" whose reasons are already printed.
    pub fn said() -> No {
        No { message: None }
    }
}

impl std::fmt::Display for No {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.as_deref().unwrap_or("no"))
    }
}

impl std::error::Error for No {}

/// Ends the command with this code and nothing printed: someone else's status passed on (a
/// chained git hook's), which that someone has explained already.
#[derive(Debug)]
pub struct PassOn(pub u8);

impl std::fmt::Display for PassOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for PassOn {}

/// How a command that did not succeed ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A clean "no", with what to print (nothing if already said).
    No(Option<String>),
    /// Stdout was closed by its reader: end quietly.
    ClosedPipe,
    /// End with this code, print nothing.
    PassOn(u8),
    /// Anything else: `error: ...`, exit 2.
    Error,
}

/// The kind of a failed command's error, for errors this module knows: [`No`] (with the context
/// it was given, if any), [`PassOn`], and a `BrokenPipe` anywhere in the chain.
pub fn kind(error: &anyhow::Error) -> Kind {
    if is_closed_pipe(error) {
        return Kind::ClosedPipe;
    }
    if let Some(pass) = error.downcast_ref::<PassOn>() {
        return Kind::PassOn(pass.0);
    }
    if let Some(no) = error.downcast_ref::<No>() {
        return Kind::No(no.message.as_ref().map(|_| format!("{error:#}")));
    }
    Kind::Error
}

/// Whether writing failed because the reading end of a pipe went away.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints what `kind` says to print for `error` on stderr and returns the exit code.
pub fn report(error: &anyhow::Error, kind: Kind) -> ExitCode {
    // A closed stderr must not turn into a panic either: what cannot be said is not said.
    let mut stderr = std::io::stderr().lock();
    let code = match kind {
        Kind::No(message) => {
            if let Some(message) = message {
                let _ = writeln!(stderr, "{}", crate::text::printable(&message));
            }
            NO
        }
        Kind::ClosedPipe => CLOSED_PIPE,
        Kind::PassOn(code) => code,
        Kind::Error => {
            crate::log::error(&format!("{error:#}"));
            ERROR
        }
    };
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    fn closed() -> anyhow::Error {
        anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }

    #[test]
    fn every_ending_has_one_kind() {
        assert_eq!(kind(&anyhow::anyhow!("boom")), Kind::Error);
        assert_eq!(
            kind(&No::new("nothing to claim").into()),
            Kind::No(Some("nothing to claim".into()))
        );
        assert_eq!(kind(&No::said().into()), Kind::No(None));
        let with_context = Err::<(), _>(No::new("id taken")).context("nothing submitted");
        assert_eq!(
            kind(&with_context.unwrap_err()),
            Kind::No(Some("nothing submitted: id taken".into()))
        );
        assert_eq!(kind(&PassOn(7).into()), Kind::PassOn(7));
        assert_eq!(kind(&closed()), Kind::ClosedPipe);
        let deep = Err::<(), _>(closed()).context("cannot print the table");
        assert_eq!(kind(&deep.unwrap_err()), Kind::ClosedPipe);
        let other_io = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(kind(&other_io), Kind::Error);
    }
}

//! The grid on git: a snapshot of the state at a commit (read), transitions that turn a snapshot and
//! an intent into a commit (write), and the compare-and-swap push loop that lands them (sync).

pub mod added;
pub mod admission;
pub mod archive;
pub mod archive_run;
pub mod atomic_push;
pub mod claim;
pub mod compact;
pub mod cycle;
mod cycle_kind;
mod cycle_pass;
pub mod inspect;
pub mod location;
pub mod manage;
pub mod ownership;
pub mod quorum;
pub mod quorum_adaptive;
mod quorum_upkeep;
pub mod rate_limit;
pub mod reap;
mod record;
mod rules;
pub mod signers;
pub mod snapshot;
pub mod start_failure;
pub mod submit;
pub mod sync;
#[cfg(test)]
pub mod testkit;
pub mod transact;
pub mod writers;

/// Who commits a transition; re-exported so layers above the grid never name the object store.
pub use crate::odb::{Identity, NODE_EMAIL_DOMAIN};
message_error!(
    /// A transition refuses the user's input as it is (an id taken, unknown, or in a state the
    /// transition does not apply to): nothing changed, and retrying will not help.
    Conflict
);

pub use location::Grid;
pub use snapshot::Snapshot;
pub use transact::{Change, Outcome};

//! The grid on git: a snapshot of the state at a commit (read), plans that turn a snapshot and an
//! intent into a change, and the compare-and-swap loop that lands them (engine).
//!
//! This file is the grid's only public surface: the rest of the crate, the benches and the tests
//! name `crate::grid::Thing` (`git_dgrid::grid::Thing`), never a room or a file inside. Inside,
//! one private module per concern (a room), each file in it visible to the grid only:
//!
//! | room          | holds                                                                      |
//! |---------------|----------------------------------------------------------------------------|
//! | `engine/`     | where the grid is (`Grid`), fetch and push, the compare-and-swap loop      |
//! | `read/`       | the snapshot at a commit, who added a file, what `validate` reads, writers |
//! | `plan/`       | submit, claim, cancel and retry, ownership of a node id, and the worker's  |
//! |               | transition: `cycle` (the pipeline of phases), `cycle_kind` (plain or       |
//! |               | replicated, decided once per task), `cycle_pass`, `record`, start failures |
//! | `replicated/` | replicated tasks' transitions and upkeep, adaptive replication             |
//! | `rules/`      | what every plan shares: attempts, the lost result, the take-back (`reap`)  |
//! | `history/`    | the archive of results (`dgrid-archive`) and compaction of `main`          |
//! | `policy/`     | the operator's admission gate and the signers it trusts                    |
//!
//! The arrows between rooms go one way (`src/layers/graph.rs` holds the same table as `ROOMS` and a
//! test fails on any other arrow, and on an import cycle between files):
//!
//! - `read` -> (no other room)
//! - `engine` -> `read`: a plan is a closure over a snapshot;
//! - `policy` -> `read`: the gate judges task files;
//! - `rules` -> `read`: the take-back reads node records;
//! - `replicated` -> `rules`, `read`, `engine`, `policy`: the rules every plan shares, and the one
//!   take-back rule;
//! - `plan` -> `replicated`, `rules`, `read`, `engine`, `policy`: a claim passes the gate; the
//!   transition hands replicated tasks over to `replicated` (in `cycle_kind` only, and in the
//!   claim's eligibility);
//! - `history` -> `plan`, `rules`, `read`, `engine`, `policy`: an archived late result is written as
//!   `record` writes it; the archive gate is an admission reason.
//!
//! Nothing points back at `plan::cycle`. `testkit` (tests only) may use every room.

mod engine;
mod history;
mod plan;
mod policy;
mod read;
mod replicated;
mod rules;
#[cfg(test)]
pub(crate) mod testkit;

/// Who commits a transition; re-exported so layers above the grid never name the object store.
pub use crate::odb::{Identity, NODE_EMAIL_DOMAIN};
message_error!(
    /// A transition refuses the user's input as it is (an id taken, unknown, or in a state the
    /// transition does not apply to): nothing changed, and retrying will not help.
    Conflict
);

// The engine: where the grid is, the remote's answers, the compare-and-swap loop.
pub use engine::grid::{Grid, Location};
pub use engine::rate_limit::{backoff as rate_limit_backoff, RateLimited};
pub use engine::sync::{push_cas, PushOutcome, RemoteRefused, RemoteTip};
pub use engine::transact::{Change, Outcome, Stats as TransactStats};

// Reading: the state at a commit, and what else is read from commits.
pub use read::added::added_by_all;
pub use read::inspect::{
    changed_at_tip, changed_paths_under, entries_at_commit, entries_from_disk, queue_length,
};
pub use read::snapshot::{
    load_node, load_result, load_spec, read_bytes, NodeRef, Snapshot, TaskRef,
};
pub use read::writers::{landed_since, stopped_nodes, LandedCommit};

// The plans, and the worker's transition.
pub use plan::claim::{plan as plan_claim, Claimable, Request as ClaimRequest};
pub use plan::cycle::{plan as plan_transition, Applied, Intent};
pub use plan::manage::{cancel, retry, rewrite_queued};
pub use plan::ownership::{NodeIdInUse, Ownership};
pub use plan::submit::{
    new_id as new_task_id, on_branch as submit_on_branch, plan as plan_submit, Prepared,
};
pub use rules::reap::{to_take_back as claims_to_take_back, DeadClaim, ReapPolicy};

// Replicated tasks: what the worker's cheap look between transitions asks.
pub use replicated::quorum::{
    claimed_attempt, holds_live_entry, in_progress as replicated_in_progress,
};
pub use replicated::quorum_upkeep::{
    due as replicated_work_due, to_take_back as entries_to_take_back,
};

// History: the archive and compaction.
pub use history::archive::{
    main_totals as archive_totals_on_main, parse_duration, Found as ArchivedTask,
    IndexEntry as ArchiveIndexEntry, Line as ArchiveLine, Retain, Totals as ArchiveTotals,
    View as ArchiveView,
};
pub use history::archive_gate::{archived_problems, ArchiveGate};
pub use history::archive_run::{
    append_late, fetch_archive, first_archived, local_archive, refuse_archived, run as run_archive,
    tracking_ref as archive_tracking_ref, Archived,
};
pub use history::compact::{
    compact, resurrection, Compacted, FROM_TRAILER as COMPACTED_FROM_TRAILER,
};

// Node policy: the admission gate and the signers it trusts.
pub use policy::admission::{
    Admission, ImagePatterns, SignatureCheck, Skip as AdmissionSkip, TaskTrust,
};
pub use policy::recipients_chain::trusted_recipients;
pub use policy::signers::{read_allowed_signers, GridSigners, Trust};

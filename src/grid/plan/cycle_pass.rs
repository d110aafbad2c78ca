//! One pass of the worker's transition (`cycle::plan`): what the worker asks for ([`Intent`]),
//! what it is told back ([`Applied`]), what every phase reads ([`Cycle`]: the snapshot, the
//! intent and what is worked out once per transition) and what the phases write ([`Pass`]: the
//! edits, the commit's summary, the tasks already touched, what the worker is told).

use crate::grid::plan::ownership::Ownership;
use crate::grid::plan::{claim, start_failure};
use crate::grid::read::snapshot::Snapshot;
use crate::grid::replicated::quorum;
use crate::grid::replicated::quorum_upkeep;
use crate::grid::rules::reap::{Fate, ReapPolicy};
use crate::node::NodeRecord;
use crate::odb::Edit;
use crate::task::{Attempt, Limits, TaskId, TaskResult, TaskSpec};
use crate::time::rfc3339;
use chrono::{DateTime, Utc};
use std::cell::OnceCell;
use std::collections::HashSet;
use std::time::Duration;

/// What the worker wants written.
pub struct Intent<'a> {
    pub node: NodeRecord,
    pub results: &'a [TaskResult],
    /// (id, attempt) to put back in the queue without using up the attempt.
    pub releases: &'a [(TaskId, Attempt)],
    /// (id, attempt, docker's message) of tasks whose container could not start here while docker
    /// answered: back to the queue with the failure noted, or failed as unrunnable.
    pub start_failures: &'a [(TaskId, Attempt, String)],
    /// (id, attempt) running here: leases renewed; reported back if the claim is no longer ours.
    pub running: &'a [(TaskId, Attempt)],
    /// Every task this process holds: running, being stopped, or with a result or release above.
    /// An in-progress task claimed by this node and not held is running nowhere: it goes back.
    pub held: &'a [String],
    pub claim: Option<&'a claim::Request>,
    /// Tasks this node must not claim now (it failed to start them a moment ago).
    pub excluded: &'a HashSet<String>,
    /// Write the node record even if nothing else changes (a heartbeat is due).
    pub heartbeat: bool,
    /// This process's claim to the node id, and whether it has written yet.
    pub ownership: &'a Ownership,
    /// Claims of this node (id, attempt, `claimed_at`) that its state dir noted as claimed ahead
    /// and never started (`worker::never_started`): from the previous run, they go back without
    /// using an attempt.
    pub never_started: &'a HashSet<(String, Attempt, String)>,
    pub lease: Duration,
    pub now: DateTime<Utc>,
    /// The node's secret for the salts of its commitments to replicated tasks' results
    /// (`quorum-key` in the worker's state dir; `quorum::salt`).
    pub reveal_key: &'a [u8],
    /// The queue of this snapshot as the worker parsed it once for this transition (it counted and
    /// probed it already); `None` parses it again for the claims.
    pub queue: Option<&'a claim::Claimable<'a>>,
}

#[derive(Debug, Default)]
pub struct Applied {
    pub claimed: Vec<TaskSpec>,
    /// (id, attempt) of results now on the grid (including late ones and ones already there).
    pub recorded: Vec<(TaskId, Attempt)>,
    /// Results whose task no longer exists anywhere.
    pub orphaned: Vec<(TaskId, Attempt)>,
    /// Results of replicated tasks committed or revealed, not settled yet: the worker keeps them
    /// (spooled), renews their leases through them and sends them again.
    pub awaiting: Vec<(TaskId, Attempt)>,
    /// Results of replicated tasks whose file holds no live entry of this node any more (its
    /// entry was dropped, or the task was put back): nothing to record, the worker drops them.
    pub discarded: Vec<(TaskId, Attempt)>,
    /// Running tasks whose claim is not ours any more: stop them.
    pub lost_claims: Vec<TaskId>,
    /// (id, node) of tasks taken back from nodes presumed dead, or from this node's previous run.
    pub reaped: Vec<(String, String)>,
    /// Tasks claimed by a push of this process that seemed to fail, put back in the queue.
    pub unheld: Vec<String>,
    /// Tasks the node's previous run claimed ahead and never started, put back in the queue.
    pub never_started: Vec<String>,
    /// Tasks that failed to start here once too often and were failed as unrunnable.
    pub unrunnable: Vec<TaskId>,
    /// Queued files that break the contract on every node, failed as invalid, with their problems.
    pub invalid: Vec<(TaskId, String)>,
    /// Something the worker should tell its operator (e.g. it replaced a forged node record).
    pub notices: Vec<String>,
}

impl Applied {
    /// Whether the worker learns something from this transition even when it writes nothing
    /// (results already settled, claims lost).
    pub(super) fn tells_the_worker(&self) -> bool {
        !(self.recorded.is_empty()
            && self.orphaned.is_empty()
            && self.lost_claims.is_empty()
            && self.awaiting.is_empty()
            && self.discarded.is_empty())
    }
}

/// What every phase of one transition reads: the snapshot, the intent, and what is worked out
/// once for all of them.
pub(super) struct Cycle<'a> {
    pub repo: &'a gix::Repository,
    pub snapshot: &'a Snapshot,
    pub intent: &'a Intent<'a>,
    pub limits: &'a Limits,
    /// This node's id.
    pub me: &'a str,
    /// Until when a lease this transition writes runs (a renewal, a commitment).
    pub lease_until: String,
    /// The context of the replicated transitions.
    pub quorum: quorum::Ctx<'a>,
    /// The replicated tasks with entries to take back, looked up once: the results drop dead
    /// entries of their own tasks, the take-back handles the other tasks.
    pub replicated_back: Vec<quorum_upkeep::DeadEntries<'a>>,
    live_nodes: OnceCell<usize>,
}

impl<'a> Cycle<'a> {
    pub fn new(
        repo: &'a gix::Repository,
        snapshot: &'a Snapshot,
        intent: &'a Intent<'a>,
        limits: &'a Limits,
        reaper: &mut dyn ReapPolicy,
    ) -> Cycle<'a> {
        let me = intent.node.id.as_str();
        let expires = intent.now
            + chrono::Duration::from_std(intent.lease).unwrap_or(chrono::Duration::minutes(15));
        let lease_until = rfc3339(expires);
        let quorum = quorum::Ctx {
            me,
            reveal_key: intent.reveal_key,
            now: intent.now,
            expires: lease_until.clone(),
            draw: None,
            consecutive_valid: quorum_upkeep::recorded_reputation(repo, snapshot, me)
                .map_or(0, |r| r.consecutive_valid),
        };
        let nothing_skipped = HashSet::new();
        let replicated_back = quorum_upkeep::to_take_back(
            repo,
            snapshot,
            me,
            intent.held,
            limits,
            reaper,
            &nothing_skipped,
        );
        Cycle {
            repo,
            snapshot,
            intent,
            limits,
            me,
            lease_until,
            quorum,
            replicated_back,
            live_nodes: OnceCell::new(),
        }
    }

    /// How many live nodes the grid has (`start_failure::live_nodes`), counted once if at all.
    pub fn live_nodes(&self) -> usize {
        *self
            .live_nodes
            .get_or_init(|| start_failure::live_nodes(self.repo, self.snapshot))
    }
}

/// What the phases of one transition write.
#[derive(Default)]
pub(super) struct Pass {
    /// The edits of plain tasks (and the node records), in the order the phases make them.
    pub edits: Vec<Edit>,
    /// The commit's summary, one item per thing done.
    pub summary: Vec<String>,
    /// What the worker is told.
    pub applied: Applied,
    /// The tasks a phase has handled already: later phases leave them alone (one change per
    /// task and transition).
    pub touched: HashSet<String>,
    /// What replicated tasks' transitions write (their edits, summary and the votes they settle):
    /// it lands after the plain edits.
    pub replicated: quorum::Effects,
}

impl Pass {
    /// Notes a claim of `node` on task `id` taken back, with its fate, for the summary and the
    /// worker; the same for a plain task's claim and a replicated task's entry.
    pub fn note_taken_back(&mut self, id: &str, node: &str, fate: Fate) {
        match fate {
            Fate::Unheld => {
                self.summary.push(format!("release {id}"));
                self.applied.unheld.push(id.to_string());
            }
            Fate::NeverStarted => {
                self.summary.push(format!("release {id}"));
                self.applied.never_started.push(id.to_string());
            }
            Fate::Reaped => {
                self.summary.push(format!("reap {id} from {node}"));
                self.applied.reaped.push((id.to_string(), node.to_string()));
            }
        }
    }
}

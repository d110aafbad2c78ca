//! Taking a claim back: the one rule for "may this in-progress task go back to the queue" (and, once
//! it does, its [`Fate`], the same for a plain task's claim and a replicated task's entry), used by
//! the transition that does it (`cycle::plan`) and by a worker's cheap look between transitions
//! that decides whether one is due. Two copies of the rule would drift apart: a worker that polls
//! by one and plans by the other either never takes anything back or pushes for nothing.
//! See `docs/ARCHITECTURE.md#leases-and-clocks`.

use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::layout::State;
use crate::task::{Attempt, Claim, Limits, TaskSpec};
use std::collections::HashSet;

/// Decides whether another node's claim may be taken back (its lease expired, judged with a skew
/// margin and the reader's own observation of the node's heartbeat).
pub trait ReapPolicy {
    fn may_reap(&mut self, snapshot: &Snapshot, task: &TaskRef, claim: &Claim) -> bool;
}

/// Whether a transition of node `me` takes back the claim `claim` on `task`:
/// - a claim of `me` that this process does not hold (in `held`) is running nowhere: a claim of the
///   node's previous run, or of a push of this process whose answer was lost;
/// - a claim of a node with no record is dead at once: every claim (a worker's, `git dgrid
///   claim`'s) lands with its node's record, so such a claim was pushed by hand, and with a lease
///   far ahead it would park the task;
/// - another node's claim goes back when `reaper` judges that node dead.
pub(crate) fn may_take_back(
    me: &str,
    held: &[String],
    snapshot: &Snapshot,
    task: &TaskRef,
    claim: &Claim,
    reaper: &mut dyn ReapPolicy,
) -> bool {
    if claim.node_id == me {
        !held.contains(&task.id)
    } else if !snapshot.nodes.iter().any(|n| n.id == claim.node_id) {
        true
    } else {
        reaper.may_reap(snapshot, task, claim)
    }
}

/// What becomes of a claim a transition takes back (a plain task's claim, or a replicated task's
/// entry as a claim): the one rule for both kinds, which then end it each their way (a plain task
/// requeued or failed as lost, an entry removed or dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// A claim of this node that this process does not hold, once the process has written: it came
    /// from a push of its own that the remote took but git reported as failed (a timeout, a dropped
    /// connection). It never started: no attempt used.
    Unheld,
    /// A claim of the node's previous run that it noted, durably, as claimed ahead and never
    /// started: no attempt used.
    NeverStarted,
    /// Another node's claim judged dead, or a claim of the node's previous run, which may have run
    /// it: the attempt counts.
    Reaped,
}

/// The fate of `claim` on task `task_id`, taken back by a transition of node `me`; `started`: this
/// process has written already; `never_started`: (id, attempt, `claimed_at`) of the claims the
/// node's state dir noted as claimed ahead and never started.
pub fn fate(
    me: &str,
    started: bool,
    never_started: &HashSet<(String, Attempt, String)>,
    task_id: &str,
    claim: &Claim,
) -> Fate {
    let ours = claim.node_id == me;
    if ours && started {
        Fate::Unheld
    } else if ours
        && never_started.contains(&(task_id.to_string(), claim.attempt, claim.claimed_at.clone()))
    {
        Fate::NeverStarted
    } else {
        Fate::Reaped
    }
}

/// An in-progress task that a transition takes back, with its spec and the claim being ended.
pub struct DeadClaim<'s> {
    pub task: &'s TaskRef,
    pub spec: TaskSpec,
    pub claim: Claim,
}

/// The in-progress tasks of `snapshot` (except those in `skip`) that a transition of node `me`
/// takes back, in the snapshot's order. Lazy: `.next().is_some()` answers "is anything due"
/// without reading every task. A task file that does not parse, or has no claim, is left alone
/// (`validate` reports it).
pub fn to_take_back<'a, 's: 'a>(
    repo: &'a gix::Repository,
    snapshot: &'s Snapshot,
    me: &'a str,
    held: &'a [String],
    limits: &'a Limits,
    reaper: &'a mut dyn ReapPolicy,
    skip: &'a HashSet<String>,
) -> impl Iterator<Item = DeadClaim<'s>> + 'a {
    snapshot
        .in_state(State::InProgress)
        .filter(|task| !skip.contains(&task.id))
        .filter_map(move |task| {
            let spec = snapshot::load_spec(repo, task, limits).ok()?;
            let claim = spec.claim.clone()?;
            may_take_back(me, held, snapshot, task, &claim, reaper).then_some(DeadClaim {
                task,
                spec,
                claim,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A policy with a fixed answer, counting how often it was asked.
    struct Judge {
        dead: bool,
        asked: u32,
    }

    impl ReapPolicy for Judge {
        fn may_reap(&mut self, _: &Snapshot, _: &TaskRef, _: &Claim) -> bool {
            self.asked += 1;
            self.dead
        }
    }

    fn task(id: &str) -> TaskRef {
        TaskRef {
            id: id.into(),
            state: State::InProgress,
            path: format!("tasks/in_progress/{id}.json"),
            blob: gix::ObjectId::null(gix::hash::Kind::Sha1),
            commit: gix::ObjectId::null(gix::hash::Kind::Sha1),
        }
    }

    fn claim(node: &str) -> Claim {
        serde_json::from_value(serde_json::json!({"node_id": node, "attempt": 1,
            "claimed_at": "2026-01-01T00:00:00Z", "lease_expires_at": "2026-01-01T00:15:00Z"}))
        .expect("a valid claim")
    }

    /// A grid with the records of nodes `a` and `b`.
    fn with_records() -> Snapshot {
        let mut snapshot = Snapshot::empty();
        for id in ["a", "b"] {
            snapshot.nodes.push(snapshot::NodeRef {
                id: id.into(),
                path: crate::layout::node_path(id),
                blob: gix::ObjectId::null(gix::hash::Kind::Sha1),
                sharded: true,
            });
        }
        snapshot
    }

    fn decide(me: &str, held: &[&str], claim_node: &str, dead: bool) -> (bool, u32) {
        let held: Vec<String> = held.iter().map(|s| s.to_string()).collect();
        let mut judge = Judge { dead, asked: 0 };
        let decision = may_take_back(
            me,
            &held,
            &with_records(),
            &task("t1"),
            &claim(claim_node),
            &mut judge,
        );
        (decision, judge.asked)
    }

    #[test]
    fn an_own_claim_goes_back_exactly_when_this_process_does_not_hold_it() {
        assert_eq!(decide("a", &[], "a", false), (true, 0));
        assert_eq!(decide("a", &["t2"], "a", false), (true, 0));
        assert_eq!(decide("a", &["t1"], "a", true), (false, 0));
    }

    #[test]
    fn a_claim_taken_back_is_unheld_never_started_or_reaped() {
        let noted: HashSet<(String, Attempt, String)> = [(
            "t1".to_string(),
            Attempt::FIRST,
            "2026-01-01T00:00:00Z".to_string(),
        )]
        .into();
        let none = HashSet::new();
        // This process has written: its own claim it does not hold never started.
        assert_eq!(fate("a", true, &noted, "t1", &claim("a")), Fate::Unheld);
        // The previous run's claim: never started only when its state dir noted it so.
        assert_eq!(
            fate("a", false, &noted, "t1", &claim("a")),
            Fate::NeverStarted
        );
        assert_eq!(fate("a", false, &none, "t1", &claim("a")), Fate::Reaped);
        assert_eq!(fate("a", false, &noted, "t2", &claim("a")), Fate::Reaped);
        // Another node's claim is reaped, whatever this node noted.
        assert_eq!(fate("a", true, &noted, "t1", &claim("b")), Fate::Reaped);
    }

    #[test]
    fn another_nodes_claim_goes_back_exactly_when_the_policy_judges_it_dead() {
        assert_eq!(decide("a", &[], "b", false), (false, 1));
        assert_eq!(decide("a", &[], "b", true), (true, 1));
        // Holding a task of the same id does not protect another node's claim on it.
        assert_eq!(decide("a", &["t1"], "b", true), (true, 1));
    }

    #[test]
    fn a_claim_of_a_node_with_no_record_is_dead_at_once() {
        // "ghost" has no record: whatever its lease says, nobody runs the task under it.
        assert_eq!(decide("a", &[], "ghost", false), (true, 0));
        assert_eq!(decide("a", &["t1"], "ghost", false), (true, 0));
    }
}

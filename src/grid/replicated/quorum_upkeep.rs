//! The upkeep of replicated tasks in progress (`grid::replicated::quorum`): leases of running instances,
//! releases, taking back the entries of dead nodes (judged per entry by `grid::rules::reap`'s rule),
//! what a settled result records, the voters' reputations, and whether an awaiting result has
//! work due (the worker's cheap look).

use super::quorum::{assess, finished_spec, in_progress, live_entry, sealable, Effects, Next};
use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::grid::rules::reap::{self, ReapPolicy};
use crate::grid::rules::{lost_result, used_last_attempt};
use crate::layout::{self, State};
use crate::node::{NodeRecord, Reputation};
use crate::odb::Edit;
use crate::quorum::{Assessment, Rule};
use crate::task::{Attempt, Limits, TaskResult, TaskSpec};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// Renews my entry's lease (a running instance); `false` when the file holds no live entry of
/// mine for `attempt` (the claim is lost: stop the container).
pub fn renew(
    task: &TaskRef,
    mut spec: TaskSpec,
    me: &str,
    attempt: Attempt,
    expires: &str,
    fx: &mut Effects,
) -> bool {
    let Some(i) = live_entry(&spec, me, attempt) else {
        return false;
    };
    spec.instances[i].lease_expires_at = expires.to_string();
    fx.edits.push(Edit::Write {
        path: task.path.clone(),
        content: spec.to_json(),
    });
    true
}

/// Removes my live entry for `attempt` (a release: shutdown, docker trouble): the attempt is not
/// used, and this node may claim the task again later. `false` when there is none.
pub fn release(
    task: &TaskRef,
    mut spec: TaskSpec,
    me: &str,
    attempt: Attempt,
    fx: &mut Effects,
) -> bool {
    let Some(i) = live_entry(&spec, me, attempt) else {
        return false;
    };
    spec.instances.remove(i);
    fx.edits.push(Edit::Write {
        path: task.path.clone(),
        content: spec.to_json(),
    });
    fx.summary.push(format!("release {}", spec.id));
    true
}

/// A replicated in-progress task with live entries a transition takes back (`reap` judges each
/// entry as it judges a single claim).
pub struct DeadEntries<'s> {
    pub task: &'s TaskRef,
    pub spec: TaskSpec,
    pub rule: Rule,
    pub entries: Vec<usize>,
}

impl DeadEntries<'_> {
    /// The entries to take back that are other nodes' (index, node): a node with a result for
    /// the task drops them in the same write as its result.
    pub fn entries_of_others(&self, me: &str) -> Vec<(usize, String)> {
        self.entries
            .iter()
            .map(|&i| (i, self.spec.instances[i].node_id.clone()))
            .filter(|(_, node)| node != me)
            .collect()
    }
}

/// The replicated in-progress tasks (not in `skip`) with entries a transition of `me` takes back.
pub fn to_take_back<'s>(
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    me: &str,
    held: &[String],
    limits: &Limits,
    reaper: &mut dyn ReapPolicy,
    skip: &HashSet<String>,
) -> Vec<DeadEntries<'s>> {
    let mut out = Vec::new();
    for task in snapshot.in_state(State::InProgress) {
        if skip.contains(&task.id) {
            continue;
        }
        let Ok(spec) = snapshot::load_spec(repo, task, limits) else {
            continue;
        };
        let Some(rule) = Rule::of(&spec) else {
            continue;
        };
        let entries: Vec<usize> = spec
            .instances
            .iter()
            .enumerate()
            .filter(|(_, e)| e.dropped.is_none())
            // My own revealed entry needs no process holding it: its vote is in the file (an
            // adaptive re-check rebuilds one from a result, with no worker behind it).
            .filter(|(_, e)| !(e.node_id == me && e.digest.is_some()))
            .filter(|(_, e)| reap::may_take_back(me, held, snapshot, task, &e.as_claim(), reaper))
            .map(|(i, _)| i)
            .collect();
        if !entries.is_empty() {
            out.push(DeadEntries {
                task,
                spec,
                rule,
                entries,
            });
        }
    }
    out
}

/// How a taken-back entry ends.
pub enum EntryEnding {
    /// Removed without using its attempt (this process never ran it).
    Removed,
    /// Dropped as lost with its node; the slot reopens.
    Dropped,
}

/// `spec` with the `dead` entries dropped, or, when one of them used its instance's last attempt,
/// the edits that fail the task as lost over `task`'s file.
pub fn take_back_others(
    task: &TaskRef,
    spec: TaskSpec,
    dead: &[(usize, String)],
    now: DateTime<Utc>,
) -> Result<TaskSpec, Vec<Edit>> {
    if dead.is_empty() {
        return Ok(spec);
    }
    let endings: Vec<(usize, EntryEnding)> = dead
        .iter()
        .map(|(i, _)| (*i, EntryEnding::Dropped))
        .collect();
    match take_back_spec(spec, &endings, now) {
        Next::InProgress { spec, .. } => Ok(*spec),
        finished => Err(finished.edits(task)),
    }
}

/// Takes back `entries` of `spec` (each with how it ends) over `task`'s file.
pub fn take_back(
    task: &TaskRef,
    spec: TaskSpec,
    entries: &[(usize, EntryEnding)],
    now: DateTime<Utc>,
    fx: &mut Effects,
) {
    fx.edits
        .extend(take_back_spec(spec, entries, now).edits(task));
}

/// [`take_back`] on the spec alone: a dropped entry stays (history, and its instance's attempts);
/// an instance that used its last attempt fails the task as lost, as a single task would.
pub fn take_back_spec(
    mut spec: TaskSpec,
    entries: &[(usize, EntryEnding)],
    now: DateTime<Utc>,
) -> Next {
    let mut lost = None;
    let mut removed = Vec::new();
    for (i, ending) in entries {
        match ending {
            EntryEnding::Removed => removed.push(*i),
            EntryEnding::Dropped => {
                let claim = spec.instances[*i].as_claim();
                spec.instances[*i].dropped =
                    Some(format!("node {} stopped heartbeating", claim.node_id));
                if lost.is_none() && used_last_attempt(&spec, &claim) {
                    lost = Some(claim);
                }
            }
        }
    }
    removed.sort_unstable();
    for i in removed.into_iter().rev() {
        spec.instances.remove(i);
    }
    match lost {
        Some(claim) => {
            let mut result = lost_result(&spec, &claim, now);
            result.task = Some(finished_spec(&spec));
            Next::Finished(State::Failed, Box::new(result))
        }
        None => Next::InProgress {
            spec: Box::new(spec),
            changed: true,
        },
    }
}

/// Whether a finished task's result counts my vote for `attempt` (settled with it: recorded).
pub fn among_votes(result: &TaskResult, me: &str, attempt: Attempt) -> bool {
    result.quorum.as_ref().is_some_and(|q| {
        q.votes
            .iter()
            .any(|v| v.node_id == me && v.attempt == attempt)
    })
}

/// `reputation` with `votes` of `node` applied (agreeing: valid; dissenting or a reveal that did
/// not match: invalid, and the run of valid ones starts over).
pub fn updated(
    reputation: Option<Reputation>,
    node: &str,
    votes: &[(String, bool)],
) -> Option<Reputation> {
    let mine: Vec<bool> = votes
        .iter()
        .filter(|(n, _)| n == node)
        .map(|(_, v)| *v)
        .collect();
    if mine.is_empty() {
        return reputation;
    }
    let mut r = reputation.unwrap_or_default();
    for valid in mine {
        if valid {
            r.valid += 1;
            r.consecutive_valid += 1;
        } else {
            r.invalid += 1;
            r.consecutive_valid = 0;
        }
    }
    Some(r)
}

/// The node records (other than `me`'s) whose reputation this transition's votes change, as edits.
pub fn reputation_edits(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
    votes: &[(String, bool)],
) -> Vec<Edit> {
    let nodes: BTreeMap<&str, ()> = votes
        .iter()
        .filter(|(n, _)| n != me)
        .map(|(n, _)| (n.as_str(), ()))
        .collect();
    let mut edits = Vec::new();
    for node in nodes.keys() {
        // A node without a readable record keeps none: the reputation is a cache, recomputable
        // from the results' quorum objects.
        let Some(mut record) = snapshot
            .nodes
            .iter()
            .find(|n| n.id == *node)
            .and_then(|n| snapshot::load_node(repo, n))
        else {
            continue;
        };
        record.reputation = updated(record.reputation, node, votes);
        edits.push(Edit::Write {
            path: layout::node_path(node),
            content: record.to_json(),
        });
    }
    edits
}

/// `me`'s reputation as the snapshot's record of it holds it: a heartbeat never overwrites it.
pub fn recorded_reputation(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
) -> Option<Reputation> {
    snapshot
        .nodes
        .iter()
        .find(|n| n.id == me)
        .and_then(|n| snapshot::load_node(repo, n))
        .and_then(|r: NodeRecord| r.reputation)
}

/// `me`'s reputation as adaptive replication may trust it: recomputed from
/// the settled results on `main` (their `quorum` objects), never more than the node's own
/// record says (the record is the cache; results archived off `main` only lower the recount).
/// A node writes its record with plain git as it likes, so the record alone never makes it
/// trusted; it is read first because recounting every result costs, and a record below the
/// threshold settles the question.
pub fn trusted_reputation(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
    limits: &Limits,
) -> Option<Reputation> {
    let recorded = recorded_reputation(repo, snapshot, me)?;
    if !crate::quorum::adaptive::solo_allowed(Some(&recorded)) {
        return Some(recorded);
    }
    let results: Vec<crate::task::TaskResult> = (snapshot.in_state(State::Completed))
        .chain(snapshot.in_state(State::Failed))
        .filter_map(|t| snapshot::load_result(repo, t, limits).ok())
        .collect();
    let recount = crate::quorum::reputation::recompute(results.iter())
        .remove(me)
        .unwrap_or_default();
    Some(Reputation {
        valid: recorded.valid.min(recount.valid),
        invalid: recorded.invalid.max(recount.invalid),
        consecutive_valid: recorded.consecutive_valid.min(recount.consecutive_valid),
    })
}

/// Whether a transition is due for these results awaiting settlement (the worker's cheap look):
/// my entry is to reveal, the task is to seal, settle (by me, agreeing), recruit or fail as
/// `no_quorum`, or it left `in_progress` (settled elsewhere, cancelled) or dropped my entry.
pub fn due(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
    results: &[TaskResult],
    limits: &Limits,
) -> bool {
    results.iter().any(|result| {
        let Some((_, spec, rule)) = in_progress(repo, snapshot, &result.task_id, limits) else {
            return true;
        };
        let Some(i) = live_entry(&spec, me, result.attempt()) else {
            return true;
        };
        let entry = &spec.instances[i];
        if entry.commitment.is_none() || (entry.sealed && entry.digest.is_none()) {
            return true;
        }
        match assess(&spec, &rule) {
            Assessment::Seal(indices) => !sealable(&spec, &rule, indices).is_empty(),
            Assessment::Recruit { .. } | Assessment::NoQuorum => true,
            Assessment::Decided { digest, .. } => entry.digest.as_deref() == Some(digest.as_str()),
            Assessment::Collecting { .. } | Assessment::Revealing => false,
        }
    })
}

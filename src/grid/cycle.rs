//! The worker's transition: in one commit, record finished results, put released tasks back,
//! renew the leases of running tasks, requeue the tasks of dead nodes, claim new tasks, and write the
//! node's heartbeat. One push per task in steady state (`docs/ARCHITECTURE.md#push-economy`).
//!
//! Late results (the task was taken over while this node was presumed dead):
//! - still in the queue or in progress elsewhere: this result is real work, so it is recorded as the
//!   task's result and the other claim ends (its node sees the claim gone and stops its container);
//! - already completed or failed: it is appended to that result's `late_results`, never dropped and
//!   never a second file;
//! - the task is gone (removed by a maintainer): nothing to record, the worker logs it.

use crate::grid::claim::{self, claim_edits};
use crate::grid::ownership::Ownership;
use crate::grid::quorum::{self, Landed};
use crate::grid::quorum_adaptive;
pub use crate::grid::reap::ReapPolicy;
use crate::grid::reap::{self, TakeBack};
use crate::grid::record::{record_result, replicated_elsewhere, Recording};
use crate::grid::rules::{lost_result, requeued, DEFAULT_MAX_ATTEMPTS};
use crate::grid::snapshot::{self, Snapshot, TaskRef};
use crate::grid::start_failure;
use crate::grid::transact::Change;
use crate::layout::{self, State};
use crate::node::NodeRecord;
use crate::odb::Edit;
use crate::task::{Attempt, Limits, Status, TaskId, TaskResult, TaskSpec};
use crate::time::rfc3339;
use anyhow::Result;
use chrono::{DateTime, Utc};
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
    /// (`quorum-key` in the worker's state dir; `grid::quorum::salt`).
    pub reveal_key: &'a [u8],
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
    /// Something the worker should tell its operator (e.g. it replaced a forged node record).
    pub notices: Vec<String>,
}

pub fn plan(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    intent: &Intent,
    limits: &Limits,
    reaper: &mut dyn ReapPolicy,
) -> Result<Option<Change<Applied>>> {
    let me = intent.node.id.as_str();
    let notice = intent.ownership.check(repo, snapshot, me, intent.now)?;
    let mut edits = Vec::new();
    let mut applied = Applied::default();
    applied.notices.extend(notice);
    let mut touched: HashSet<String> = HashSet::new();
    let mut summary: Vec<String> = Vec::new();

    let expires = intent.now
        + chrono::Duration::from_std(intent.lease).unwrap_or(chrono::Duration::minutes(15));
    let ctx = quorum::Ctx {
        me,
        reveal_key: intent.reveal_key,
        now: intent.now,
        expires: rfc3339(expires),
        draw: None,
        consecutive_valid: quorum::recorded_reputation(repo, snapshot, me)
            .map_or(0, |r| r.consecutive_valid),
    };
    // What replicated tasks' transitions write (their edits, and the votes they settle).
    let mut replicated = quorum::Effects::default();

    // Looked up once: the results below drop dead entries of their own tasks, the take-back
    // further down handles the other tasks.
    let nothing_skipped = HashSet::new();
    let replicated_back = quorum::to_take_back(
        repo,
        snapshot,
        me,
        intent.held,
        limits,
        reaper,
        &nothing_skipped,
    );
    for result in intent.results {
        let id = result.task_id.clone();
        let attempt = result.attempt();
        touched.insert(id.to_string());
        if let Some((task, spec, rule)) = quorum::in_progress(repo, snapshot, &id, limits) {
            // An adaptive task run alone settles on a draw from a commit after its reveal.
            let ctx = quorum::Ctx {
                draw: quorum_adaptive::is_solo(&spec, &rule)
                    .then(|| quorum_adaptive::draw_commit(repo, snapshot, &task.path, me))
                    .flatten()
                    .map(|c| c.to_string()),
                ..ctx.clone()
            };
            // Dead nodes' entries go in the same write as my result: the nodes awaiting a
            // quorum may be the only ones left to see them, and they write the file each time.
            let dead = replicated_back
                .iter()
                .find(|t| t.task.id == id.as_str())
                .map_or_else(Vec::new, |t| t.entries_of_others(me));
            let spec = match quorum::take_back_others(task, spec, &dead, intent.now) {
                Ok(spec) => spec,
                Err(failed) => {
                    replicated.edits.extend(failed);
                    applied.discarded.push((id, attempt));
                    continue;
                }
            };
            for (_, node) in &dead {
                summary.push(format!("reap {id} from {node}"));
                applied.reaped.push((id.to_string(), node.clone()));
            }
            match quorum::record(task, spec, &rule, result, &ctx, &mut replicated) {
                Landed::Awaiting => applied.awaiting.push((id, attempt)),
                Landed::Settled => applied.recorded.push((id, attempt)),
                Landed::NotMine => applied.discarded.push((id, attempt)),
            }
            continue;
        }
        match replicated_elsewhere(repo, snapshot, result, limits) {
            Some(Recording::AlreadyThere) => {
                applied.recorded.push((id, attempt));
                continue;
            }
            Some(_) => {
                applied.discarded.push((id, attempt));
                continue;
            }
            None => {}
        }
        match record_result(repo, snapshot, result, limits)? {
            Recording::Edits(e) => {
                edits.extend(e);
                summary.push(format!(
                    "{} {id}",
                    if result.status == Status::Success {
                        "complete"
                    } else {
                        "fail"
                    }
                ));
                applied.recorded.push((id, attempt));
            }
            Recording::AlreadyThere => applied.recorded.push((id, attempt)),
            Recording::Orphaned => applied.orphaned.push((id, attempt)),
        }
    }

    for (id, attempt) in intent.releases {
        touched.insert(id.to_string());
        if let Some((task, spec, _)) = quorum::in_progress(repo, snapshot, id, limits) {
            quorum::release(task, spec, me, *attempt, &mut replicated);
            continue;
        }
        if let Some((task, spec)) = our_claim(repo, snapshot, id, me, *attempt, limits) {
            edits.extend(Edit::move_file(
                &task.path,
                layout::task_path(State::Queue, id),
                requeued(spec, attempt.used_before()),
            ));
            summary.push(format!("release {id}"));
        }
    }

    let mut live_nodes = None;
    for (id, attempt, reason) in intent.start_failures {
        touched.insert(id.to_string());
        // An instance this node could not start goes back to the others (the worker keeps away
        // from the task a while); the single task's bounded count of failures is not kept.
        if let Some((task, spec, _)) = quorum::in_progress(repo, snapshot, id, limits) {
            quorum::release(task, spec, me, *attempt, &mut replicated);
            continue;
        }
        if let Some((task, spec)) = our_claim(repo, snapshot, id, me, *attempt, limits) {
            let live = *live_nodes.get_or_insert_with(|| start_failure::live_nodes(repo, snapshot));
            let (state, content) = start_failure::after_failure(
                spec,
                attempt.used_before(),
                me,
                reason,
                live,
                intent.now,
            );
            let verb = if state == State::Failed {
                "give up"
            } else {
                "release"
            };
            edits.extend(Edit::move_file(
                &task.path,
                layout::task_path(state, id),
                content,
            ));
            summary.push(format!("{verb} {id}"));
            if state == State::Failed {
                applied.unrunnable.push(id.clone());
            }
        }
    }

    for (id, attempt) in intent.running {
        if touched.contains(id.as_str()) {
            continue;
        }
        if let Some((task, spec, _)) = quorum::in_progress(repo, snapshot, id, limits) {
            if quorum::renew(task, spec, me, *attempt, &ctx.expires, &mut replicated) {
                touched.insert(id.to_string());
            } else {
                applied.lost_claims.push(id.clone());
            }
            continue;
        }
        match our_claim(repo, snapshot, id, me, *attempt, limits) {
            Some((task, mut spec)) => {
                if let Some(claim) = spec.claim.as_mut() {
                    claim.lease_expires_at = rfc3339(expires);
                }
                edits.push(Edit::Write {
                    path: task.path.clone(),
                    content: spec.to_json(),
                });
                touched.insert(id.to_string());
            }
            None => applied.lost_claims.push(id.clone()),
        }
    }

    let taken_back: Vec<TakeBack> =
        reap::to_take_back(repo, snapshot, me, intent.held, limits, reaper, &touched).collect();
    for TakeBack { task, spec, claim } in taken_back {
        // A duplicate id (invalid, reported by validate) is taken back once.
        if !touched.insert(task.id.clone()) {
            continue;
        }
        let ours = claim.node_id == me;
        let never_started = ours
            && intent.never_started.contains(&(
                task.id.clone(),
                claim.attempt,
                claim.claimed_at.clone(),
            ));
        // Once this process has written, a claim of this node that it does not hold came from a
        // push of its own that the remote took but git reported as failed (a timeout, a dropped
        // connection): the task never started, so it goes back without using an attempt. Before
        // that, it is a claim of the node's previous run, which may have run it: that attempt counts,
        // unless that run noted it as claimed ahead and never started.
        let (destination, content) = if ours && intent.ownership.started {
            summary.push(format!("release {}", task.id));
            applied.unheld.push(task.id.clone());
            (State::Queue, requeued(spec, claim.attempt.used_before()))
        } else if never_started {
            // The previous run noted, durably, that it never started this claim: no attempt used.
            summary.push(format!("release {}", task.id));
            applied.never_started.push(task.id.clone());
            (State::Queue, requeued(spec, claim.attempt.used_before()))
        } else {
            summary.push(format!("reap {} from {}", task.id, claim.node_id));
            applied
                .reaped
                .push((task.id.clone(), claim.node_id.clone()));
            if claim.attempt.used() >= spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS) {
                let result = lost_result(&spec, &claim, intent.now);
                (State::Failed, result.to_json())
            } else {
                (State::Queue, requeued(spec, claim.attempt.used()))
            }
        };
        edits.extend(Edit::move_file(
            &task.path,
            layout::task_path(destination, &task.id),
            content,
        ));
    }

    for quorum::TakeBack {
        task,
        spec,
        entries,
        ..
    } in replicated_back
    {
        if !touched.insert(task.id.clone()) {
            continue;
        }
        let endings: Vec<(usize, quorum::Ending)> = entries
            .into_iter()
            .map(|i| {
                let entry = &spec.instances[i];
                let ours = entry.node_id == me;
                let never_started = ours
                    && intent.never_started.contains(&(
                        task.id.clone(),
                        entry.attempt,
                        entry.claimed_at.clone(),
                    ));
                // The same rule as for a single claim (below the loop above): what this process
                // never ran goes without using its attempt.
                if ours && intent.ownership.started {
                    summary.push(format!("release {}", task.id));
                    applied.unheld.push(task.id.clone());
                    (i, quorum::Ending::Removed)
                } else if never_started {
                    summary.push(format!("release {}", task.id));
                    applied.never_started.push(task.id.clone());
                    (i, quorum::Ending::Removed)
                } else {
                    summary.push(format!("reap {} from {}", task.id, entry.node_id));
                    applied
                        .reaped
                        .push((task.id.clone(), entry.node_id.clone()));
                    (i, quorum::Ending::Dropped)
                }
            })
            .collect();
        quorum::take_back(task, spec, &endings, intent.now, &mut replicated);
    }

    if let Some(request) = intent.claim {
        let mut exclude = touched.clone();
        exclude.extend(intent.excluded.iter().cloned());
        for (spec, from) in claim::select(repo, snapshot, request, limits, intent.now, &exclude) {
            edits.extend(claim_edits(&spec, &from));
            summary.push(format!("claim {}", spec.id));
            applied.claimed.push(spec);
        }
    }

    // A node found dissenting: the adaptive results it settled alone go back for a check.
    let dissenters: std::collections::BTreeSet<&str> = replicated
        .votes
        .iter()
        .filter(|(_, valid)| !valid)
        .map(|(n, _)| n.as_str())
        .collect();
    for node in dissenters {
        let now = rfc3339(intent.now);
        let rechecks = quorum_adaptive::rechecks(repo, snapshot, node, limits, &now, &touched);
        if !rechecks.is_empty() {
            summary.push(format!("recheck {node}"));
        }
        edits.extend(rechecks);
    }
    edits.append(&mut replicated.edits);
    summary.append(&mut replicated.summary);
    if edits.is_empty() && !intent.heartbeat {
        return Ok(
            if applied.recorded.is_empty()
                && applied.orphaned.is_empty()
                && applied.lost_claims.is_empty()
                && applied.awaiting.is_empty()
                && applied.discarded.is_empty()
            {
                None
            } else {
                // Nothing to write, but the caller learns what is already settled.
                Some(Change {
                    edits,
                    summary: String::new(),
                    value: applied,
                })
            },
        );
    }
    // Heartbeats ride on every push.
    let mut node = intent.node.clone();
    node.running
        .retain(|id| !applied.lost_claims.iter().any(|lost| lost == id));
    node.running
        .extend(applied.claimed.iter().map(|s| s.id.to_string()));
    // The reputation is written by the nodes that settle replicated tasks: a heartbeat keeps it.
    node.reputation = quorum::updated(
        quorum::recorded_reputation(repo, snapshot, me),
        me,
        &replicated.votes,
    );
    edits.extend(quorum::reputation_edits(
        repo,
        snapshot,
        me,
        &replicated.votes,
    ));
    edits.push(Edit::Write {
        path: layout::node_path(me),
        content: node.to_json(),
    });
    let summary = if summary.is_empty() {
        format!("heartbeat {me}")
    } else {
        format!("{} by {me}", summary.join(", "))
    };
    Ok(Some(Change {
        edits,
        summary,
        value: applied,
    }))
}

/// The in-progress task `id` if its claim is `node`'s, for `attempt`.
fn our_claim<'s>(
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    id: &str,
    node: &str,
    attempt: Attempt,
    limits: &Limits,
) -> Option<(&'s TaskRef, TaskSpec)> {
    let task = snapshot.places(id).find(|t| t.state == State::InProgress)?;
    let spec = snapshot::load_spec(repo, task, limits).ok()?;
    let claim = spec.claim.as_ref()?;
    (claim.node_id == node && claim.attempt == attempt).then_some((task, spec))
}

#[cfg(test)]
#[path = "cycle_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "duplicates_tests.rs"]
mod duplicates_tests;

//! What differs between a plain task and a replicated one in the worker's transition, decided in
//! one place. Each task the transition handles is resolved once into a [`HeldKind`]; the phases of
//! `cycle::plan` say what is to be done (record a result, release, note a start failure, renew a
//! lease, end the claims taken back) and the kind does it its way: a plain task has one claim and
//! moves between the state folders, a replicated task has one entry per instance and goes through
//! `grid::replicated::quorum`. A new kind of task is one more variant here, not a probe in every phase.

use crate::grid::plan::cycle_pass::{Cycle, Pass};
use crate::grid::plan::record::{record_result, replicated_elsewhere, Recording};
use crate::grid::plan::start_failure;
use crate::grid::read::snapshot::{self, TaskRef};
use crate::grid::replicated::quorum::{self, Landed};
use crate::grid::replicated::quorum_adaptive;
use crate::grid::replicated::quorum_upkeep;
use crate::grid::rules::reap::{self, Fate, ReapPolicy};
use crate::grid::rules::{lost_result, requeued, used_last_attempt};
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::quorum::Rule;
use crate::task::{Attempt, Claim, Status, TaskId, TaskResult, TaskSpec};
use anyhow::Result;
use std::collections::{HashMap, HashSet};

/// What a task is in the snapshot a transition plans on.
pub(super) enum HeldKind<'s> {
    /// No readable in-progress file: queued, finished, gone, or a file that does not parse.
    NotInProgress,
    /// A plain task in progress: one claim.
    Plain { task: &'s TaskRef, spec: TaskSpec },
    /// A replicated task in progress (`quorum::Rule::of` is `Some`): one entry per instance.
    Replicated {
        task: &'s TaskRef,
        spec: TaskSpec,
        rule: Rule,
    },
}

/// A task a transition takes back: its kind, and the claims being ended (a replicated task's
/// entries by index, or a plain task's one claim at 0).
pub(super) struct TakenBack<'s> {
    pub kind: HeldKind<'s>,
    pub claims: Vec<(usize, Claim)>,
}

/// What a transition takes back (`reap::may_take_back` judges each claim and entry): plain tasks
/// not `touched` yet, then the replicated tasks looked up at the start of the transition
/// (`Cycle::replicated_back`), in the snapshot's order.
pub(super) fn to_take_back<'s>(
    cx: &Cycle<'s>,
    touched: &HashSet<String>,
    reaper: &mut dyn ReapPolicy,
) -> Vec<TakenBack<'s>> {
    let intent = cx.intent;
    let (repo, snapshot, limits) = (cx.repo, cx.snapshot, cx.limits);
    let plain = reap::to_take_back(repo, snapshot, cx.me, intent.held, limits, reaper, touched)
        .map(|reap::DeadClaim { task, spec, claim }| TakenBack {
            kind: HeldKind::Plain { task, spec },
            claims: vec![(0, claim)],
        });
    let mut out: Vec<TakenBack> = plain.collect();
    out.extend(cx.replicated_back.iter().map(|t| {
        TakenBack {
            kind: HeldKind::Replicated {
                task: t.task,
                spec: t.spec.clone(),
                rule: t.rule,
            },
            claims: (t.entries.iter())
                .map(|&i| (i, t.spec.instances[i].as_claim()))
                .collect(),
        }
    }));
    out
}

/// The tasks the intent names (results, releases, start failures, running), each resolved once.
pub(super) struct Held<'s>(HashMap<String, HeldKind<'s>>);

impl<'s> Held<'s> {
    pub fn resolve(cx: &Cycle<'s>) -> Held<'s> {
        let intent = cx.intent;
        let ids = (intent.results.iter().map(|r| &r.task_id))
            .chain(intent.releases.iter().map(|(id, _)| id))
            .chain(intent.start_failures.iter().map(|(id, _, _)| id))
            .chain(intent.running.iter().map(|(id, _)| id));
        let mut kinds = HashMap::new();
        for id in ids {
            if !kinds.contains_key(id.as_str()) {
                kinds.insert(id.to_string(), HeldKind::resolve(cx, id));
            }
        }
        Held(kinds)
    }

    pub fn of(&self, id: &str) -> &HeldKind<'s> {
        self.0.get(id).unwrap_or(&HeldKind::NotInProgress)
    }
}

impl<'s> HeldKind<'s> {
    /// Task `id` as the snapshot holds it: its first in-progress file, plain or replicated.
    fn resolve(cx: &Cycle<'s>, id: &str) -> HeldKind<'s> {
        let Some(task) = cx
            .snapshot
            .places(id)
            .find(|t| t.state == State::InProgress)
        else {
            return HeldKind::NotInProgress;
        };
        let Ok(spec) = snapshot::load_spec(cx.repo, task, cx.limits) else {
            return HeldKind::NotInProgress;
        };
        match Rule::of(&spec) {
            Some(rule) => HeldKind::Replicated { task, spec, rule },
            None => HeldKind::Plain { task, spec },
        }
    }

    /// Its in-progress file, if it has one.
    pub fn task(&self) -> Option<&'s TaskRef> {
        match self {
            HeldKind::NotInProgress => None,
            HeldKind::Plain { task, .. } | HeldKind::Replicated { task, .. } => Some(task),
        }
    }

    /// The plain in-progress task if its claim is `node`'s, for `attempt`.
    fn claimed_by(&self, node: &str, attempt: Attempt) -> Option<(&'s TaskRef, &TaskSpec)> {
        let HeldKind::Plain { task, spec } = self else {
            return None;
        };
        let claim = spec.claim.as_ref()?;
        (claim.node_id == node && claim.attempt == attempt).then_some((*task, spec))
    }

    /// Lands this node's finished `result`: a replicated task's as a commitment (or reveal, or
    /// settlement), anything else as the task's result file (`grid::plan::record`).
    pub fn record(&self, cx: &Cycle<'s>, pass: &mut Pass, result: &TaskResult) -> Result<()> {
        match self {
            HeldKind::Replicated { task, spec, rule } => {
                record_replicated(cx, pass, task, spec.clone(), rule, result);
                Ok(())
            }
            HeldKind::Plain { .. } | HeldKind::NotInProgress => record_plain(cx, pass, result),
        }
    }

    /// Puts this node's claim for `attempt` back without using the attempt (shutdown, docker
    /// trouble): a plain task back to the queue, a replicated task's entry removed.
    pub fn release(&self, cx: &Cycle<'s>, pass: &mut Pass, id: &TaskId, attempt: Attempt) {
        if let HeldKind::Replicated { task, spec, .. } = self {
            quorum_upkeep::release(task, spec.clone(), cx.me, attempt, &mut pass.replicated);
        } else if let Some((task, spec)) = self.claimed_by(cx.me, attempt) {
            pass.edits.extend(Edit::move_file(
                &task.path,
                layout::task_path(State::Queue, id),
                requeued(spec.clone(), attempt.used_before()),
            ));
            pass.summary.push(format!("release {id}"));
        }
    }

    /// This node could not start the container of `attempt` (docker's `reason`). An instance goes
    /// back to the others (the worker keeps away from the task a while); the single task's
    /// bounded count of failures is not kept. A plain task goes back with the failure noted, or
    /// fails as unrunnable (`grid::plan::start_failure`).
    pub fn start_failed(
        &self,
        cx: &Cycle<'s>,
        pass: &mut Pass,
        id: &TaskId,
        attempt: Attempt,
        reason: &str,
    ) {
        if let HeldKind::Replicated { .. } = self {
            return self.release(cx, pass, id, attempt);
        }
        let Some((task, spec)) = self.claimed_by(cx.me, attempt) else {
            return;
        };
        let (state, content) = start_failure::after_failure(
            spec.clone(),
            attempt.used_before(),
            cx.me,
            reason,
            cx.live_nodes(),
            cx.intent.now,
        );
        let verb = if state == State::Failed {
            "give up"
        } else {
            "release"
        };
        pass.edits.extend(Edit::move_file(
            &task.path,
            layout::task_path(state, id),
            content,
        ));
        pass.summary.push(format!("{verb} {id}"));
        if state == State::Failed {
            pass.applied.unrunnable.push(id.clone());
        }
    }

    /// Renews the lease of this node's running `attempt`: `false` when the claim (or entry) is
    /// not this node's any more.
    pub fn renew(&self, cx: &Cycle<'s>, pass: &mut Pass, attempt: Attempt) -> bool {
        if let HeldKind::Replicated { task, spec, .. } = self {
            let until = &cx.lease_until;
            return quorum_upkeep::renew(
                task,
                spec.clone(),
                cx.me,
                attempt,
                until,
                &mut pass.replicated,
            );
        }
        let Some((task, spec)) = self.claimed_by(cx.me, attempt) else {
            return false;
        };
        let mut spec = spec.clone();
        if let Some(claim) = spec.claim.as_mut() {
            claim.lease_expires_at = cx.lease_until.clone();
        }
        pass.edits.push(Edit::Write {
            path: task.path.clone(),
            content: spec.to_json(),
        });
        true
    }

    /// Ends the claims taken back (index of a replicated task's entry, or 0 for a plain task's
    /// one claim; the claim; its fate, `reap::fate`). A plain task goes back to the queue, its
    /// attempt used only when reaped, or fails as lost when that was its last attempt. A
    /// replicated task's entry is removed, or dropped when reaped (its instance re-issued, or the
    /// task failed as lost when that was the instance's last attempt).
    pub fn end(self, cx: &Cycle<'s>, pass: &mut Pass, claims: Vec<(usize, Claim, Fate)>) {
        match self {
            HeldKind::NotInProgress => {}
            HeldKind::Plain { task, spec } => {
                for (_, claim, fate) in claims {
                    let (destination, content) = match fate {
                        Fate::Unheld | Fate::NeverStarted => (
                            State::Queue,
                            requeued(spec.clone(), claim.attempt.used_before()),
                        ),
                        Fate::Reaped if used_last_attempt(&spec, &claim) => {
                            let result = lost_result(&spec, &claim, cx.intent.now);
                            (State::Failed, result.to_json())
                        }
                        Fate::Reaped => {
                            (State::Queue, requeued(spec.clone(), claim.attempt.used()))
                        }
                    };
                    pass.edits.extend(Edit::move_file(
                        &task.path,
                        layout::task_path(destination, &task.id),
                        content,
                    ));
                }
            }
            HeldKind::Replicated { task, spec, .. } => {
                let endings: Vec<(usize, quorum_upkeep::EntryEnding)> = claims
                    .into_iter()
                    .map(|(i, _, fate)| match fate {
                        Fate::Unheld | Fate::NeverStarted => {
                            (i, quorum_upkeep::EntryEnding::Removed)
                        }
                        Fate::Reaped => (i, quorum_upkeep::EntryEnding::Dropped),
                    })
                    .collect();
                quorum_upkeep::take_back(task, spec, &endings, cx.intent.now, &mut pass.replicated);
            }
        }
    }
}

/// A result of a task that is not replicated and in progress: written as the task's result
/// (`grid::plan::record`), unless it is a replicated task's settled or unwanted vote.
fn record_plain(cx: &Cycle, pass: &mut Pass, result: &TaskResult) -> Result<()> {
    let (id, attempt) = (result.task_id.clone(), result.attempt());
    match replicated_elsewhere(cx.repo, cx.snapshot, result, cx.limits) {
        Some(Recording::AlreadyThere) => {
            pass.applied.recorded.push((id, attempt));
            return Ok(());
        }
        Some(_) => {
            pass.applied.discarded.push((id, attempt));
            return Ok(());
        }
        None => {}
    }
    match record_result(cx.repo, cx.snapshot, result, cx.limits)? {
        Recording::Edits(e) => {
            pass.edits.extend(e);
            let verb = if result.status == Status::Success {
                "complete"
            } else {
                "fail"
            };
            pass.summary.push(format!("{verb} {id}"));
            pass.applied.recorded.push((id, attempt));
        }
        Recording::AlreadyThere => pass.applied.recorded.push((id, attempt)),
        Recording::Orphaned => pass.applied.orphaned.push((id, attempt)),
    }
    Ok(())
}

/// A result of a replicated task in progress: dead nodes' entries are taken back in the same
/// write (the nodes awaiting a quorum may be the only ones left to see them, and they write the
/// file each time), then the result lands through `quorum::record`.
fn record_replicated(
    cx: &Cycle,
    pass: &mut Pass,
    task: &TaskRef,
    spec: TaskSpec,
    rule: &Rule,
    result: &TaskResult,
) {
    let (id, attempt) = (result.task_id.clone(), result.attempt());
    // An adaptive task run alone settles on a draw from a commit after its reveal.
    let solo = quorum_adaptive::is_solo(&spec, rule);
    // The draw's odds come from the reputation the results give, not the node's record (which
    // it writes as it likes): recounted only for a solo task, which is rare.
    let consecutive_valid = if solo {
        quorum_upkeep::trusted_reputation(cx.repo, cx.snapshot, cx.me, cx.limits)
            .map_or(0, |r| r.consecutive_valid)
    } else {
        cx.quorum.consecutive_valid
    };
    let ctx = quorum::Ctx {
        draw: solo
            .then(|| quorum_adaptive::draw_commit(cx.repo, cx.snapshot, &task.path, cx.me))
            .flatten()
            .map(|c| c.to_string()),
        consecutive_valid,
        ..cx.quorum.clone()
    };
    // Other nodes' entries only: by `reap::fate` they are reaped.
    let dead = cx
        .replicated_back
        .iter()
        .find(|t| t.task.id == id.as_str())
        .map_or_else(Vec::new, |t| t.entries_of_others(cx.me));
    let spec = match quorum_upkeep::take_back_others(task, spec, &dead, cx.intent.now) {
        Ok(spec) => spec,
        Err(failed) => {
            pass.replicated.edits.extend(failed);
            pass.applied.discarded.push((id, attempt));
            return;
        }
    };
    for (_, node) in &dead {
        pass.note_taken_back(&id, node, Fate::Reaped);
    }
    match quorum::record(task, spec, rule, result, &ctx, &mut pass.replicated) {
        Landed::Awaiting => pass.applied.awaiting.push((id, attempt)),
        Landed::Settled => pass.applied.recorded.push((id, attempt)),
        Landed::NotMine => pass.applied.discarded.push((id, attempt)),
    }
}

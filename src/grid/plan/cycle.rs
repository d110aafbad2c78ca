//! The worker's transition: in one commit, record finished results, put released tasks back,
//! renew the leases of running tasks, requeue the tasks of dead nodes, claim new tasks, and write the
//! node's heartbeat. One push per task in steady state (`docs/ARCHITECTURE.md#push-economy`).
//!
//! `plan` is a pipeline: one function per phase over one [`Pass`] (`cycle_pass`: what the phases
//! read and write); what a phase does to a task is the task's `HeldKind`'s (`cycle_kind`: plain or
//! replicated, decided once per task); the small rules they share are `grid::rules`, and the fate
//! of a claim taken back is `reap::fate`.
//!
//! Late results (the task was taken over while this node was presumed dead):
//! - still in the queue or in progress elsewhere: this result is real work, so it is recorded as the
//!   task's result and the other claim ends (its node sees the claim gone and stops its container);
//! - already completed or failed: it is appended to that result's `late_results`, never dropped and
//!   never a second file;
//! - the task is gone (removed by a maintainer): nothing to record, the worker logs it.

use crate::grid::engine::transact::Change;
use crate::grid::plan::claim::{self, claim_edits};
use crate::grid::plan::cycle_kind::{self, Held, TakenBack};
pub use crate::grid::plan::cycle_pass::{Applied, Intent};
use crate::grid::plan::cycle_pass::{Cycle, Pass};
use crate::grid::read::snapshot::Snapshot;
use crate::grid::replicated::quorum_adaptive;
use crate::grid::replicated::quorum_upkeep;
pub use crate::grid::rules::reap::ReapPolicy;
use crate::grid::rules::{self, reap};
use crate::layout::{self, State};
use crate::odb::{self, Blob, Edit};
use crate::task::{Limits, MAX_FILE_BYTES};
use crate::time::rfc3339;
use anyhow::Result;
use std::collections::BTreeSet;

/// The worker's transition, phase by phase, in the order their edits land. Each phase is one
/// function over the same [`Pass`]; a task a phase handles is `touched`, and later phases leave
/// it alone. Whatever differs between a plain and a replicated task is the task's `HeldKind`'s
/// (`cycle_kind`): a phase never asks which kind it has. A new step of the transition is one more
/// phase here; a new kind of task, one more `HeldKind`.
pub fn plan(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    intent: &Intent,
    limits: &Limits,
    reaper: &mut dyn ReapPolicy,
) -> Result<Option<Change<Applied>>> {
    let notice = check_ownership(repo, snapshot, intent)?;
    let cx = Cycle::new(repo, snapshot, intent, limits, reaper);
    let held = Held::resolve(&cx);
    let mut pass = Pass::default();
    pass.applied.notices.extend(notice);
    record_results(&cx, &held, &mut pass)?;
    release(&cx, &held, &mut pass);
    note_start_failures(&cx, &held, &mut pass);
    renew_leases(&cx, &held, &mut pass);
    take_back(&cx, &mut pass, reaper);
    claim_new(&cx, &mut pass);
    recheck_dissenters(&cx, &mut pass);
    fail_invalid(&cx, &mut pass);
    Ok(write_node_record(&cx, pass))
}

/// Whether this process may write the node's record (`Ownership::check`): an error stops the
/// transition, a notice tells the operator something (e.g. a forged record replaced).
fn check_ownership(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    intent: &Intent,
) -> Result<Option<String>> {
    Ok(intent
        .ownership
        .check(repo, snapshot, intent.node.id.as_str(), intent.now)?)
}

/// Finished results land (`HeldKind::record`).
fn record_results(cx: &Cycle, held: &Held, pass: &mut Pass) -> Result<()> {
    for result in cx.intent.results {
        pass.touched.insert(result.task_id.to_string());
        held.of(&result.task_id).record(cx, pass, result)?;
    }
    Ok(())
}

/// Released tasks go back without using their attempt (`HeldKind::release`).
fn release(cx: &Cycle, held: &Held, pass: &mut Pass) {
    for (id, attempt) in cx.intent.releases {
        pass.touched.insert(id.to_string());
        held.of(id).release(cx, pass, id, *attempt);
    }
}

/// Tasks whose container could not start here go back, or fail as unrunnable
/// (`HeldKind::start_failed`).
fn note_start_failures(cx: &Cycle, held: &Held, pass: &mut Pass) {
    for (id, attempt, reason) in cx.intent.start_failures {
        pass.touched.insert(id.to_string());
        held.of(id).start_failed(cx, pass, id, *attempt, reason);
    }
}

/// Running tasks get their leases renewed; a claim that is not this node's any more is reported,
/// its container to be stopped.
fn renew_leases(cx: &Cycle, held: &Held, pass: &mut Pass) {
    for (id, attempt) in cx.intent.running {
        if pass.touched.contains(id.as_str()) {
            continue;
        }
        if held.of(id).renew(cx, pass, *attempt) {
            pass.touched.insert(id.to_string());
        } else {
            pass.applied.lost_claims.push(id.clone());
        }
    }
}

/// Claims running nowhere go back: other nodes' judged dead, this node's that this process does
/// not hold (`reap::may_take_back`); plain tasks first, then replicated tasks' entries. Each
/// claim's fate is `reap::fate`, the one rule for both kinds, and the kind ends it its way
/// (`HeldKind::end`).
fn take_back(cx: &Cycle, pass: &mut Pass, reaper: &mut dyn ReapPolicy) {
    let intent = cx.intent;
    for TakenBack { kind, claims } in cycle_kind::to_take_back(cx, &pass.touched, reaper) {
        let Some(task) = kind.task() else {
            continue;
        };
        // A duplicate id (invalid, reported by validate) is taken back once.
        if !pass.touched.insert(task.id.clone()) {
            continue;
        }
        let started = intent.ownership.started;
        let claims = (claims.into_iter())
            .map(|(i, claim)| {
                let fate = reap::fate(cx.me, started, intent.never_started, &task.id, &claim);
                pass.note_taken_back(&task.id, &claim.node_id, fate);
                (i, claim, fate)
            })
            .collect();
        kind.end(cx, pass, claims);
    }
}

/// New tasks are claimed, none that this transition touched or the worker excludes.
fn claim_new(cx: &Cycle, pass: &mut Pass) {
    let Some(request) = cx.intent.claim else {
        return;
    };
    let mut exclude = pass.touched.clone();
    exclude.extend(cx.intent.excluded.iter().cloned());
    let now = cx.intent.now;
    let (queue, repo, snapshot, limits) = (cx.intent.queue, cx.repo, cx.snapshot, cx.limits);
    for (spec, from) in claim::select_from(queue, repo, snapshot, request, limits, now, &exclude) {
        pass.edits.extend(claim_edits(&spec, &from));
        pass.summary.push(format!("claim {}", spec.id));
        pass.applied.claimed.push(spec);
    }
}

/// A node found dissenting in this transition: the adaptive results it settled alone go back for
/// a check.
fn recheck_dissenters(cx: &Cycle, pass: &mut Pass) {
    let dissenters: BTreeSet<&str> = (pass.replicated.votes.iter())
        .filter(|(_, valid)| !valid)
        .map(|(n, _)| n.as_str())
        .collect();
    for node in dissenters {
        let now = rfc3339(cx.intent.now);
        let (repo, snapshot, limits) = (cx.repo, cx.snapshot, cx.limits);
        let rechecks = quorum_adaptive::rechecks(repo, snapshot, node, limits, &now, &pass.touched);
        if !rechecks.is_empty() {
            pass.summary.push(format!("recheck {node}"));
        }
        pass.edits.extend(rechecks);
    }
}

/// At most this many queued files are failed as invalid in one push.
const INVALID_PER_PUSH: usize = 50;

/// Queued files that break the contract on every node (`claim::InvalidTask`) go to `failed/` as
/// `invalid`, with their problems, so their submitter sees why they never run. Only in a push the
/// worker makes anyway: such files, pushed around the hook, never cost a push of their own.
fn fail_invalid(cx: &Cycle, pass: &mut Pass) {
    let pushing =
        cx.intent.heartbeat || !pass.edits.is_empty() || !pass.replicated.edits.is_empty();
    let Some(queue) = cx.intent.queue.filter(|_| pushing) else {
        return;
    };
    let touched = &pass.touched;
    let invalid: Vec<_> = (queue.invalid_in(cx.snapshot).iter())
        .filter(|task| !touched.contains(task.id.as_str()))
        .take(INVALID_PER_PUSH)
        .collect();
    for task in invalid {
        let result = rules::invalid_result(&task.id, cx.me, &task.problems, cx.intent.now);
        let to = layout::task_path(State::Failed, task.id.as_str());
        pass.edits
            .extend(Edit::move_file(&task.path, to, result.to_json()));
        pass.touched.insert(task.id.to_string());
        pass.summary.push(format!("invalid {}", task.id));
        let said: Vec<String> = task.problems.iter().map(ToString::to_string).collect();
        (pass.applied.invalid).push((task.id.clone(), said.join("; ")));
    }
}

/// The node's record (its heartbeat, what runs here, its reputation) rides on every push, with
/// the records of the voters whose reputation this transition's settlements change. Nothing to
/// write and no heartbeat due: no push (but the worker may still learn something).
fn write_node_record(cx: &Cycle, pass: Pass) -> Option<Change<Applied>> {
    let Pass {
        mut edits,
        mut summary,
        applied,
        mut replicated,
        ..
    } = pass;
    let me = cx.me;
    edits.append(&mut replicated.edits);
    summary.append(&mut replicated.summary);
    if edits.is_empty() && !cx.intent.heartbeat {
        // Nothing to write, but the caller learns what is already settled.
        return applied.tells_the_worker().then_some(Change {
            edits,
            summary: String::new(),
            value: applied,
        });
    }
    let moved = flat_records_to_shards(cx, &mut edits);
    if moved > 0 {
        summary.push(format!("{moved} node record(s) to their shards"));
    }
    let mut node = cx.intent.node.clone();
    node.running
        .retain(|id| !applied.lost_claims.iter().any(|lost| lost == id));
    node.running
        .extend(applied.claimed.iter().map(|s| s.id.to_string()));
    // The reputation is written by the nodes that settle replicated tasks: a heartbeat keeps it.
    let recorded = quorum_upkeep::recorded_reputation(cx.repo, cx.snapshot, me);
    node.reputation = quorum_upkeep::updated(recorded, me, &replicated.votes);
    edits.extend(quorum_upkeep::reputation_edits(
        cx.repo,
        cx.snapshot,
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
    Some(Change {
        edits,
        summary,
        value: applied,
    })
}

/// Flat node records (`nodes/<id>.json`, the seed's and older versions') move to their shard
/// folders unchanged, in a push the worker makes anyway: while `nodes/` holds them flat, every
/// heartbeat rewrites one tree of all of them (30,000 records pushed around the hook made each
/// worker push store ~728 KiB). All in one push, as a part would leave the big tree to rewrite
/// again. A flat record shadowed by a sharded one is never read, and goes. These edits come
/// before the records this transition writes, which land over them. Returns how many moved.
fn flat_records_to_shards(cx: &Cycle, edits: &mut Vec<Edit>) -> usize {
    let snapshot = cx.snapshot;
    for shadowed in &snapshot.shadowed_nodes {
        edits.push(Edit::Remove {
            path: shadowed.path.clone(),
        });
    }
    let mut moved = 0;
    for flat in snapshot.nodes.iter().filter(|n| !n.sharded) {
        // A record that cannot be read whole stays where it is, for `validate` to name.
        let Ok(Blob::Bytes(bytes)) = odb::read_blob(cx.repo, flat.blob, MAX_FILE_BYTES) else {
            continue;
        };
        edits.extend(Edit::move_file(
            &flat.path,
            layout::node_path(&flat.id),
            bytes,
        ));
        moved += 1;
    }
    moved
}

#[cfg(test)]
#[path = "cycle_results_tests.rs"]
mod results_tests;

#[cfg(test)]
#[path = "cycle_claims_tests.rs"]
mod claims_tests;

#[cfg(test)]
#[path = "duplicates_tests.rs"]
mod duplicates_tests;

#[cfg(test)]
#[path = "cycle_replicated_tests.rs"]
mod replicated_tests;

//! How a finished task's result lands in the worker's transition (`cycle`): beside a result
//! already there (a late result), over the copies it was run from, or not at all (a replicated
//! task's vote already counted, a task gone). See `docs/ARCHITECTURE.md#compare-and-swap`.

use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::grid::replicated::quorum_upkeep;
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::task::{Attempt, LateResult, Limits, Status, TaskResult};
use anyhow::Result;

pub(super) enum Recording {
    Edits(Vec<Edit>),
    AlreadyThere,
    Orphaned,
}

/// How a result lands, whatever else holds its id (a duplicate pushed around the hook):
/// - a readable result file already there: the result is added to its `late_results` (or found
///   there already);
/// - otherwise the result is written to its state's file, replacing every other file of the id:
///   the queued or in-progress copy it was run from, and any result file that cannot be read (the
///   work done outranks a file nobody can use; the old file stays in git's history).
///
/// Queued or in-progress copies beside a finished result are removed too: left behind they would
/// be run again. Nothing here fails on a file's content, so one file never stops a transition.
pub(super) fn record_result(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    result: &TaskResult,
    limits: &Limits,
) -> Result<Recording> {
    let id = &result.task_id;
    let destination = if result.status == Status::Success {
        State::Completed
    } else {
        State::Failed
    };
    let places: Vec<&TaskRef> = snapshot.places(id).collect();
    if places.is_empty() {
        return Ok(Recording::Orphaned);
    }
    let finished = places
        .iter()
        .filter(|t| t.state.holds_results())
        .find_map(|t| snapshot::load_result(repo, t, limits).ok().map(|r| (*t, r)));
    let found = finished.is_some();
    let mut edits = Vec::new();
    let kept = match finished {
        Some((task, mut existing)) => {
            let attempt = result.attempt();
            let same = |node: &str, a: Attempt| node == result.node_id && a == attempt;
            let there = same(&existing.node_id, existing.attempt())
                || existing
                    .late_results
                    .iter()
                    .any(|l| same(&l.node_id, l.attempt));
            if !there {
                existing.late_results.push(late(result));
                edits.push(Edit::Write {
                    path: task.path.clone(),
                    content: existing.to_json(),
                });
            }
            task.path.clone()
        }
        None => {
            let path = layout::task_path(destination, id);
            edits.push(Edit::Write {
                path: path.clone(),
                content: result.to_json(),
            });
            path
        }
    };
    for other in places.iter().filter(|t| t.path != kept) {
        if other.state.holds_results() {
            if found {
                // Another result file beside a readable one: validate reports it; left alone.
                continue;
            }
            // Through the log: under `--log-format json` every line a worker prints is JSON.
            crate::log::warning(&format!(
                "{}: not a readable result file; replaced by the result of {id}, attempt {}",
                other.path,
                result.attempt()
            ));
        }
        edits.push(Edit::Remove {
            path: other.path.clone(),
        });
    }
    Ok(if edits.is_empty() {
        Recording::AlreadyThere
    } else {
        Recording::Edits(edits)
    })
}

/// A result of a replicated task that is not in progress: `AlreadyThere` when the task settled
/// with this result's vote among its votes (recorded, never a second file, never a late result),
/// `Orphaned` when the task is replicated and queued (put back: this instance is not wanted);
/// `None` for every other case, which records the result as for a single task.
pub(super) fn replicated_elsewhere(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    result: &TaskResult,
    limits: &Limits,
) -> Option<Recording> {
    for place in snapshot.places(&result.task_id) {
        if place.state.holds_results() {
            if let Ok(finished) = snapshot::load_result(repo, place, limits) {
                if quorum_upkeep::among_votes(&finished, &result.node_id, result.attempt()) {
                    return Some(Recording::AlreadyThere);
                }
            }
        } else if place.state == State::Queue {
            let spec = snapshot::load_spec(repo, place, limits).ok()?;
            if crate::quorum::Rule::of(&spec).is_some() {
                return Some(Recording::Orphaned);
            }
        }
    }
    None
}

/// `result` as an entry of an earlier result's `late_results`.
pub(crate) fn late(result: &TaskResult) -> LateResult {
    LateResult {
        node_id: result.node_id.clone(),
        attempt: result.attempt(),
        status: result.status,
        exit_code: result.exit_code,
        finished_at: result
            .finished_at
            .clone()
            .unwrap_or_else(|| result.timestamp.clone()),
        stdout_info: result.stdout_info.clone(),
        stderr_info: result.stderr_info.clone(),
    }
}

//! Maintainers' transitions: cancel tasks (queued or running), retry failed ones, and rewrite
//! queued ones (`secrets rotate`). A running task's node notices that its claim is gone on its
//! next look and kills the container.

use crate::grid::engine::transact::Change;
use crate::grid::read::snapshot::{self, Snapshot};
use crate::grid::rules::requeued;
use crate::grid::Conflict;
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::task::{Limits, Status, TaskId, TaskResult};
use crate::time::rfc3339;
use anyhow::Result;
use chrono::{DateTime, Utc};

/// Moves each task (queued or in progress) to failed with status `cancelled`.
pub fn cancel(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    ids: &[String],
    who: &str,
    reason: &str,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Option<Change<()>>> {
    let mut edits = Vec::new();
    for id in ids {
        let Some(task) = snapshot.get(id) else {
            return Err(Conflict(format!("no task {id:?} on the grid")).into());
        };
        if task.state.holds_results() {
            return Err(
                Conflict(format!("{id} is already {}: nothing to cancel", task.state)).into(),
            );
        }
        let mut spec = snapshot::load_spec(repo, task, limits)?;
        let claim = spec.claim.take();
        let result = TaskResult {
            // The snapshot's id (the file name), checked when the snapshot was read.
            task_id: TaskId::parse(task.id.clone()).map_err(anyhow::Error::msg)?,
            // No node ran a task cancelled in the queue: null in the file.
            node_id: claim
                .as_ref()
                .map_or_else(String::new, |c| c.node_id.clone()),
            exit_code: None,
            stdout: String::new(),
            stderr: format!(
                "cancelled by {who}{}",
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
            timestamp: rfc3339(now),
            status: Status::Cancelled,
            started_at: claim.as_ref().map(|c| c.claimed_at.clone()),
            finished_at: Some(rfc3339(now)),
            duration_ms: None,
            recorded_attempt: claim.as_ref().map(|c| c.attempt),
            stdout_info: None,
            stderr_info: None,
            task: Some(spec),
            late_results: Vec::new(),
            signed_by: None,
            quorum: None,
        };
        edits.extend(Edit::move_file(
            &task.path,
            layout::task_path(State::Failed, id),
            result.to_json(),
        ));
    }
    Ok(Some(Change {
        edits,
        summary: format!("cancel {}", ids.join(" ")),
        value: (),
    }))
}

/// Puts each failed task back in the queue, from the spec its result carries, with fresh attempts.
pub fn retry(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    ids: &[String],
    limits: &Limits,
) -> Result<Option<Change<()>>> {
    let mut edits = Vec::new();
    for id in ids {
        let Some(task) = snapshot.get(id) else {
            return Err(Conflict(format!("no task {id:?} on the grid")).into());
        };
        if task.state != State::Failed {
            return Err(Conflict(format!(
                "{id} is {}: only failed tasks are retried",
                task.state.in_words()
            ))
            .into());
        }
        let result = snapshot::load_result(repo, task, limits)?;
        let Some(mut spec) = result.task else {
            return Err(Conflict(format!(
                "{id}: its result does not carry the task spec, so it cannot be queued again"
            ))
            .into());
        };
        // Fresh tries everywhere: an unrunnable task's start failures go too.
        spec.start_failures.clear();
        edits.extend(Edit::move_file(
            &task.path,
            layout::task_path(State::Queue, id),
            requeued(spec, 0),
        ));
    }
    Ok(Some(Change {
        edits,
        summary: format!("retry {}", ids.join(" ")),
        value: (),
    }))
}

/// Writes each new spec over its queued file, if that file is still the version (`blob`) the new
/// spec was made from: a task claimed, cancelled or edited since is left alone and not named in
/// the value (the ids rewritten).
pub fn rewrite_queued(
    snapshot: &Snapshot,
    rewrites: &[(gix::ObjectId, crate::task::TaskSpec)],
    what: &str,
) -> Result<Option<Change<Vec<String>>>> {
    let mut edits = Vec::new();
    let mut ids = Vec::new();
    for (blob, spec) in rewrites {
        let Some(task) = snapshot.get(&spec.id) else {
            continue;
        };
        if task.state != State::Queue || task.blob != *blob || snapshot.is_duplicated(&task.id) {
            continue;
        }
        edits.push(Edit::Write {
            path: task.path.clone(),
            content: spec.to_json(),
        });
        ids.push(task.id.clone());
    }
    if edits.is_empty() {
        return Ok(None);
    }
    Ok(Some(Change {
        edits,
        summary: format!("{what} {}", ids.join(" ")),
        value: ids,
    }))
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;

//! The submit transition: new tasks into the queue, all in one commit, or none if any id is taken.

use crate::grid::snapshot::Snapshot;
use crate::grid::transact::Change;
use crate::grid::Conflict;
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::task::TaskSpec;
use anyhow::Result;
use std::collections::HashSet;

pub fn plan(snapshot: &Snapshot, tasks: &[TaskSpec]) -> Result<Option<Change<()>>> {
    // Submitting to a remote without a grid would create `main` as a new root holding only these
    // tasks (or mix tasks into another project's branch): refuse, and say how to make one.
    if snapshot.tip.is_none() {
        anyhow::bail!(
            "the remote has no main branch, so it is not a grid yet: lay one out with `git dgrid init --push` in a clone of it"
        );
    }
    if !snapshot.laid_out {
        anyhow::bail!(
            "main on the remote is not a grid (it has no tasks/ folder): lay one out with `git dgrid init --push`, or name the grid's remote with --remote"
        );
    }
    let mut seen = HashSet::new();
    for task in tasks {
        if !seen.insert(task.id.as_str()) {
            return Err(Conflict(format!(
                "task id {:?} is given twice in this submission",
                task.id
            ))
            .into());
        }
        if let Some(existing) = snapshot.get(&task.id) {
            return Err(Conflict(format!(
                "task id {:?} already exists on the grid ({}); ids are never reused",
                task.id, existing.path
            ))
            .into());
        }
    }
    let edits = tasks
        .iter()
        .map(|t| Edit::Write {
            path: layout::task_path(State::Queue, &t.id),
            content: t.to_json(),
        })
        .collect();
    let summary = match tasks {
        [] => return Ok(None),
        [one] => format!("submit {}", one.id),
        [first, .., last] => format!("submit {} tasks ({} .. {})", tasks.len(), first.id, last.id),
    };
    Ok(Some(Change {
        edits,
        summary,
        value: (),
    }))
}

/// A unique id that sorts by submission time: `t-YYYYMMDD-HHMMSS-<seq>-<random>`.
pub fn new_id(now: chrono::DateTime<chrono::Utc>, seq: usize) -> String {
    format!(
        "t-{}-{seq:05}-{:04x}",
        now.format("%Y%m%d-%H%M%S"),
        fastrand::u16(..)
    )
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;

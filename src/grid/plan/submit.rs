//! The submit transition: new tasks into the queue, all in one commit, or none if any id is taken.

use crate::gitcmd;
use crate::grid::engine::transact::Change;
use crate::grid::read::snapshot::Snapshot;
use crate::grid::{Conflict, Grid};
use crate::layout::{self, State};
use crate::odb::{self, Edit, Identity};
use crate::task::TaskSpec;
use anyhow::{bail, Context, Result};
use gix::ObjectId;
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

/// A submission committed on a local branch, not pushed (`submit --no-push`).
#[derive(Debug)]
pub struct Prepared {
    /// The new branch, e.g. `dgrid-submit-hello-1`.
    pub branch: String,
    pub commit: ObjectId,
    /// The remote's `main` the commit is on top of.
    pub base: ObjectId,
}

/// `submit --no-push`: the same commit a push would land (same checks, same sharded paths, on top
/// of the remote's `main` as fetched now), put on a new local branch instead of pushed. Pushing
/// that branch to `main` is then a fast-forward, accepted unless `main` moved in between; the
/// working tree, the index and the checked-out branch are never touched. `refuse` is asked first,
/// against the fetched snapshot (the caller's check that no id is archived: a plan does not read
/// the archive, which is the history's business).
pub fn on_branch(
    grid: &Grid,
    identity: &Identity,
    tasks: &[TaskSpec],
    refuse: impl FnOnce(&Snapshot) -> Result<()>,
) -> Result<Prepared> {
    let _lock = grid.lock()?;
    let tip = grid.fetch()?;
    let snapshot = Snapshot::read(&grid.repo, tip)?;
    refuse(&snapshot)?;
    let Some(change) = plan(&snapshot, tasks)? else {
        bail!("no tasks given");
    };
    let base = tip.context("the remote has no main branch")?;
    let message = format!(
        "dgrid: {}\n\nDgrid-Nonce: {:016x}\n",
        change.summary,
        fastrand::u64(..)
    );
    let commit = odb::write_commit(&grid.repo, Some(base), &change.edits, identity, &message)?;
    let branch = new_branch(&grid.dir, tasks[0].id.as_str(), commit)?;
    Ok(Prepared {
        branch,
        commit,
        base,
    })
}

/// Creates `dgrid-submit-<id>` (or `-2`, `-3`, ... when taken) at `commit`; never moves an
/// existing branch, which may hold an earlier submission not pushed yet.
fn new_branch(dir: &std::path::Path, first_id: &str, commit: ObjectId) -> Result<String> {
    let stem = format!("dgrid-submit-{first_id}");
    // An id is a valid ref name component unless it ends in ".lock" or "."; then the commit names it.
    let stem = match gitcmd::run(dir, &["check-ref-format", "--branch", &stem]) {
        Ok(out) if out.success => stem,
        _ => format!("dgrid-submit-{}", &commit.to_string()[..12]),
    };
    let zero = ObjectId::null(commit.kind()).to_string();
    for n in 1..=100 {
        let branch = if n == 1 {
            stem.clone()
        } else {
            format!("{stem}-{n}")
        };
        let full = format!("refs/heads/{branch}");
        if gitcmd::output_opt(dir, &["rev-parse", "--verify", "--quiet", &full])?.is_some() {
            continue;
        }
        // The old value "no such ref" makes creating it atomic against a concurrent submit.
        let out = gitcmd::run(dir, &["update-ref", &full, &commit.to_string(), &zero])?;
        if out.success {
            return Ok(branch);
        }
    }
    bail!("cannot create a branch {stem}: it and {stem}-2 .. {stem}-100 exist; delete old ones with git branch -D")
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

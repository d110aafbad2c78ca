//! Landing an archive run (`docs/ARCHITECTURE.md#archive`): fetch `main` and `dgrid-archive`,
//! plan (`grid::history::archive`), write both commits in the object database only, and move both refs in
//! ONE `git push --atomic` with a lease on each. Killed at any instant, the remote has either the
//! old pair of tips or the new one; a lost race (a worker pushed to `main` first) plans again on
//! what is there now. Also the reading side's fetch of the archive, and the worker's late results.

use crate::gitcmd;
use crate::grid::engine::atomic_push::{push_atomic, RefUpdate};
use crate::grid::engine::sync::PushOutcome;
use crate::grid::history::archive::{self, Retain, Totals, View};
use crate::grid::history::compact::{fetch_ref, remote_tip, ARCHIVE_REF};
use crate::grid::read::snapshot::Snapshot;
use crate::grid::{Conflict, Grid};
use crate::layout;
use crate::odb::{self, parse_oid, Identity};
use crate::task::{TaskResult, TaskSpec};
use anyhow::{bail, Result};
use gix::ObjectId;
use std::time::Duration;

const MAIN_REF: &str = "refs/heads/main";
/// The trailer of an archive commit naming the `main` commit pushed with it (the pair).
pub(crate) const MAIN_TRAILER: &str = "Dgrid-Archive-Main";
const TRIES: u32 = 30;

/// What an archive run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// Results moved off `main` (0: nothing was due).
    pub moved: usize,
    pub main: Option<ObjectId>,
    pub archive: Option<ObjectId>,
    pub totals: Totals,
}

/// Where the archive is tracked locally.
pub fn tracking_ref(grid: &Grid) -> String {
    format!("refs/dgrid/{}/archive", grid.remote)
}

/// Moves what `retain` lets go from `main` to `dgrid-archive` (see the module docs).
pub fn run(grid: &Grid, identity: &Identity, retain: Retain) -> Result<Archived> {
    let _lock = grid.lock()?;
    let tracking = tracking_ref(grid);
    for _ in 0..TRIES {
        let Some(main_tip) = fetch_ref(grid, MAIN_REF, &grid.tracking_ref)? else {
            bail!("{} has no main branch to archive", grid.describe());
        };
        let archive_tip = fetch_ref(grid, ARCHIVE_REF, &tracking)?;
        let snapshot = Snapshot::read(&grid.repo, Some(main_tip))?;
        let view = View::at(&grid.repo, archive_tip)?;
        let now = chrono::Utc::now();
        let Some(plan) = archive::plan(&snapshot, &view, retain, &grid.limits, now)? else {
            return Ok(Archived {
                moved: 0,
                main: Some(main_tip),
                archive: archive_tip,
                totals: view.totals()?,
            });
        };
        let nonce = fastrand::u64(..);
        let main_message = format!(
            "dgrid: archive {} results\n\nDgrid-Nonce: {nonce:016x}\n",
            plan.moved
        );
        let new_main = odb::write_commit(
            &grid.repo,
            Some(main_tip),
            &plan.main,
            identity,
            &main_message,
        )?;
        let archive_message = format!(
            "dgrid: archive {} results\n\n{MAIN_TRAILER}: {new_main}\nDgrid-Nonce: {nonce:016x}\n",
            plan.moved
        );
        let new_archive = odb::write_commit(
            &grid.repo,
            archive_tip,
            &plan.archive,
            identity,
            &archive_message,
        )?;
        let updates = [
            RefUpdate {
                name: MAIN_REF.into(),
                new: new_main,
                expected: Some(main_tip),
            },
            RefUpdate {
                name: ARCHIVE_REF.into(),
                new: new_archive,
                expected: archive_tip,
            },
        ];
        match push_atomic(&grid.dir, &grid.remote, &updates)? {
            PushOutcome::Done => {
                let _ = gitcmd::run(
                    &grid.dir,
                    &["update-ref", &grid.tracking_ref, &new_main.to_string()],
                );
                let _ = gitcmd::run(
                    &grid.dir,
                    &["update-ref", &tracking, &new_archive.to_string()],
                );
                return Ok(Archived {
                    moved: plan.moved,
                    main: Some(new_main),
                    archive: Some(new_archive),
                    totals: plan.totals,
                });
            }
            PushOutcome::LostRace(_) => {
                std::thread::sleep(Duration::from_millis(50 + fastrand::u64(..300)));
            }
            PushOutcome::Unreachable(why) | PushOutcome::RateLimited(why) => {
                // The answer may be lost while the push landed: the next fetch shows which (the
                // plan then finds those results archived already).
                eprintln!("git-dgrid: archive: retrying after: {why}");
                std::thread::sleep(Duration::from_secs(1));
            }
            PushOutcome::Declined(why) | PushOutcome::Denied(why) => bail!(
                "{} refused the archive push (main and dgrid-archive together): {why}",
                grid.describe()
            ),
            PushOutcome::NoBranch => bail!("{} lost its main branch", grid.describe()),
        }
    }
    bail!(
        "gave up archiving on {} after {TRIES} tries (main kept moving)",
        grid.describe()
    )
}

/// Fetches `dgrid-archive` for a reader (`None`: the grid has no archive). Asks first, and
/// fetches only when the tip is not here yet.
pub fn fetch_archive(grid: &Grid) -> Result<Option<ObjectId>> {
    let tracking = tracking_ref(grid);
    let Some(tip) = remote_tip(grid, ARCHIVE_REF)? else {
        return Ok(None);
    };
    let known = gitcmd::run(&grid.dir, &["cat-file", "-e", &format!("{tip}^{{commit}}")])?.success;
    if known {
        gitcmd::run(&grid.dir, &["update-ref", &tracking, &tip.to_string()])?;
        return Ok(Some(tip));
    }
    fetch_ref(grid, ARCHIVE_REF, &tracking)
}

/// The last fetched tip of the archive.
pub fn local_archive(dir: &std::path::Path, refs: &[&str]) -> Result<Option<ObjectId>> {
    for r in refs {
        if let Some(hex) = gitcmd::output_opt(dir, &["rev-parse", "--verify", "--quiet", r])? {
            return Ok(Some(parse_oid(&hex)?));
        }
    }
    Ok(None)
}

/// Records worker results for tasks that only the archive holds (see
/// [`archive::plan_late`]) with a push of `dgrid-archive` alone, leased on its tip; returns the
/// ids the archive holds now. Results for ids it does not hold are left to the caller.
pub fn append_late(
    grid: &Grid,
    identity: &Identity,
    results: &[TaskResult],
) -> Result<Vec<String>> {
    let tracking = tracking_ref(grid);
    for _ in 0..TRIES {
        let Some(tip) = fetch_ref(grid, ARCHIVE_REF, &tracking)? else {
            return Ok(Vec::new());
        };
        let view = View::at(&grid.repo, Some(tip))?;
        let (edits, held) = archive::plan_late(&view, results, &grid.limits)?;
        if edits.is_empty() {
            return Ok(held);
        }
        let message = format!(
            "dgrid: {} late results for archived tasks\n\nDgrid-Nonce: {:016x}\n",
            held.len(),
            fastrand::u64(..)
        );
        let commit = odb::write_commit(&grid.repo, Some(tip), &edits, identity, &message)?;
        let update = [RefUpdate {
            name: ARCHIVE_REF.into(),
            new: commit,
            expected: Some(tip),
        }];
        match push_atomic(&grid.dir, &grid.remote, &update)? {
            PushOutcome::Done => {
                let _ = gitcmd::run(&grid.dir, &["update-ref", &tracking, &commit.to_string()]);
                return Ok(held);
            }
            PushOutcome::LostRace(_)
            | PushOutcome::Unreachable(_)
            | PushOutcome::RateLimited(_) => {
                std::thread::sleep(Duration::from_millis(100 + fastrand::u64(..400)));
            }
            PushOutcome::Declined(why) | PushOutcome::Denied(why) => bail!(
                "{} refused the late results for dgrid-archive: {why}",
                grid.describe()
            ),
            PushOutcome::NoBranch => return Ok(Vec::new()),
        }
    }
    bail!(
        "gave up adding late results to dgrid-archive on {}",
        grid.describe()
    )
}

/// Refuses ids that only the archive holds (their results were moved off `main`): ids are never
/// reused. Called in each round of the submit loop, after `main` was fetched: an archive run
/// moves both refs at once, so the archive read now is at least as new as that `main`.
pub fn refuse_archived(grid: &Grid, snapshot: &Snapshot, tasks: &[TaskSpec]) -> Result<()> {
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    if let Some((id, file)) = first_archived(grid, snapshot, &ids)? {
        return Err(Conflict(format!(
            "task id {id:?} already exists on the grid (archived in dgrid-archive: {file}); ids are never reused"
        ))
        .into());
    }
    Ok(())
}

/// The first of `ids` that the archive holds, with its day file there. A `main` that counts
/// nothing archived (no `dgrid-archive.json`) has no archive to ask.
pub fn first_archived(
    grid: &Grid,
    snapshot: &Snapshot,
    ids: &[&str],
) -> Result<Option<(String, String)>> {
    // (A broken file still means: ask the archive.)
    let nothing = archive::Totals::default();
    if archive::main_totals(&grid.repo, snapshot.tip).is_ok_and(|t| t == nothing) {
        return Ok(None);
    }
    let tip = fetch_archive(grid)?;
    if tip.is_none() {
        return Ok(None);
    }
    let view = archive::View::at(&grid.repo, tip)?;
    for id in ids {
        if let Some(entry) = view.index(&layout::shard(id))?.get(*id) {
            return Ok(Some((id.to_string(), entry.file.clone())));
        }
    }
    Ok(None)
}

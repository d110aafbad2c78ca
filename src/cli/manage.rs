//! `git dgrid cancel` and `git dgrid retry`: a maintainer's hand on the queue.

use crate::cli::grid_args::GridArgs;
use crate::exit::No;
use crate::grid::{cancel, first_archived, retry, Grid, Outcome};
use crate::odb::Identity;
use anyhow::Result;
use std::io::Write;

/// Cancel tasks: queued or running ones move to failed with status "cancelled" (a running
/// container is stopped by its node)
#[derive(clap::Args, Debug)]
pub struct CancelArgs {
    /// The task ids
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Why, for the record
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Put failed tasks back in the queue, with their attempts reset
#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    /// The task ids
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// Runs a maintainer's transition; an id that does not fit is a clean "no" (exit 1). An id that
/// is not on `main` because the archive holds it is named as archived, not as unknown.
fn land(
    grid: &Grid,
    identity: &Identity,
    ids: &[String],
    plan: impl FnMut(&crate::grid::Snapshot) -> Result<Option<crate::grid::Change<()>>>,
) -> Result<()> {
    let refusal = match grid.transact(identity, plan) {
        Ok(Outcome::Committed { .. }) => return Ok(()),
        Ok(_) => return Err(No::new("nothing changed").into()),
        Err(e) => e,
    };
    let unknown_id = refusal.is::<crate::grid::Conflict>();
    if let Some((id, file)) = archived(grid, ids).filter(|_| unknown_id) {
        return Err(No::new(format!(
            "task {id:?} is archived (dgrid-archive: {file}): cancel and retry act on tasks on main; \
             to run it again, submit it under a new id"
        ))
        .into());
    }
    super::refused(Err(refusal), "nothing changed")
}

/// The first of `ids` not on `main` that the archive holds (the grid as last fetched).
fn archived(grid: &Grid, ids: &[String]) -> Option<(String, String)> {
    let snapshot = crate::grid::Snapshot::read(&grid.repo, grid.tip().ok()?).ok()?;
    let missing: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| snapshot.get(id).is_none())
        .collect();
    if missing.is_empty() {
        return None;
    }
    first_archived(grid, &snapshot, &missing).ok().flatten()
}

pub fn run_cancel(args: CancelArgs) -> Result<()> {
    let grid = Grid::open(&args.grid.location())?;
    let identity = grid.maintainer();
    let who = identity.email.clone();
    land(&grid, &identity, &args.ids, |snapshot| {
        cancel(
            &grid.repo,
            snapshot,
            &args.ids,
            &who,
            &args.reason,
            &grid.limits,
            chrono::Utc::now(),
        )
    })?;
    let mut out = std::io::stdout().lock();
    for id in &args.ids {
        writeln!(out, "cancelled {id}")?;
    }
    Ok(out.flush()?)
}

pub fn run_retry(args: RetryArgs) -> Result<()> {
    let grid = Grid::open(&args.grid.location())?;
    let identity = grid.maintainer();
    land(&grid, &identity, &args.ids, |snapshot| {
        retry(&grid.repo, snapshot, &args.ids, &grid.limits)
    })?;
    let mut out = std::io::stdout().lock();
    for id in &args.ids {
        writeln!(out, "queued {id} again")?;
    }
    Ok(out.flush()?)
}

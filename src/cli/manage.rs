//! `git dgrid cancel` and `git dgrid retry`: a maintainer's hand on the queue.

use crate::exit::No;
use crate::grid::location::GridArgs;
use crate::grid::{manage, Grid, Outcome};
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

fn user(grid: &Grid) -> Identity {
    crate::repo::git_identity(&grid.dir).unwrap_or_else(|| Identity {
        name: "git-dgrid".into(),
        email: "git-dgrid@localhost".into(),
    })
}

/// Runs a maintainer's transition; an id that does not fit is a clean "no" (exit 1).
fn land(
    grid: &Grid,
    identity: &Identity,
    plan: impl FnMut(&crate::grid::Snapshot) -> Result<Option<crate::grid::Change<()>>>,
) -> Result<()> {
    match super::refused(grid.transact(identity, plan), "nothing changed")? {
        Outcome::Committed { .. } => Ok(()),
        _ => Err(No::new("nothing changed").into()),
    }
}

pub fn run_cancel(args: CancelArgs) -> Result<()> {
    let grid = Grid::open(&args.grid)?;
    let identity = user(&grid);
    let who = identity.email.clone();
    land(&grid, &identity, |snapshot| {
        manage::cancel(
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
    let grid = Grid::open(&args.grid)?;
    let identity = user(&grid);
    land(&grid, &identity, |snapshot| {
        manage::retry(&grid.repo, snapshot, &args.ids, &grid.limits)
    })?;
    let mut out = std::io::stdout().lock();
    for id in &args.ids {
        writeln!(out, "queued {id} again")?;
    }
    Ok(out.flush()?)
}

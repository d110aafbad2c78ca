//! `git dgrid compact`: a maintainer's command that gives `main` a fresh root commit.

use crate::cli::grid_args::GridArgs;
use crate::grid::{compact, Grid};
use anyhow::Result;
use std::io::Write;

/// Replace main's history with one root commit holding its current tree (a force push, with a
/// lease); the old history stays reachable from the branch dgrid-archive
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep no old history: dgrid-archive's tip is rewritten as a root commit with its tree
    #[arg(long)]
    pub drop_history: bool,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<()> {
    let grid = Grid::open(&args.grid.location())?;
    let done = compact(&grid, &grid.maintainer(), args.drop_history)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "compacted main: {} -> new root {}",
        done.old_tip, done.new_root
    )?;
    match (done.archive, args.drop_history) {
        (Some(a), false) => writeln!(out, "old history kept on dgrid-archive ({a})")?,
        (_, true) => writeln!(
            out,
            "old history dropped (dgrid-archive keeps only its tree)"
        )?,
        (None, false) => {}
    }
    writeln!(
        out,
        "clones of main: git fetch origin && git reset --hard origin/main"
    )?;
    Ok(())
}

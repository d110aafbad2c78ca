//! `git dgrid archive`: a maintainer's command that moves older results off `main` into the
//! branch `dgrid-archive` (`docs/ARCHITECTURE.md#archive`).

use crate::cli::grid_args::GridArgs;
use crate::grid::{parse_duration, run_archive, Grid, Retain};
use crate::settings::RETAIN;
use anyhow::{anyhow, Result};
use std::io::Write;

/// Move older results off main into the branch dgrid-archive (JSON-lines files per day and
/// shard, an index and running totals), main and dgrid-archive moved in one atomic push with a
/// lease on each; status, show and logs still find them
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep the newest N results on main (with --older-than: whichever keeps more) [default: from
    /// git config dgrid.retain, else 10000,7d]
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Keep the results younger than DURATION (e.g. 7d, 12h, 30m) on main
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub older_than: Option<chrono::Duration>,
    #[command(flatten)]
    pub grid: GridArgs,
}

fn duration(text: &str) -> Result<chrono::Duration, String> {
    parse_duration(text)
}

/// The flags when either is given (they replace the configured rule), else `dgrid.retain`.
fn retain(args: &Args) -> Result<Retain> {
    if args.keep.is_some() || args.older_than.is_some() {
        return Ok(Retain {
            keep: args.keep,
            older_than: args.older_than,
        });
    }
    let text: String = RETAIN.resolve(None::<String>, &crate::repo::command_config()?)?;
    text.parse()
        .map_err(|why| anyhow!("git config dgrid.retain: {why}"))
}

pub fn run(args: Args) -> Result<()> {
    let retain = retain(&args)?;
    let grid = Grid::open(&args.grid.location())?;
    let done = run_archive(&grid, &grid.maintainer(), retain)?;
    let mut out = std::io::stdout().lock();
    if done.moved == 0 {
        writeln!(out, "nothing to archive (keeping {retain})")?;
    } else {
        writeln!(
            out,
            "archived {} results to dgrid-archive ({}); the archive holds {} completed, {} failed",
            done.moved,
            done.archive.map(|a| a.to_string()).unwrap_or_default(),
            done.totals.completed,
            done.totals.failed
        )?;
    }
    Ok(())
}

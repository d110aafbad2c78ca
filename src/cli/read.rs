//! Opening the grid for reading (status, show, logs): fetch first unless told not to, from the
//! clone's remote, a cache clone of `--repo`, or a given ref; in the grid repository itself (bare,
//! no remote) its own `main`.

use super::poll_pace::{self, Look};
use crate::cli::grid_args::GridArgs;
use crate::gitcmd;
use crate::grid::{archive_tracking_ref, fetch_archive, local_archive, Grid, Location};
use crate::repo::LocalRepo;
use anyhow::{Context, Result};
use gix::ObjectId;

#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// Read what was fetched last, without fetching
    #[arg(long)]
    pub no_fetch: bool,
    /// Read this ref or commit instead of the remote's main (no fetch)
    #[arg(long = "ref", value_name = "REF")]
    pub reference: Option<String>,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub struct ReadSource {
    pub repo: gix::Repository,
    /// Whether this read fetched a new tip from the remote (false: what was there already).
    pub fetched: bool,
    pub tip: Option<ObjectId>,
    /// Where `dgrid-archive` is read from when a task is not on `main` (see [`ReadSource::archive`]).
    archive: ArchiveSource,
    /// For headings: the remote, or the ref read.
    pub describe: String,
    pub limits: crate::task::Limits,
}

enum ArchiveSource {
    /// A ref or commit read locally (`--ref`, `--no-fetch`, the grid repository itself).
    Local(Option<ObjectId>),
    /// The remote's archive, fetched when first asked for.
    Remote(Location),
}

impl ReadSource {
    /// The tip of `dgrid-archive` (`None`: the grid has none), fetched only now: `show` and
    /// `logs` of a task that is not on `main` need it, `status` never does. Fetched after
    /// `main`, it is at least as new as the `main` read (an archive run moves both at once).
    pub fn archive(&self) -> Result<Option<ObjectId>> {
        match &self.archive {
            ArchiveSource::Local(tip) => Ok(*tip),
            ArchiveSource::Remote(args) => fetch_archive(&Grid::open_resolved(args)?),
        }
    }
}

/// How fresh a read of a remote grid must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// Fetch first (unless `--no-fetch`).
    Always,
    /// Ask the remote (`ls-remote`) and fetch only if its tip is not this one: a follower's
    /// repeated reads (`status --watch`).
    IfMoved(Option<ObjectId>),
    /// What was fetched last, without asking the remote.
    Never,
}

pub fn open(args: &ReadArgs) -> Result<ReadSource> {
    open_with(args, Fetch::Always)
}

/// Like [`open`], as fresh as `fetch` says.
pub fn open_with(args: &ReadArgs, fetch: Fetch) -> Result<ReadSource> {
    if let Some(reference) = &args.reference {
        let local = LocalRepo::current()?;
        let hex = gitcmd::output(
            &local.dir,
            &[
                "rev-parse",
                "--verify",
                "--end-of-options",
                &format!("{reference}^{{commit}}"),
            ],
        )
        .with_context(|| format!("--ref {reference}: no such commit"))?;
        let archive = local_archive(
            &local.dir,
            &[
                "refs/heads/dgrid-archive",
                &format!("refs/dgrid/{}/archive", crate::settings::REMOTE.fixed()),
            ],
        )?;
        return Ok(ReadSource {
            fetched: false,
            repo: local.open()?,
            archive: ArchiveSource::Local(archive),
            tip: Some(crate::odb::parse_oid(&hex)?),
            describe: reference.clone(),
            limits: local.limits()?,
        });
    }
    let grid_args = args.grid.resolve()?;
    if grid_args.repo.is_none() {
        let local = LocalRepo::current()?;
        let remote = grid_args.remote.clone().or_else(|| {
            let default = crate::settings::REMOTE.fixed();
            gitcmd::output_opt(&local.dir, &["remote", "get-url", default])
                .ok()
                .flatten()
                .map(|_| default.into())
        });
        if remote.is_none() {
            // The grid repository itself: its own main.
            let tip = gitcmd::output_opt(
                &local.dir,
                &["rev-parse", "--verify", "--quiet", "refs/heads/main"],
            )?
            .map(|h| crate::odb::parse_oid(&h))
            .transpose()?;
            // A repository with no remote and no grid on its main is not a grid: showing an
            // empty one would pretend it is (a newcomer's clone before `git remote add`).
            let laid_out = gitcmd::output_opt(
                &local.dir,
                &["rev-parse", "--verify", "--quiet", "refs/heads/main:tasks"],
            )?
            .is_some();
            let bare = gitcmd::output(&local.dir, &["rev-parse", "--is-bare-repository"])?;
            if !laid_out && bare.trim() != "true" {
                anyhow::bail!(
                    "this repository has no remote named {} and no grid on its main: add the \
                     grid's remote (git remote add {} URL), pass --repo URL, or run git dgrid \
                     init to make this repository a grid",
                    crate::settings::REMOTE.fixed(),
                    crate::settings::REMOTE.fixed()
                );
            }
            let describe = local.git_dir.display().to_string();
            let archive = local_archive(&local.dir, &["refs/heads/dgrid-archive"])?;
            return Ok(ReadSource {
                archive: ArchiveSource::Local(archive),
                fetched: false,
                repo: local.open()?,
                tip,
                describe,
                limits: local.limits()?,
            });
        }
    }
    let grid = Grid::open_resolved(&grid_args)?;
    let (tip, fetched) = match fetch {
        _ if args.no_fetch => (grid.tip()?, false),
        Fetch::Always => (grid.fetch()?, true),
        Fetch::Never => (grid.tip()?, false),
        Fetch::IfMoved(known) => match poll_pace::look(&grid, Some(known))? {
            Look::Moved(tip) => (tip, true),
            Look::Same | Look::Limited => (grid.tip()?, false),
        },
    };
    let archive = if args.no_fetch || fetch == Fetch::Never {
        ArchiveSource::Local(local_archive(&grid.dir, &[&archive_tracking_ref(&grid)])?)
    } else {
        ArchiveSource::Remote(grid_args.clone())
    };
    Ok(ReadSource {
        archive,
        fetched,
        describe: grid.describe(),
        tip,
        limits: grid.limits,
        repo: grid.repo,
    })
}

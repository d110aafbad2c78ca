//! `git dgrid init`: lay out a grid in a clone, or create a new local grid remote with `--bare`.

use crate::gitcmd;
use crate::layout;
use crate::odb::{self, Edit};
use crate::repo::LocalRepo;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Lay out tasks/{queue,in_progress,completed,failed}/ and nodes/, commit, and install the pre-push hook
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Create a new grid remote instead: a bare repository at PATH with the layout on main
    #[arg(long, value_name = "PATH")]
    pub bare: Option<PathBuf>,
    /// Push the layout commit to the remote
    #[arg(long, conflicts_with = "bare")]
    pub push: bool,
    /// The remote to push to [default: git config dgrid.remote, else origin]
    #[arg(long, value_name = "NAME", conflicts_with = "bare")]
    pub remote: Option<String>,
    /// Do not install the pre-push hook
    #[arg(long, conflicts_with = "bare")]
    pub no_hooks: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.bare {
        init_bare(path)?;
        writeln!(
            out,
            "Created an empty grid at {} (branch main).",
            path.display()
        )?;
        writeln!(out, "Clone it with: git clone {}", path.display())?;
        return Ok(());
    }
    let repo = LocalRepo::current()?;
    let Some(top) = repo.work_tree.clone() else {
        bail!("git dgrid init lays out a working tree; in a bare repository use git dgrid init --bare PATH to create a new grid");
    };
    let created = lay_out(&top)?;
    // What a run stopped before its commit left (files laid out, maybe staged) is committed now:
    // the layout is "already here" only once HEAD has it.
    let pending = not_committed(&top)?;
    if pending.is_empty() {
        writeln!(out, "The grid layout is already here.")?;
    } else {
        if let Err(e) = commit_layout(&top, &pending) {
            // Finish or change nothing: what this run wrote goes again.
            undo(&top, &created);
            return Err(e);
        }
        writeln!(out, "Laid out the grid: {}", pending.join(", "))?;
    }
    if args.push {
        let remote = match args.remote {
            Some(r) => r,
            None => repo
                .config("dgrid.remote")?
                .unwrap_or_else(|| crate::settings::REMOTE.fixed().into()),
        };
        // The grid is `main`, whatever the clone's current branch is called: an empty repository
        // on many servers (gitolite, `git init --bare` with git's old default) has HEAD on master.
        gitcmd::output(&top, &["push", "--quiet", &remote, "HEAD:refs/heads/main"])
            .with_context(|| format!("cannot push the layout to {remote}'s main"))?;
        writeln!(out, "Pushed the layout to {remote}'s main.")?;
    }
    if !args.no_hooks {
        super::install_hooks::report_install(&repo.hooks_dir()?)?;
    }
    Ok(())
}

/// The layout's placeholder files that are on disk but not in HEAD (all of them before the first
/// commit).
fn not_committed(top: &Path) -> Result<Vec<String>> {
    let mut pending = Vec::new();
    for path in layout::skeleton() {
        if !top.join(&path).exists() {
            continue;
        }
        let spec = format!("HEAD:{path}");
        let committed = gitcmd::run(top, &["cat-file", "-e", &spec])?.success;
        if !committed {
            pending.push(path);
        }
    }
    Ok(pending)
}

/// Commits `paths` (only them) as the one identity of a person's command: a machine where git
/// knows no one still gets its layout committed.
fn commit_layout(top: &Path, paths: &[String]) -> Result<()> {
    let mut add = vec!["add", "--"];
    add.extend(paths.iter().map(String::as_str));
    gitcmd::output(top, &add)?;
    let who = crate::repo::person_identity(top);
    let (name, email) = (
        format!("user.name={}", who.name),
        format!("user.email={}", who.email),
    );
    let mut commit = vec!["-c", &name, "-c", &email, "commit", "--quiet"];
    commit.extend(["-m", "dgrid: lay out the grid", "--"]);
    commit.extend(paths.iter().map(String::as_str));
    gitcmd::output(top, &commit).context("cannot commit the grid layout")?;
    Ok(())
}

/// Takes back what this run wrote: unstages and removes the placeholder files it created.
fn undo(top: &Path, created: &[String]) {
    if created.is_empty() {
        return;
    }
    let mut reset = vec!["rm", "--cached", "--quiet", "--ignore-unmatch", "--"];
    reset.extend(created.iter().map(String::as_str));
    let _ = gitcmd::run(top, &reset);
    for path in created {
        let full = top.join(path);
        let _ = std::fs::remove_file(&full);
        // Folders this run made, emptied again (remove_dir leaves one with content alone).
        let mut dir = full.parent();
        while let Some(d) = dir.filter(|d| *d != top) {
            if std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
}

/// Creates the placeholder files that are missing; returns their paths.
fn lay_out(top: &Path) -> Result<Vec<String>> {
    let mut created = Vec::new();
    for path in layout::skeleton() {
        let full = top.join(&path);
        let dir = full.parent().expect("skeleton paths have a folder");
        if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
            continue; // the folder exists with content: git already keeps it
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&full, b"").with_context(|| format!("cannot write {}", full.display()))?;
        created.push(path);
    }
    Ok(created)
}

/// A new bare repository whose `main` holds the empty layout.
pub fn init_bare(path: &Path) -> Result<()> {
    if path.exists()
        && std::fs::read_dir(path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", path.display());
    }
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    gitcmd::output(
        path,
        &["init", "--quiet", "--bare", "--initial-branch=main"],
    )?;
    // The grid protocol only ever fast-forwards main; refuse anything else as a safety net.
    gitcmd::output(path, &["config", "receive.denyNonFastForwards", "true"])?;
    let repo = odb::open(path)?;
    let edits: Vec<Edit> = layout::skeleton()
        .into_iter()
        .map(|path| Edit::Write {
            path,
            content: Vec::new(),
        })
        .collect();
    let identity = crate::repo::person_identity(path);
    let commit = odb::write_commit(&repo, None, &edits, &identity, "dgrid: lay out the grid\n")?;
    gitcmd::output(
        path,
        &["update-ref", "refs/heads/main", &commit.to_string(), ""],
    )?;
    Ok(())
}

//! `git dgrid compact`: `main` becomes one fresh root commit holding its current tree. The commit's
//! trailers record what it replaced (`Dgrid-Compacted-From: <old tip>`, `Dgrid-Compacted-At`); the
//! author is who compacted. The old history stays reachable from `dgrid-archive` (a commit there
//! whose second parent is the old tip), both refs moved in one atomic push with a lease on each,
//! so racing workers lose their lease on `main` and re-plan on the new root. `--drop-history`
//! keeps no old-tip parent and rewrites `dgrid-archive`'s tip as a root commit with its tree.

use crate::gitcmd;
use crate::grid::engine::atomic_push::{push_atomic, RefUpdate};
use crate::grid::engine::sync::PushOutcome;
use crate::grid::Grid;
use crate::odb::{parse_oid, Identity};
use anyhow::{bail, Context, Result};
use gix::ObjectId;

pub(crate) const ARCHIVE_REF: &str = "refs/heads/dgrid-archive";
const MAIN_REF: &str = "refs/heads/main";
/// The trailer naming the tip a compaction replaced.
pub const FROM_TRAILER: &str = "Dgrid-Compacted-From";
const TRIES: u32 = 20;

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    pub old_tip: ObjectId,
    pub new_root: ObjectId,
    /// The new tip of `dgrid-archive`, if it has one.
    pub archive: Option<ObjectId>,
}

/// Replaces `main`'s history with one root commit (see the module docs).
pub fn compact(grid: &Grid, identity: &Identity, drop_history: bool) -> Result<Compacted> {
    let archive_tracking = format!("refs/dgrid/{}/archive", grid.remote);
    for _ in 0..TRIES {
        let Some(old_tip) = fetch_ref(grid, MAIN_REF, &grid.tracking_ref)? else {
            bail!("{} has no main branch to compact", grid.describe());
        };
        let archive_tip = fetch_ref(grid, ARCHIVE_REF, &archive_tracking)?;
        let at = crate::time::rfc3339(chrono::Utc::now());
        let message = format!(
            "dgrid: compact history\n\n{FROM_TRAILER}: {old_tip}\nDgrid-Compacted-At: {at}\n"
        );
        let new_root = commit_tree(
            grid,
            identity,
            &format!("{old_tip}^{{tree}}"),
            &[],
            &message,
        )?;
        let mut updates = vec![RefUpdate {
            name: MAIN_REF.into(),
            new: new_root,
            expected: Some(old_tip),
        }];
        let archive = match (archive_tip, drop_history) {
            (Some(prev), true) => Some(commit_tree(
                grid,
                identity,
                &format!("{prev}^{{tree}}"),
                &[],
                &format!(
                    "dgrid: archive without old history of main\n\nDgrid-Compacted-At: {at}\n"
                ),
            )?),
            (None, true) => None,
            (prev, false) => {
                let tree = match prev {
                    Some(p) => format!("{p}^{{tree}}"),
                    None => empty_tree(grid)?,
                };
                let parents: Vec<ObjectId> = prev.into_iter().chain([old_tip]).collect();
                Some(commit_tree(
                    grid,
                    identity,
                    &tree,
                    &parents,
                    &format!("dgrid: keep main's history before compaction\n\n{FROM_TRAILER}: {old_tip}\nDgrid-Compacted-At: {at}\n"),
                )?)
            }
        };
        if let Some(new) = archive {
            updates.push(RefUpdate {
                name: ARCHIVE_REF.into(),
                new,
                expected: archive_tip,
            });
        }
        match push_atomic(&grid.dir, &grid.remote, &updates)? {
            PushOutcome::Done => {
                let _ = gitcmd::run(
                    &grid.dir,
                    &["update-ref", &grid.tracking_ref, &new_root.to_string()],
                );
                return Ok(Compacted {
                    old_tip,
                    new_root,
                    archive,
                });
            }
            // A worker landed a transition first: compact what is there now. If main did not
            // move, the remote refuses non-fast-forward pushes of main (its policy, not a race).
            PushOutcome::LostRace(why) => {
                if remote_tip(grid, MAIN_REF)? == Some(old_tip)
                    && remote_tip(grid, ARCHIVE_REF)? == archive_tip
                {
                    bail!(
                        "{} refuses to replace main ({why}): a compaction is a force push; allow it for this push \
                         (a bare remote: git config receive.denyNonFastForwards false; GitHub: a bypass of the \
                         \"block force pushes\" rule, see README \"Compacting history\")",
                        grid.describe()
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(50 + fastrand::u64(..200)))
            }
            PushOutcome::Unreachable(why) | PushOutcome::RateLimited(why) => {
                std::thread::sleep(std::time::Duration::from_secs(1));
                eprintln!("git-dgrid: compact: retrying after: {why}");
            }
            PushOutcome::Declined(why) | PushOutcome::Denied(why) => bail!(
                "{} refused the compaction (a force push of main and dgrid-archive; see README \"Compacting history\"): {why}",
                grid.describe()
            ),
            PushOutcome::NoBranch => bail!("{} lost its main branch", grid.describe()),
        }
    }
    bail!(
        "gave up compacting {} after {TRIES} tries (main kept moving)",
        grid.describe()
    )
}

/// Where the remote's `remote_ref` is now (`None`: absent).
pub(crate) fn remote_tip(grid: &Grid, remote_ref: &str) -> Result<Option<ObjectId>> {
    let listed = gitcmd::run_remote(&grid.dir, &["ls-remote", &grid.remote, remote_ref])?;
    if !listed.success {
        bail!("cannot reach {}: {}", grid.describe(), listed.stderr.trim());
    }
    match listed.stdout.split_whitespace().next() {
        Some(hex) => Ok(Some(parse_oid(hex)?)),
        None => Ok(None),
    }
}

/// Fetches `remote_ref` into `local_ref` (forced); `None` when the remote has no such ref.
pub(crate) fn fetch_ref(
    grid: &Grid,
    remote_ref: &str,
    local_ref: &str,
) -> Result<Option<ObjectId>> {
    if remote_tip(grid, remote_ref)?.is_none() {
        return Ok(None);
    }
    let spec = format!("+{remote_ref}:{local_ref}");
    let out = gitcmd::run_remote(
        &grid.dir,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            &grid.remote,
            &spec,
        ],
    )?;
    if !out.success {
        bail!(
            "cannot fetch {remote_ref} from {}: {}",
            grid.describe(),
            out.stderr.trim()
        );
    }
    Ok(Some(parse_oid(
        gitcmd::output(&grid.dir, &["rev-parse", local_ref])?.trim(),
    )?))
}

fn empty_tree(grid: &Grid) -> Result<String> {
    let out = duct::cmd!(
        gitcmd::require_git()?,
        "hash-object",
        "-t",
        "tree",
        "-w",
        "--stdin"
    )
    .dir(&grid.dir)
    .stdin_bytes(Vec::new())
    .read()
    .context("cannot write the empty tree")?;
    Ok(out.trim().to_string())
}

fn commit_tree(
    grid: &Grid,
    identity: &Identity,
    tree: &str,
    parents: &[ObjectId],
    message: &str,
) -> Result<ObjectId> {
    let mut cmd = vec![
        "commit-tree".to_string(),
        tree.to_string(),
        "-m".into(),
        message.to_string(),
    ];
    for p in parents {
        cmd.push("-p".into());
        cmd.push(p.to_string());
    }
    let out = duct::cmd(gitcmd::require_git()?, &cmd)
        .dir(&grid.dir)
        .env("GIT_AUTHOR_NAME", &identity.name)
        .env("GIT_AUTHOR_EMAIL", &identity.email)
        .env("GIT_COMMITTER_NAME", &identity.name)
        .env("GIT_COMMITTER_EMAIL", &identity.email)
        .read()
        .context("git commit-tree failed")?;
    parse_oid(out.trim())
}

/// The root of `commit`'s first-parent history and its committer date (RFC 3339), for messages.
pub(crate) fn root_of(dir: &std::path::Path, commit: &str) -> Result<Option<(String, String)>> {
    let roots = gitcmd::output(dir, &["rev-list", "--max-parents=0", commit])?;
    let Some(root) = roots.lines().next() else {
        return Ok(None);
    };
    let date = gitcmd::output(dir, &["show", "-s", "--format=%cI", root])?;
    Ok(Some((root.to_string(), date.trim().to_string())))
}

/// The resurrection guard: why pushing `local` onto the remote's `main` at `remote` would bring
/// back history from before a compaction, if it would. `remote` must be an ancestor-closed part
/// of the current grid: every pushed commit must descend from its root, and none be a root itself.
pub fn resurrection(dir: &std::path::Path, local: &str, remote: &str) -> Result<Option<String>> {
    let fix = "run `git fetch origin && git reset --hard origin/main` (your own commits on main are dropped: re-apply them after)";
    let known = gitcmd::run(dir, &["cat-file", "-e", &format!("{remote}^{{commit}}")])?.success;
    if !known {
        // Most often someone pushed first (git would refuse this push too); after a compaction
        // it is the new root's line. Either way: fetch first, and the fetch tells which.
        return Ok(Some(format!(
            "the remote's main is at {remote}, which this clone has not fetched: run `git pull` first; \
             if `git fetch` reports main as a \"forced update\" (main was compacted), {fix}"
        )));
    }
    let Some((root, date)) = root_of(dir, remote)? else {
        return Ok(None);
    };
    let descends = gitcmd::run(dir, &["merge-base", "--is-ancestor", &root, local])?.success;
    let foreign_roots = gitcmd::output(
        dir,
        &["rev-list", "--max-parents=0", local, &format!("^{remote}")],
    )?;
    if descends && foreign_roots.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "this clone's main predates the compaction of {date} (root {root}); {fix}"
    )))
}

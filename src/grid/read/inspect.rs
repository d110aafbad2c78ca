//! Gathering the files `validate` judges: from the tree of a commit, from the files a range of
//! commits added or changed, or from disk. The rules themselves are pure and live in the contract
//! (`crate::validate`); reading trees and commits is the grid's business (`docs/ARCHITECTURE.md#layers`).

use crate::layout::{self, EntryKind, State};
use crate::odb::{self, Blob};
use crate::task;
use crate::validate::{Content, Entry};
use anyhow::{Context, Result};
use gix::ObjectId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every file under `tasks/` and `nodes/` in the tree of `commit`.
pub fn entries_at_commit(repo: &gix::Repository, commit: ObjectId) -> Result<Vec<Entry>> {
    let root = odb::commit_tree(repo, commit)?;
    let mut found = Vec::new();
    for dir in [layout::TASKS_DIR, layout::NODES_DIR] {
        if let Some(tree) = odb::subtree(repo, root, dir)? {
            odb::walk(repo, tree, dir, &mut found)?;
        }
    }
    let mut entries = Vec::with_capacity(found.len());
    for e in found {
        let content = match e.kind {
            EntryKind::File => match odb::read_blob(repo, e.oid, task::MAX_FILE_BYTES)? {
                Blob::Bytes(b) => Content::Bytes(b),
                Blob::TooLarge(n) => Content::TooLarge(n),
            },
            _ => Content::Unread,
        };
        entries.push(Entry {
            path: e.path,
            kind: e.kind,
            content,
        });
    }
    Ok(entries)
}

/// Files on disk: each path may be a file or a folder (walked without following symlinks).
/// Paths inside `top` are named relative to it so the layout rules apply.
pub fn entries_from_disk(top: Option<&Path>, paths: &[PathBuf]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for path in paths {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}: cannot list", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            children.sort();
            entries.extend(entries_from_disk(top, &children)?);
            continue;
        }
        let name = display_path(top, path);
        let (kind, content) = if meta.file_type().is_symlink() {
            (EntryKind::Symlink, Content::Unread)
        } else if !meta.is_file() {
            (EntryKind::Special, Content::Unread)
        } else if meta.len() > task::MAX_FILE_BYTES {
            (EntryKind::File, Content::TooLarge(meta.len()))
        } else {
            match std::fs::read(path) {
                Ok(bytes) => (EntryKind::File, Content::Bytes(bytes)),
                Err(e) => (EntryKind::File, Content::Unreadable(e.to_string())),
            }
        };
        entries.push(Entry {
            path: name,
            kind,
            content,
        });
    }
    Ok(entries)
}

fn display_path(top: Option<&Path>, path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let relative = top
        .and_then(|top| absolute.strip_prefix(top).ok())
        .unwrap_or(path);
    relative
        .components()
        // The root as "" so that an absolute path joins to "/tmp/x", not "//tmp/x".
        .map(|c| match c {
            std::path::Component::RootDir => "".into(),
            c => c.as_os_str().to_string_lossy(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What to validate when `commits` are pushed with `tip` on top (a `--rev` range, a pre-push): the
/// entries at the tip, and the paths the commits added or changed.
pub fn changed_at_tip(
    repo: &gix::Repository,
    tip: ObjectId,
    commits: &[ObjectId],
) -> Result<(Vec<Entry>, BTreeSet<String>)> {
    let changed = changed_paths(repo, commits)?;
    if changed.is_empty() {
        return Ok((Vec::new(), changed));
    }
    Ok((entries_at_commit(repo, tip)?, changed))
}

/// Paths under `tasks/` and `nodes/` that `commits` added or changed relative to their first parent
/// (or to nothing, for a root commit). Identical subtrees are skipped without being read.
pub(crate) fn changed_paths(
    repo: &gix::Repository,
    commits: &[ObjectId],
) -> Result<BTreeSet<String>> {
    changed_paths_under(
        repo,
        commits,
        &[layout::TASKS_DIR.to_string(), layout::NODES_DIR.to_string()],
    )
}

/// Like [`changed_paths`], but only below `dirs` (e.g. the result states): the newest results of a
/// commit that queued 100,000 tasks are found without listing those tasks.
pub fn changed_paths_under(
    repo: &gix::Repository,
    commits: &[ObjectId],
    dirs: &[String],
) -> Result<BTreeSet<String>> {
    let mut changed = BTreeSet::new();
    for &commit in commits {
        let tree = odb::commit_tree(repo, commit)?;
        let parent = repo
            .find_commit(commit)?
            .parent_ids()
            .next()
            .map(|p| p.detach());
        let parent_tree = match parent {
            Some(p) => Some(odb::commit_tree(repo, p)?),
            None => None,
        };
        for dir in dirs {
            let new = odb::subtree(repo, tree, dir)?;
            let old = match parent_tree {
                Some(t) => odb::subtree(repo, t, dir)?,
                None => None,
            };
            if let Some(new) = new {
                diff_trees(repo, old, new, dir, &mut changed)?;
            }
        }
    }
    Ok(changed)
}

fn diff_trees(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: ObjectId,
    prefix: &str,
    out: &mut BTreeSet<String>,
) -> Result<()> {
    if old == Some(new) {
        return Ok(());
    }
    let entries = |id: ObjectId| -> Result<BTreeMap<String, (bool, ObjectId)>> {
        let tree = repo.find_tree(id)?;
        let decoded = tree.decode()?;
        Ok(decoded
            .entries
            .iter()
            .map(|e| (e.filename.to_string(), (e.mode.is_tree(), e.oid.to_owned())))
            .collect())
    };
    let old_entries = match old {
        Some(o) => entries(o)?,
        None => BTreeMap::new(),
    };
    for (name, (is_tree, oid)) in entries(new)? {
        let path = format!("{prefix}/{name}");
        let before = old_entries.get(&name);
        if before.map(|b| b.1) == Some(oid) {
            continue;
        }
        if is_tree {
            let old_sub = before.filter(|b| b.0).map(|b| b.1);
            diff_trees(repo, old_sub, oid, &path, out)?;
        } else {
            out.insert(path);
        }
    }
    Ok(())
}

/// How many tasks are queued at `commit` (flat or sharded), without reading any task file.
pub fn queue_length(repo: &gix::Repository, commit: ObjectId) -> Result<usize> {
    let root = odb::commit_tree(repo, commit)?;
    let Some(queue) = odb::subtree(repo, root, &State::Queue.dir())? else {
        return Ok(0);
    };
    let tree = repo.find_tree(queue)?;
    let mut count = 0;
    for entry in tree.decode()?.entries {
        if entry.mode.is_tree() {
            let shard = repo.find_tree(entry.oid.to_owned())?;
            count += shard
                .decode()?
                .entries
                .iter()
                .filter(|e| e.filename.ends_with(b".json"))
                .count();
        } else if entry.filename.ends_with(b".json") {
            count += 1;
        }
    }
    Ok(count)
}

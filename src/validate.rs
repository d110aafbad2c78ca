//! Validating the files of a grid: from the working tree, from a commit, or only those a range of
//! commits added or changed. The per-file rules live in `task`; this module adds the rules that need
//! the whole tree (file name = id, one state per id, no symlinks) and the ways to gather files.

use crate::layout::{self, PathKind, State};
use crate::odb::{self, Blob, EntryKind};
use crate::problem::Problem;
use crate::task::{self, Limits, Status};
use anyhow::{Context, Result};
use gix::ObjectId;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file to validate, with its content when it is a regular file of an acceptable size.
pub struct Entry {
    /// Repository-relative path (or the path the user gave, for files outside a repository).
    pub path: String,
    pub kind: EntryKind,
    pub content: Content,
}

pub enum Content {
    Bytes(Vec<u8>),
    TooLarge(u64),
    /// Not read: not a regular file.
    Unread,
    Unreadable(String),
}

/// Validates `entries`. Only files whose path is in `scope` (all when `None`) get problems; the
/// others still count for "one state per id".
pub fn check_entries(
    entries: &[Entry],
    scope: Option<&BTreeSet<String>>,
    limits: &Limits,
) -> Vec<Problem> {
    let in_scope = |path: &str| scope.is_none_or(|s| s.contains(path));
    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        let kind = match layout::classify(&entry.path) {
            Ok(kind) => kind,
            Err(why) => {
                if in_scope(&entry.path) {
                    problems.push(Problem::file(&entry.path, why));
                }
                continue;
            }
        };
        if let PathKind::Task { stem, .. } = &kind {
            ids.entry(stem.clone()).or_default().push(&entry.path);
        }
        if matches!(kind, PathKind::Ignored) || !in_scope(&entry.path) {
            continue;
        }
        problems.extend(check_entry(entry, &kind, limits));
    }
    for (id, paths) in ids.iter().filter(|(_, paths)| paths.len() > 1) {
        for path in paths.iter().filter(|p| in_scope(p)) {
            let others: Vec<&str> = paths.iter().copied().filter(|p| p != path).collect();
            problems.push(Problem::file(
                *path,
                format!(
                    "the id {id:?} is also in {}; a task is in exactly one place",
                    others.join(", ")
                ),
            ));
        }
    }
    problems
}

fn check_entry(entry: &Entry, kind: &PathKind, limits: &Limits) -> Vec<Problem> {
    let file = entry.path.as_str();
    if entry.kind != EntryKind::File {
        return vec![Problem::file(
            file,
            format!(
                "is {}; only regular files are allowed under tasks/ and nodes/",
                entry.kind.describe()
            ),
        )];
    }
    let bytes = match &entry.content {
        Content::Bytes(b) => b,
        Content::TooLarge(size) => {
            return vec![Problem::file(
                file,
                format!(
                    "is {size} bytes; task files are at most {} bytes",
                    task::MAX_FILE_BYTES
                ),
            )]
        }
        Content::Unread => return vec![Problem::file(file, "is not a regular file")],
        Content::Unreadable(why) => {
            return vec![Problem::file(file, format!("cannot be read: {why}"))]
        }
    };
    match kind {
        PathKind::Task { state, stem, .. } => {
            check_task_file(file, Some(*state), stem, bytes, limits)
        }
        PathKind::Node { stem } => check_node_file(file, stem, bytes),
        PathKind::Outside => {
            // A file given by path outside the layout: a task spec about to be submitted.
            let stem = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            check_task_file(file, None, stem, bytes, limits)
        }
        PathKind::Ignored => Vec::new(),
    }
}

fn check_task_file(
    file: &str,
    state: Option<State>,
    stem: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(why) = task::check_id(stem) {
        problems.push(Problem::file(
            file,
            format!("file name is not <id>.json with a valid id: the id {why}"),
        ));
    }
    match state {
        Some(state) if state.holds_results() => match task::parse_result(file, bytes, limits) {
            Err(p) => problems.extend(p),
            Ok(result) => {
                if result.task_id != stem {
                    problems.push(Problem::field(
                        file,
                        "task_id",
                        format!(
                            "is {:?} but the file is named {stem:?}.json; they must match",
                            result.task_id
                        ),
                    ));
                }
                let success = result.status == Status::Success;
                if state == State::Completed && !success {
                    problems.push(Problem::field(
                        file,
                        "status",
                        "a result in tasks/completed must have status \"success\"",
                    ));
                }
                if state == State::Failed && success {
                    problems.push(Problem::field(
                        file,
                        "status",
                        "a result in tasks/failed cannot have status \"success\"",
                    ));
                }
            }
        },
        _ => match task::parse_task(file, bytes, limits) {
            Err(p) => problems.extend(p),
            Ok(spec) => {
                if spec.id != stem {
                    problems.push(Problem::field(
                        file,
                        "id",
                        format!(
                            "is {:?} but the file is named {stem:?}.json; they must match",
                            spec.id
                        ),
                    ));
                }
                match (state, &spec.claim) {
                    (Some(State::Queue), Some(_)) => problems.push(Problem::field(
                        file,
                        "claim",
                        "a queued task cannot carry a claim",
                    )),
                    (Some(State::InProgress), None) => problems.push(Problem::field(
                        file,
                        "claim",
                        "is required in tasks/in_progress (which node runs it, until when)",
                    )),
                    _ => {}
                }
            }
        },
    }
    problems
}

fn check_node_file(file: &str, stem: &str, bytes: &[u8]) -> Vec<Problem> {
    if let Err(why) = task::check_id(stem) {
        return vec![Problem::file(
            file,
            format!("file name is not <node-id>.json with a valid id: the id {why}"),
        )];
    }
    if bytes.len() as u64 > task::MAX_FILE_BYTES {
        return vec![Problem::file(
            file,
            format!(
                "is {} bytes; node files are at most {} bytes",
                bytes.len(),
                task::MAX_FILE_BYTES
            ),
        )];
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(map)) => match map.get("id") {
            Some(serde_json::Value::String(id)) if id != stem => vec![Problem::field(
                file,
                "id",
                format!("is {id:?} but the file is named {stem:?}.json; they must match"),
            )],
            _ => Vec::new(),
        },
        Ok(_) => vec![Problem::file(file, "expected a JSON object")],
        Err(e) => vec![Problem::file(file, format!("is not valid JSON: {e}"))],
    }
}

// ---------------------------------------------------------------------------------------------
// Gathering entries

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
        .map(|c| c.as_os_str().to_string_lossy())
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
pub fn changed_paths(repo: &gix::Repository, commits: &[ObjectId]) -> Result<BTreeSet<String>> {
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
        for dir in [layout::TASKS_DIR, layout::NODES_DIR] {
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

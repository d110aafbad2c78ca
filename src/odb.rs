//! Reading and writing git objects with gix: tree walks, capped blob reads, commits built in the
//! object database only (no index, no working tree, no ref moved), so nothing is ever half-done.

use anyhow::{Context, Result};
use gix::ObjectId;
use std::path::Path;

/// Opens a repository (bare or not) the way every read and write here wants it.
pub fn open(path: &Path) -> Result<gix::Repository> {
    // Without a larger delta-base cache, reading 10k task files from a pack is 6x slower
    // (docs/ARCHITECTURE.md#measured-facts-that-shaped-the-design).
    let options = gix::open::Options::default().config_overrides(["core.deltaBaseCacheLimit=96m"]);
    gix::open_opts(path, options)
        .with_context(|| format!("cannot open the git repository at {}", path.display()))
}

/// An object id as git printed it.
pub fn parse_oid(hex: &str) -> Result<ObjectId> {
    ObjectId::from_hex(hex.trim().as_bytes())
        .with_context(|| format!("git printed {hex:?}, not an object id"))
}

/// One entry found by [`walk`].
#[derive(Debug, Clone)]
pub struct TreeEntry {
    /// Repository-relative path with '/' separators.
    pub path: String,
    pub kind: EntryKind,
    pub oid: ObjectId,
}

/// What kind of file a tree entry is; the grid's rules say which kinds may be where.
pub use crate::layout::EntryKind;

/// The tree of a commit.
pub fn commit_tree(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId> {
    let commit = repo
        .find_commit(commit)
        .with_context(|| format!("cannot read commit {commit}"))?;
    Ok(commit.tree_id().context("commit has no tree")?.detach())
}

/// The id of the tree at `path` ("tasks/queue") below `root`, if there is one.
pub fn subtree(repo: &gix::Repository, root: ObjectId, path: &str) -> Result<Option<ObjectId>> {
    let mut current = root;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        let tree = repo
            .find_tree(current)
            .with_context(|| format!("cannot read tree {current}"))?;
        let decoded = tree.decode().context("cannot decode tree")?;
        match decoded.entries.iter().find(|e| e.filename == component) {
            Some(e) if e.mode.is_tree() => current = e.oid.to_owned(),
            _ => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// Every non-tree entry below `tree`, whose own path is `prefix`, in tree order.
pub fn walk(
    repo: &gix::Repository,
    tree: ObjectId,
    prefix: &str,
    out: &mut Vec<TreeEntry>,
) -> Result<()> {
    let object = repo
        .find_tree(tree)
        .with_context(|| format!("cannot read tree {tree} ({prefix})"))?;
    let decoded = object
        .decode()
        .with_context(|| format!("cannot decode tree {prefix}"))?;
    // Collect first: recursing while `decoded` borrows the object buffer would hold every level's buffer.
    let mut subtrees = Vec::new();
    for entry in &decoded.entries {
        let path = format!("{prefix}/{}", entry.filename);
        let kind = if entry.mode.is_tree() {
            subtrees.push((entry.oid.to_owned(), path));
            continue;
        } else if entry.mode.is_link() {
            EntryKind::Symlink
        } else if entry.mode.is_commit() {
            EntryKind::Submodule
        } else {
            EntryKind::File
        };
        out.push(TreeEntry {
            path,
            kind,
            oid: entry.oid.to_owned(),
        });
    }
    drop(decoded);
    drop(object);
    for (oid, path) in subtrees {
        walk(repo, oid, &path, out)?;
    }
    Ok(())
}

/// A blob's bytes, or its size when it is larger than `max`.
pub enum Blob {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

pub fn read_blob(repo: &gix::Repository, oid: ObjectId, max: u64) -> Result<Blob> {
    let size = repo
        .find_header(oid)
        .with_context(|| format!("cannot find object {oid}"))?
        .size();
    if size > max {
        return Ok(Blob::TooLarge(size));
    }
    let mut blob = repo
        .find_blob(oid)
        .with_context(|| format!("cannot read blob {oid}"))?;
    Ok(Blob::Bytes(blob.take_data()))
}

/// A change to a path in the tree.
#[derive(Debug, Clone)]
pub enum Edit {
    Write { path: String, content: Vec<u8> },
    Remove { path: String },
}

impl Edit {
    /// The edits that move the file at `from` to `to`, with `content` as its new text (a task
    /// changing state in one commit).
    pub fn move_file(from: &str, to: String, content: Vec<u8>) -> [Edit; 2] {
        [
            Edit::Remove {
                path: from.to_string(),
            },
            Edit::Write { path: to, content },
        ]
    }
}

/// Who writes a commit. Identity and time are set on each commit here, never taken from the
/// committer gix caches when the repository is opened: a long-running worker would otherwise
/// write every commit with its start time (docs/ARCHITECTURE.md#measured-facts-that-shaped-the-design).
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// The mail domain of the commits workers write: how a reader tells a node's commit from a person's.
pub const NODE_EMAIL_DOMAIN: &str = "@dgrid.invalid";

impl Identity {
    /// The author of a node's commits.
    pub fn node(node_id: &str) -> Identity {
        Identity {
            name: node_id.to_string(),
            email: format!("{node_id}{NODE_EMAIL_DOMAIN}"),
        }
    }
}

/// Applies `edits` to the tree of `parent` (or an empty tree) and writes a commit; moves no ref.
pub fn write_commit(
    repo: &gix::Repository,
    parent: Option<ObjectId>,
    edits: &[Edit],
    identity: &Identity,
    message: &str,
) -> Result<ObjectId> {
    let base_tree = match parent {
        Some(p) => commit_tree(repo, p)?,
        None => ObjectId::empty_tree(repo.object_hash()),
    };
    let mut editor = repo.edit_tree(base_tree).context("cannot edit tree")?;
    for edit in edits {
        match edit {
            Edit::Write { path, content } => {
                let blob = repo.write_blob(content).context("cannot write blob")?;
                editor
                    .upsert(path.as_str(), gix::object::tree::EntryKind::Blob, blob)
                    .with_context(|| format!("cannot add {path} to the tree"))?;
            }
            Edit::Remove { path } => {
                editor
                    .remove(path.as_str())
                    .with_context(|| format!("cannot remove {path} from the tree"))?;
            }
        }
    }
    let tree = editor.write().context("cannot write tree")?.detach();
    // The clock is read here, at the moment of writing, not when the repository was opened.
    let signature = gix::actor::Signature {
        name: identity.name.as_str().into(),
        email: identity.email.as_str().into(),
        time: gix::date::Time::new(chrono::Utc::now().timestamp(), 0),
    };
    let commit = gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo
        .write_object(&commit)
        .context("cannot write commit")?
        .detach())
}

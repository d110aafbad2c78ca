//! The grid's state at one commit, read from the object database with gix (no checkout, works in a
//! bare clone). Listing is cheap (tree entries only); task bodies are parsed on demand.

pub use crate::grid::read::task_ref::TaskRef;
use crate::layout::{self, PathKind, State};
use crate::node::NodeRecord;
use crate::odb::{self, Blob, EntryKind};
use crate::problem::{Problem, Problems};
use crate::task::{self, Limits, Origin, TaskResult, TaskSpec};
use anyhow::{anyhow, Result};
use gix::ObjectId;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub struct NodeRef {
    pub id: String,
    pub path: String,
    pub blob: ObjectId,
    /// In its shard folder, where git-dgrid writes it; flat (`nodes/<id>.json`) otherwise.
    pub sharded: bool,
}

pub struct Snapshot {
    /// The commit read; `None` for a remote without `main` yet.
    pub tip: Option<ObjectId>,
    /// Whether the tree at `tip` has the grid's `tasks/` folder: a `main` without it is some other
    /// project's branch, not a grid, and nothing is submitted to it.
    pub laid_out: bool,
    pub tasks: Vec<TaskRef>,
    /// One record per node: its sharded file when it has one, else its flat file.
    pub nodes: Vec<NodeRef>,
    /// Flat records of nodes that also have a sharded one: never read, and removed by the next
    /// worker's push (`grid::plan::cycle`, which moves the other flat records to their shards).
    pub shadowed_nodes: Vec<NodeRef>,
    by_id: HashMap<String, usize>,
    /// Ids with more than one file (invalid, reported by `validate`): flat and sharded, or in two
    /// states. Transitions never claim them and look at every copy when they record a result.
    duplicated: HashSet<String>,
}

impl Snapshot {
    pub fn empty() -> Snapshot {
        Snapshot {
            tip: None,
            laid_out: false,
            tasks: Vec::new(),
            nodes: Vec::new(),
            shadowed_nodes: Vec::new(),
            by_id: HashMap::new(),
            duplicated: HashSet::new(),
        }
    }

    /// Lists every task and node at `tip`. Files that have no place in the layout are skipped here;
    /// `validate` is where they are reported.
    pub fn read(repo: &gix::Repository, tip: Option<ObjectId>) -> Result<Snapshot> {
        Snapshot::read_dirs(repo, tip, &[layout::TASKS_DIR, layout::NODES_DIR])
    }

    /// Like [`read`](Snapshot::read), but only below `dirs` (e.g. `tasks/in_progress` and `nodes`):
    /// an idle worker's periodic look need not list 100,000 finished tasks.
    pub fn read_dirs(
        repo: &gix::Repository,
        tip: Option<ObjectId>,
        dirs: &[&str],
    ) -> Result<Snapshot> {
        let Some(commit) = tip else {
            return Ok(Snapshot::empty());
        };
        let root = odb::commit_tree(repo, commit)?;
        let laid_out = odb::subtree(repo, root, layout::TASKS_DIR)?.is_some();
        let mut entries = Vec::new();
        for &dir in dirs {
            if let Some(tree) = odb::subtree(repo, root, dir)? {
                odb::walk(repo, tree, dir, &mut entries)?;
            }
        }
        let mut snapshot = Snapshot {
            tip,
            laid_out,
            tasks: Vec::with_capacity(entries.len()),
            nodes: Vec::new(),
            shadowed_nodes: Vec::new(),
            by_id: HashMap::with_capacity(entries.len()),
            duplicated: HashSet::new(),
        };
        for entry in entries.into_iter().filter(|e| e.kind == EntryKind::File) {
            match layout::classify(&entry.path) {
                Ok(PathKind::Task { state, stem, .. }) if task::check_id(&stem).is_ok() => {
                    // A duplicate id (invalid, reported by validate) keeps its first place.
                    let index = snapshot.tasks.len();
                    if *snapshot.by_id.entry(stem.clone()).or_insert(index) != index {
                        snapshot.duplicated.insert(stem.clone());
                    }
                    snapshot.tasks.push(TaskRef {
                        id: stem,
                        state,
                        path: entry.path,
                        blob: entry.oid,
                        commit,
                    });
                }
                Ok(PathKind::Node { stem, sharded }) if task::check_id(&stem).is_ok() => {
                    snapshot.nodes.push(NodeRef {
                        id: stem,
                        path: entry.path,
                        blob: entry.oid,
                        sharded,
                    });
                }
                _ => {}
            }
        }
        snapshot.one_record_per_node();
        Ok(snapshot)
    }

    /// Keeps one record per node in `nodes`, the sharded one where there are two (git-dgrid
    /// writes there), and sets the flat one aside in `shadowed_nodes`.
    fn one_record_per_node(&mut self) {
        let sharded: HashSet<String> = (self.nodes.iter())
            .filter(|n| n.sharded)
            .map(|n| n.id.clone())
            .collect();
        let (shadowed, nodes) = std::mem::take(&mut self.nodes)
            .into_iter()
            .partition(|n| !n.sharded && sharded.contains(&n.id));
        self.nodes = nodes;
        self.shadowed_nodes = shadowed;
    }

    pub fn get(&self, id: &str) -> Option<&TaskRef> {
        self.by_id.get(id).map(|&i| &self.tasks[i])
    }

    /// Whether `id` has more than one file in the directories read.
    pub fn is_duplicated(&self, id: &str) -> bool {
        self.duplicated.contains(id)
    }

    /// Every file of task `id`, first place first (one, unless [`is_duplicated`](Self::is_duplicated)).
    pub fn places(&self, id: &str) -> Box<dyn Iterator<Item = &TaskRef> + '_> {
        if self.is_duplicated(id) {
            let id = id.to_string();
            Box::new(self.tasks.iter().filter(move |t| t.id == id))
        } else {
            Box::new(self.get(id).into_iter())
        }
    }

    pub fn in_state(&self, state: State) -> impl Iterator<Item = &TaskRef> {
        self.tasks.iter().filter(move |t| t.state == state)
    }

    pub fn count(&self, state: State) -> usize {
        self.in_state(state).count()
    }
}

/// The bytes of a task's file, refusing one larger than any grid file may be.
pub fn read_bytes(repo: &gix::Repository, task: &TaskRef) -> Result<Vec<u8>> {
    match odb::read_blob(repo, task.blob, task::MAX_FILE_BYTES)? {
        Blob::Bytes(b) => Ok(b),
        Blob::TooLarge(n) => Err(anyhow!(
            "{}: is {n} bytes, larger than any task file may be",
            task.path
        )),
    }
}

/// The spec of a queued or in-progress task. A file without `created_at` or `submitted_by` (the
/// Python implementation wrote neither) gets them from the commit that added it.
pub fn load_spec(repo: &gix::Repository, task: &TaskRef, limits: &Limits) -> Result<TaskSpec> {
    let bytes = read_bytes(repo, task)?;
    let ask = || crate::grid::read::added::added_by(repo, task);
    task::parse_task(&task.path, &bytes, limits, Origin::Added(&ask))
        .map_err(|p| crate::problem::Problems(p).into())
}

/// The record of a node, or `None` when its file is not one; readers skip such a file, and each
/// version of it (blob) is reported once per process, naming the file, the field and the reason:
/// a worker or the dashboard reads the nodes on every look and must not repeat itself, nor drop a
/// bad record without a word.
pub fn load_node(repo: &gix::Repository, node: &NodeRef) -> Option<NodeRecord> {
    let read = match odb::read_blob(repo, node.blob, task::MAX_FILE_BYTES) {
        Ok(Blob::Bytes(bytes)) => NodeRecord::read(&node.path, &bytes).map_err(Problems),
        Ok(Blob::TooLarge(n)) => Err(Problems(vec![Problem::file(
            &node.path,
            format!("is {n} bytes, larger than any grid file may be"),
        )])),
        Err(e) => Err(Problems(vec![Problem::file(
            &node.path,
            format!("cannot be read: {e:#}"),
        )])),
    };
    match read {
        Ok(record) => Some(record),
        Err(problems) => {
            // One line per file version, however many problems it has.
            let said: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
            warn_once_per_version(
                node.blob,
                &format!("ignoring a node record: {}", said.join("; ")),
            );
            None
        }
    }
}

/// Says `message` once per process for the file version `blob`.
fn warn_once_per_version(blob: ObjectId, message: &str) {
    static WARNED: std::sync::Mutex<Option<HashSet<ObjectId>>> = std::sync::Mutex::new(None);
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if warned.get_or_insert_with(HashSet::new).insert(blob) {
        crate::log::warning(message);
    }
}

/// The result of a completed or failed task.
pub fn load_result(repo: &gix::Repository, task: &TaskRef, limits: &Limits) -> Result<TaskResult> {
    let bytes = read_bytes(repo, task)?;
    task::parse_result(&task.path, &bytes, limits).map_err(|p| crate::problem::Problems(p).into())
}

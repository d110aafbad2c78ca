//! Where things live in the grid's tree.
//!
//! `tasks/<state>/<shard>/<id>.json` with 256 shards named by two hex digits of a hash of the id, so
//! that a state folder of 100,000 tasks has ~400 entries per shard and a transition rewrites small
//! trees (`docs/ARCHITECTURE.md#layout`). Flat `tasks/<state>/<id>.json` files, as the seed and people write them, are
//! read too. Node records are sharded the same way, `nodes/<shard>/<node-id>.json`, so that a
//! worker's heartbeat rewrites a small tree however many records the grid holds; flat
//! `nodes/<node-id>.json` records (the seed's, and older versions') are read too.

use std::fmt;

pub const TASKS_DIR: &str = "tasks";
pub const NODES_DIR: &str = "nodes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Queue,
    InProgress,
    Completed,
    Failed,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Queue,
        State::InProgress,
        State::Completed,
        State::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Queue => "queue",
            State::InProgress => "in_progress",
            State::Completed => "completed",
            State::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The state in a sentence ("hello-1 is queued").
    pub fn in_words(self) -> &'static str {
        match self {
            State::Queue => "queued",
            State::InProgress => "in progress",
            State::Completed => "completed",
            State::Failed => "failed",
        }
    }

    /// `tasks/queue` etc.
    pub fn dir(self) -> String {
        format!("{TASKS_DIR}/{}", self.name())
    }

    /// Files in completed/ and failed/ are results; the others are task specs.
    pub fn holds_results(self) -> bool {
        matches!(self, State::Completed | State::Failed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a path in a tree is: only regular files are allowed under `tasks/` and `nodes/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Symlink,
    /// A gitlink (submodule).
    Submodule,
    /// On disk only: a socket, fifo or device.
    Special,
}

impl EntryKind {
    pub fn describe(self) -> &'static str {
        match self {
            EntryKind::File => "a file",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Submodule => "a submodule",
            EntryKind::Special => "a special file (socket, fifo or device)",
        }
    }
}

/// The shard folder of an id: FNV-1a, which is stable across versions and platforms.
pub fn shard(id: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!(
        "{:02x}",
        (hash ^ (hash >> 8) ^ (hash >> 16) ^ (hash >> 24)) & 0xff
    )
}

/// The canonical (sharded) path of a task in a state.
pub fn task_path(state: State, id: &str) -> String {
    format!("{}/{}/{id}.json", state.dir(), shard(id))
}

/// The canonical (sharded) path of a node's record: where git-dgrid writes it.
pub fn node_path(node_id: &str) -> String {
    format!("{NODES_DIR}/{}/{node_id}.json", shard(node_id))
}

/// The flat path of a node's record, as the seed and older versions write it: read, never written.
pub fn flat_node_path(node_id: &str) -> String {
    format!("{NODES_DIR}/{node_id}.json")
}

/// The placeholder files that make the empty layout exist in git.
pub fn skeleton() -> Vec<String> {
    let mut paths: Vec<String> = State::ALL
        .iter()
        .map(|s| format!("{}/.gitkeep", s.dir()))
        .collect();
    paths.push(format!("{NODES_DIR}/.gitkeep"));
    paths
}

/// What a path in the grid's tree is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    /// A task or result file. `stem` is the file name without `.json`, which must equal the id.
    Task {
        state: State,
        stem: String,
        sharded: bool,
    },
    Node {
        stem: String,
        /// In its shard folder (`nodes/<shard>/<id>.json`) rather than flat.
        sharded: bool,
    },
    /// `.gitkeep` and other dotfiles: placeholders, not data.
    Ignored,
    /// Outside `tasks/` and `nodes/`: none of our business.
    Outside,
}

/// Classifies a repository-relative path; `Err` says why it has no place in the layout.
pub fn classify(path: &str) -> Result<PathKind, String> {
    let parts: Vec<&str> = path.split('/').collect();
    let name = parts[parts.len() - 1];
    match parts[0] {
        TASKS_DIR => {}
        NODES_DIR => return classify_node(&parts),
        _ => return Ok(PathKind::Outside),
    }
    if parts.len() == 1 {
        return Ok(PathKind::Outside);
    }
    if parts.len() == 2 {
        return if name.starts_with('.') {
            Ok(PathKind::Ignored)
        } else {
            Err(format!(
                "tasks/ holds only the folders {}",
                State::ALL.map(|s| s.name()).join(", ")
            ))
        };
    }
    let Some(state) = State::from_name(parts[1]) else {
        return Err(format!(
            "unknown state folder \"tasks/{}\" (expected one of {})",
            parts[1],
            State::ALL.map(|s| s.name()).join(", ")
        ));
    };
    if name.starts_with('.') && parts.len() <= 4 {
        return Ok(PathKind::Ignored);
    }
    let stem = |name: &str| {
        name.strip_suffix(".json")
            .map(str::to_string)
            .ok_or_else(|| format!("task files are named <id>.json (in {})", state.dir()))
    };
    match parts.len() {
        3 => Ok(PathKind::Task {
            state,
            stem: stem(name)?,
            sharded: false,
        }),
        4 => {
            let stem = stem(name)?;
            let expected = shard(&stem);
            if parts[2] != expected {
                return Err(format!(
                    "is in shard folder \"{}\" but the id {stem:?} belongs in \"{}/{expected}/\"",
                    parts[2],
                    state.dir()
                ));
            }
            Ok(PathKind::Task {
                state,
                stem,
                sharded: true,
            })
        }
        _ => Err(format!(
            "is nested too deep: task files are {0}/<id>.json or {0}/<shard>/<id>.json",
            state.dir()
        )),
    }
}

/// A path under `nodes/` (split at `/`): a record, flat or in its shard folder.
fn classify_node(parts: &[&str]) -> Result<PathKind, String> {
    let name = parts[parts.len() - 1];
    if parts.len() == 1 {
        return Ok(PathKind::Outside);
    }
    if name.starts_with('.') && parts.len() <= 3 {
        return Ok(PathKind::Ignored);
    }
    let named = "node files are named nodes/<shard>/<node-id>.json (or nodes/<node-id>.json)";
    let stem = name.strip_suffix(".json").ok_or(named)?.to_string();
    match parts.len() {
        2 => Ok(PathKind::Node {
            stem,
            sharded: false,
        }),
        3 => {
            let expected = shard(&stem);
            if parts[1] != expected {
                return Err(format!(
                    "is in shard folder \"{}\" but the node {stem:?} belongs in \"{NODES_DIR}/{expected}/\"",
                    parts[1]
                ));
            }
            Ok(PathKind::Node {
                stem,
                sharded: true,
            })
        }
        _ => Err(format!("is nested too deep: {named}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard("task-001"), shard("task-001"));
        let distinct: std::collections::HashSet<String> =
            (0..5000).map(|i| shard(&format!("t-{i}"))).collect();
        assert_eq!(distinct.len(), 256);
    }

    #[test]
    fn classify_paths() {
        assert_eq!(
            classify("tasks/queue/a.json"),
            Ok(PathKind::Task {
                state: State::Queue,
                stem: "a".into(),
                sharded: false
            })
        );
        let sharded = task_path(State::Failed, "a");
        assert_eq!(
            classify(&sharded),
            Ok(PathKind::Task {
                state: State::Failed,
                stem: "a".into(),
                sharded: true
            })
        );
        assert_eq!(classify("tasks/queue/.gitkeep"), Ok(PathKind::Ignored));
        assert_eq!(classify("README.md"), Ok(PathKind::Outside));
        assert!(classify("tasks/queue/a.txt").is_err());
        assert!(classify("tasks/done/a.json").is_err());
        assert!(classify("tasks/queue/zz/a.json").is_err());
        assert!(classify("tasks/queue/a/b/c.json").is_err());
        assert_eq!(
            classify("nodes/n1.json"),
            Ok(PathKind::Node {
                stem: "n1".into(),
                sharded: false
            })
        );
        assert_eq!(
            classify(&node_path("n1")),
            Ok(PathKind::Node {
                stem: "n1".into(),
                sharded: true
            })
        );
        assert_eq!(flat_node_path("n1"), "nodes/n1.json");
        assert_eq!(classify("nodes/.gitkeep"), Ok(PathKind::Ignored));
        assert!(classify("nodes/zz/n1.json").is_err(), "the wrong shard");
        assert!(classify("nodes/ab/cd/n1.json").is_err());
        assert!(classify("nodes/n1.txt").is_err());
    }
}

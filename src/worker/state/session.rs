//! The node session: this process's hold on its node id. The state dir's lock keeps apart two
//! processes of one machine; the random session noted in the sessions file (before anything is
//! written) and carried by the node record keeps apart the others, see `grid::plan::ownership`.

use super::spool;
use crate::grid::{load_node, Grid, Ownership, Snapshot};
use crate::node::{NodeRecord, NodeState};
use crate::time::rfc3339;
use crate::worker::Config;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::time::Duration;

/// In the node's folder of the state dir: the sessions of the last processes started from here.
const SESSION_FILE: &str = "sessions";

/// In the node's folder of the state dir: the node record (blob id) that refused the last start
/// and when this machine first saw it do so (Unix seconds), so that a record that never changes
/// (a dead worker whose clock ran ahead, a forgery) stops refusing after a lease.
const REFUSED_BY_FILE: &str = "refused-by";

/// How many sessions back the sessions file remembers.
const SESSIONS_KEPT: usize = 8;

pub struct NodeSession {
    pub ownership: Ownership,
    /// The node's folder in the state dir.
    dir: std::path::PathBuf,
    /// Held for the life of the process: one worker per state dir and node id.
    _lock: std::fs::File,
}

impl NodeSession {
    /// Locks the node's folder `node_dir` for `node_id` and notes a new session drawn from `rng`.
    /// `silence` is how long a silent record of another session still counts as a live worker.
    pub fn open(
        node_dir: &Path,
        node_id: &str,
        silence: Duration,
        rng: &mut fastrand::Rng,
    ) -> Result<NodeSession> {
        std::fs::create_dir_all(node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        let lock_path = node_dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "another worker is already running as node {node_id:?} with this state dir ({}); give each worker its own --node-id",
                node_dir.display()
            );
        }
        let session = format!("{:016x}", rng.u64(..));
        Ok(NodeSession {
            ownership: Ownership {
                previous_sessions: note_session(&node_dir.join(SESSION_FILE), &session)?,
                session,
                started: false,
                silence,
                since_last_write: None,
                watched: None,
            },
            dir: node_dir.to_path_buf(),
            _lock: lock,
        })
    }

    #[cfg(test)]
    pub fn id(&self) -> &str {
        &self.ownership.session
    }

    /// Checks that no other live worker uses the node id of `node` (before touching the node's
    /// containers), and carries the node's counters over from its record on the grid.
    pub fn take_up(
        &mut self,
        grid: &Grid,
        node: &mut NodeRecord,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tip = grid.fetch()?;
        let snapshot = Snapshot::read(&grid.repo, tip)?;
        let record = snapshot.nodes.iter().find(|n| n.id == node.id);
        let refused_by = self.dir.join(REFUSED_BY_FILE);
        let noted = read_refused_by(&refused_by);
        self.ownership.watched = noted.map(|(blob, since)| {
            let unix = now.timestamp().max(0) as u64;
            (blob, Duration::from_secs(unix.saturating_sub(since)))
        });
        if let Err(refused) = self.ownership.check(&grid.repo, &snapshot, &node.id, now) {
            if let Some(record) = record.filter(|r| noted.is_none_or(|(b, _)| b != r.blob)) {
                let line = format!("{} {}\n", record.blob, now.timestamp().max(0));
                // Best effort: without the note, the next start only waits longer.
                let _ = spool::write_durably(&refused_by, line.as_bytes());
            }
            return Err(refused.into());
        }
        let _ = std::fs::remove_file(&refused_by);
        let previous = record.and_then(|n| load_node(&grid.repo, n));
        if let Some(previous) = previous {
            node.completed = previous.completed;
            node.failed = previous.failed;
        }
        Ok(())
    }

    /// The record this process starts with; its counters are carried over from the grid by
    /// [`take_up`](NodeSession::take_up).
    pub fn fresh_record(&self, cfg: &Config, now: DateTime<Utc>) -> NodeRecord {
        let now = rfc3339(now);
        NodeRecord {
            id: cfg.node_id.clone(),
            hostname: crate::node::hostname(),
            version: env!("CARGO_PKG_VERSION").into(),
            labels: cfg.labels.clone(),
            slots: cfg.slots as u32,
            cpus: cfg.docker.max_cpus,
            memory: cfg.docker.max_memory,
            docker_version: None,
            started_at: now.clone(),
            last_heartbeat: now,
            state: NodeState::Running,
            heartbeat_interval: cfg.heartbeat_interval.as_secs(),
            lease: Some(cfg.lease.as_secs()),
            clock_skew: Some(cfg.clock_skew.as_secs()),
            running: Vec::new(),
            completed: 0,
            failed: 0,
            problem: None,
            skipped: Default::default(),
            reputation: None,
            session: self.ownership.session.clone(),
        }
    }
}

/// The record noted in the refused-by file at `path` and when it was first seen (Unix seconds);
/// `None` when there is none or it is unreadable (then the watch starts again).
fn read_refused_by(path: &Path) -> Option<(gix::ObjectId, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let (blob, since) = text.trim().split_once(' ')?;
    Some((
        gix::ObjectId::from_hex(blob.as_bytes()).ok()?,
        since.parse().ok()?,
    ))
}

/// Adds `session` to the sessions noted in `path` before this process writes anything, so that
/// whatever record it pushes, a later process started from here knows it for this state dir's,
/// even if this one is killed at any instant. Returns the sessions noted before.
fn note_session(path: &Path, session: &str) -> Result<Vec<String>> {
    let before: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    // The record on the remote is the last writer's: a few sessions back is enough, unless that
    // many processes in a row were killed before their first write (then the lease runs out).
    let kept = before
        .iter()
        .rev()
        .take(SESSIONS_KEPT)
        .rev()
        .map(String::as_str);
    let text: String = kept.chain([session]).map(|s| format!("{s}\n")).collect();
    spool::write_durably(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noted(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn each_session_is_noted_and_the_ones_before_are_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SESSION_FILE);
        assert!(note_session(&path, "s1").unwrap().is_empty());
        assert_eq!(note_session(&path, "s2").unwrap(), ["s1"]);
        assert_eq!(noted(&path), ["s1", "s2"]);
    }

    #[test]
    fn the_sessions_file_keeps_the_last_eight_before_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SESSION_FILE);
        for i in 0..12 {
            note_session(&path, &format!("s{i}")).unwrap();
        }
        let before = note_session(&path, "new").unwrap();
        assert_eq!(
            before,
            ["s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"]
        );
        let expected: Vec<String> = (4..12)
            .map(|i| format!("s{i}"))
            .chain(["new".into()])
            .collect();
        assert_eq!(noted(&path), expected);
    }

    #[test]
    fn blank_lines_and_spaces_in_the_sessions_file_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SESSION_FILE);
        std::fs::write(&path, "\n  s1 \n\ns2\n").unwrap();
        assert_eq!(note_session(&path, "s3").unwrap(), ["s1", "s2"]);
    }

    #[test]
    fn a_second_process_cannot_open_the_same_node_folder() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let silence = Duration::from_secs(60);
        let first = NodeSession::open(dir.path(), "n1", silence, &mut rng).unwrap();
        let first_session = first.id().to_string();
        let second = NodeSession::open(dir.path(), "n1", silence, &mut rng);
        let message = format!("{:#}", second.err().expect("the folder is locked"));
        assert!(
            message.contains("already running as node \"n1\""),
            "{message}"
        );
        drop(first);
        let third = NodeSession::open(dir.path(), "n1", silence, &mut rng).unwrap();
        assert_eq!(
            third.ownership.previous_sessions,
            [first_session],
            "a refused process notes nothing"
        );
        assert!(!third.ownership.started);
    }

    #[test]
    fn the_session_id_comes_from_the_rng() {
        let dir = tempfile::tempdir().unwrap();
        let silence = Duration::from_secs(60);
        let a = NodeSession::open(dir.path(), "n1", silence, &mut fastrand::Rng::with_seed(1))
            .unwrap()
            .id()
            .to_string();
        let b =
            NodeSession::open(dir.path(), "n1", silence, &mut fastrand::Rng::with_seed(1)).unwrap();
        assert_eq!(a, b.id());
        assert_eq!(a.len(), 16);
        assert_eq!(b.ownership.previous_sessions, std::slice::from_ref(&a));
    }
}

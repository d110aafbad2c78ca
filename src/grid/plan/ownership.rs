//! One worker process per node id. The state dir's lock keeps apart two processes on one machine
//! with one state dir; this keeps apart the others that share a node id (a `NODE_ID=worker-001`
//! copied to a second machine, a container run with replicas): each worker process writes a random
//! `session` into its node record, and a process that finds another live session there does not
//! work under that id. Without this, each would take the other's running tasks for its own orphans
//! and put them back in the queue, and their heartbeats would overwrite each other.
//!
//! - At start, a record written by another session is taken over only when that worker stopped,
//!   has been silent for longer than a lease (its tasks are due to be taken back anyway), or wrote
//!   from this same state dir (it is this node before a crash or a restart). Silence is judged by
//!   the record's heartbeat, and also on this machine's own clock: a record this state dir has
//!   seen unchanged for longer than a lease (over refused starts) is a dead worker's, whatever its
//!   date says; a heartbeat dated in the future (a clock ahead, a forgery) parks the id for a
//!   lease, not forever.
//! - Once running, a record written by another session means that another process took the id
//!   over while this one was silent for a lease: its claims were taken back, so this one stops.
//!   Unless this one has written within a lease: then no worker following these rules took the id
//!   over (it would have been refused), so the record is forged or from a misconfigured worker.
//!   This one keeps its id, says so, and its write replaces that record.

use crate::grid::read::snapshot::{self, Snapshot};
use crate::node::NodeState;
use chrono::{DateTime, Utc};
use gix::ObjectId;
use std::time::Duration;

message_error!(
    /// Another worker process works under this node id.
    NodeIdInUse
);

/// What this worker process knows of its own claim to the node id.
pub struct Ownership {
    /// This process's session.
    pub session: String,
    /// The sessions of the last processes that worked from this state dir.
    pub previous_sessions: Vec<String>,
    /// Whether this process has written its node record already.
    pub started: bool,
    /// How long a silent record still counts as a live worker (the lease plus the clock-skew margin).
    pub silence: Duration,
    /// How long ago, on this process's own clock, its last write landed (`None`: never).
    pub since_last_write: Option<Duration>,
    /// The node record (blob) that refused an earlier start from this state dir, and how long ago
    /// on this machine's clock it was first seen so.
    pub watched: Option<(ObjectId, Duration)>,
}

impl Ownership {
    /// Whether this process may write `node_id`'s record on top of `snapshot`: `Ok(Some(notice))`
    /// when it may, but replaces a record of another session that cannot be a rightful takeover.
    pub fn check(
        &self,
        repo: &gix::Repository,
        snapshot: &Snapshot,
        node_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, NodeIdInUse> {
        let Some((blob, record)) = snapshot
            .nodes
            .iter()
            .find(|n| n.id == node_id)
            .and_then(|n| Some((n.blob, snapshot::load_node(repo, n)?)))
        else {
            return Ok(None);
        };
        // Records of versions without sessions cannot be told apart: they are taken as ours.
        if record.session.is_empty() || record.session == self.session {
            return Ok(None);
        }
        let host = crate::text::clean(&record.hostname);
        if self.started {
            if self.since_last_write.is_some_and(|d| d < self.silence) {
                return Ok(Some(format!(
                    "the record of node {node_id:?} names another worker (session {}, host {host}), but this worker wrote it {} s ago, less than a lease: no worker could rightly take it over, so it is forged or from a misconfigured worker; keeping the node id and writing the record again",
                    crate::text::clean(&record.session),
                    self.since_last_write.unwrap_or_default().as_secs()
                )));
            }
            return Err(NodeIdInUse(format!(
                "another worker (on host {host}) took over node id {node_id:?} while this one was silent for longer than its lease; its tasks were taken back, so this worker stops. Give each worker its own --node-id"
            )));
        }
        let silent_for = DateTime::parse_from_rfc3339(&record.last_heartbeat)
            .map(|t| (now - t.with_timezone(&Utc)).num_seconds())
            .unwrap_or(i64::MAX);
        let unchanged_for = self
            .watched
            .filter(|(seen, _)| *seen == blob)
            .map_or(0, |(_, d)| d.as_secs() as i64);
        let silence = self.silence.as_secs() as i64;
        if record.state == NodeState::Stopped
            || silent_for.max(unchanged_for) > silence
            || self.previous_sessions.contains(&record.session)
        {
            return Ok(None);
        }
        let heartbeat = if silent_for < 0 {
            format!("last heartbeat dated {} s in the future", -silent_for)
        } else {
            format!("last heartbeat {silent_for} s ago")
        };
        Err(NodeIdInUse(format!(
            "node id {node_id:?} is in use by another worker (on host {host}, {heartbeat}, not from this state dir). Give each worker its own --node-id; if that worker was this one and its state dir was lost, start again in {} s: a record still unchanged then is taken over",
            silence - silent_for.max(unchanged_for).max(0) + 1
        )))
    }
}

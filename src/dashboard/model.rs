//! The status model: counts, nodes with liveness, queue, running tasks, recent results. Its JSON form
//! is the documented, stable output of `git dgrid status --json` and the dashboard's status.json.

use crate::grid::snapshot::{Snapshot, TaskRef};
use crate::layout::State;
use crate::node::{NodeRecord, NodeState};
use crate::task::{self, Status};
use anyhow::Result;
use chrono::{DateTime, Utc};
use gix::ObjectId;
use serde::{Deserialize, Serialize};

/// Version of the JSON form; bumped only on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;
const LIST_LIMIT: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct StatusModel {
    pub format_version: u32,
    pub generated_at: String,
    /// The commit of `main` the status was read from.
    pub commit: Option<String>,
    pub counts: Counts,
    pub nodes: Vec<NodeStatus>,
    pub queue: QueueStatus,
    pub in_progress: Vec<RunningTask>,
    pub recent: Vec<RecentResult>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub queue: usize,
    pub in_progress: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Heartbeat within two heartbeat intervals.
    Alive,
    /// Within the lease (three intervals) plus a minute: maybe a slow network.
    Late,
    /// Silent for longer: its tasks will be taken back.
    Dead,
    /// Said goodbye.
    Stopped,
}

impl Liveness {
    pub fn name(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Late => "late",
            Liveness::Dead => "dead",
            Liveness::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub state: Liveness,
    pub last_heartbeat: Option<String>,
    /// Seconds since the last heartbeat, by the reader's clock.
    pub heartbeat_age: Option<i64>,
    pub hostname: String,
    pub version: String,
    pub labels: Vec<String>,
    pub slots: u32,
    pub running: Vec<String>,
    pub completed: u64,
    pub failed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// Seconds the oldest queued task has waited since it was created.
    pub oldest_wait: Option<i64>,
    /// The next tasks in claim order (priority, then age), at most 50.
    pub next: Vec<QueuedTask>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedTask {
    pub id: String,
    /// The command, shortened to 120 characters.
    pub command: String,
    pub priority: i64,
    pub created_at: String,
    pub wait: Option<i64>,
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunningTask {
    pub id: String,
    pub node_id: String,
    pub claimed_at: String,
    pub elapsed: Option<i64>,
    pub lease_expires_at: String,
    pub attempt: u32,
    pub image: String,
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecentResult {
    pub id: String,
    pub status: Status,
    pub node_id: String,
    pub finished_at: String,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    pub command: String,
    /// The last line of output (stderr when it has one, else stdout), shortened to 120 characters.
    pub output_tail: String,
}

/// A command for display: the shell string, or the argv joined by spaces.
fn short_command(command: Option<&task::TaskCommand>) -> String {
    let text = match command {
        Some(task::TaskCommand::Shell(s)) => s.clone(),
        Some(task::TaskCommand::Argv(a)) => a.join(" "),
        None => String::new(),
    };
    shorten(&text)
}

fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(119).collect::<String>())
    } else {
        one_line
    }
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

/// Only what the status needs of a task file: serde skips the rest, which is much faster than
/// validating every field of 100,000 files.
#[derive(Deserialize)]
struct QueuedLight {
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    attempts: Option<u32>,
    #[serde(default, alias = "script")]
    command: Option<task::TaskCommand>,
}

#[derive(Deserialize)]
struct RunningLight {
    #[serde(default)]
    image: String,
    #[serde(default, alias = "script")]
    command: Option<task::TaskCommand>,
    claim: Option<task::Claim>,
}

#[derive(Deserialize)]
struct ResultLight {
    node_id: String,
    status: Status,
    timestamp: String,
    #[serde(default)]
    finished_at: Option<String>,
    #[serde(default)]
    exit_code: Option<i64>,
    #[serde(default)]
    duration_ms: Option<u64>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    task: Option<ResultTaskLight>,
}

#[derive(Deserialize)]
struct ResultTaskLight {
    #[serde(default)]
    command: Option<task::TaskCommand>,
}

fn age(now: DateTime<Utc>, time: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds())
}

fn read<T: for<'de> Deserialize<'de>>(repo: &gix::Repository, task: &TaskRef) -> Option<T> {
    let bytes = crate::grid::snapshot::read_bytes(repo, task).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn liveness(record: &NodeRecord, now: DateTime<Utc>) -> (Liveness, Option<i64>) {
    let heartbeat_age = age(now, &record.last_heartbeat);
    if record.state == NodeState::Stopped {
        return (Liveness::Stopped, heartbeat_age);
    }
    let interval = record.heartbeat_interval.max(1) as i64;
    let state = match heartbeat_age {
        Some(a) if a <= 2 * interval + 30 => Liveness::Alive,
        Some(a) if a <= 3 * interval + 60 => Liveness::Late,
        _ => Liveness::Dead,
    };
    (state, heartbeat_age)
}

impl StatusModel {
    /// Reads the status at the snapshot. `recent` are the ids of the latest results, newest first
    /// (from history; see `history::recent_results`).
    pub fn build(
        repo: &gix::Repository,
        snapshot: &Snapshot,
        recent: &[String],
        now: DateTime<Utc>,
    ) -> Result<StatusModel> {
        let counts = Counts {
            queue: snapshot.count(State::Queue),
            in_progress: snapshot.count(State::InProgress),
            completed: snapshot.count(State::Completed),
            failed: snapshot.count(State::Failed),
        };
        let mut nodes: Vec<NodeStatus> = snapshot
            .nodes
            .iter()
            .filter_map(|n| {
                let blob = repo.find_blob(n.blob).ok()?;
                let record = NodeRecord::parse(&blob.data)?;
                let (state, heartbeat_age) = liveness(&record, now);
                Some(NodeStatus {
                    id: n.id.clone(),
                    state,
                    last_heartbeat: Some(record.last_heartbeat),
                    heartbeat_age,
                    hostname: record.hostname,
                    version: record.version,
                    labels: record.labels,
                    slots: record.slots,
                    running: record.running,
                    completed: record.completed,
                    failed: record.failed,
                    problem: record.problem,
                })
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));

        let mut queued: Vec<QueuedTask> = snapshot
            .in_state(State::Queue)
            .map(|t| {
                let light: Option<QueuedLight> = read(repo, t);
                let (created_at, priority, attempts, command) = light
                    .map(|l| {
                        (
                            l.created_at,
                            l.priority.unwrap_or(0),
                            l.attempts.unwrap_or(0),
                            short_command(l.command.as_ref()),
                        )
                    })
                    .unwrap_or_default();
                QueuedTask {
                    id: t.id.clone(),
                    command,
                    priority,
                    wait: age(now, &created_at),
                    created_at,
                    attempts,
                }
            })
            .collect();
        let oldest_wait = queued.iter().filter_map(|q| q.wait).max();
        queued.sort_by(|a, b| {
            (b.priority, &a.created_at, &a.id).cmp(&(a.priority, &b.created_at, &b.id))
        });
        queued.truncate(LIST_LIMIT);

        let mut in_progress: Vec<RunningTask> = snapshot
            .in_state(State::InProgress)
            .filter_map(|t| {
                let light: RunningLight = read(repo, t)?;
                let claim = light.claim?;
                Some(RunningTask {
                    id: t.id.clone(),
                    node_id: claim.node_id,
                    elapsed: age(now, &claim.claimed_at),
                    claimed_at: claim.claimed_at,
                    lease_expires_at: claim.lease_expires_at,
                    attempt: claim.attempt.number(),
                    image: light.image,
                    command: short_command(light.command.as_ref()),
                })
            })
            .collect();
        in_progress.sort_by(|a, b| (&a.claimed_at, &a.id).cmp(&(&b.claimed_at, &b.id)));

        let recent = recent
            .iter()
            .filter_map(|id| {
                let t = snapshot.get(id).filter(|t| t.state.holds_results())?;
                let r: ResultLight = read(repo, t)?;
                Some(RecentResult {
                    id: id.clone(),
                    status: r.status,
                    node_id: r.node_id,
                    finished_at: r.finished_at.unwrap_or(r.timestamp),
                    exit_code: r.exit_code,
                    duration_ms: r.duration_ms,
                    command: short_command(r.task.as_ref().and_then(|t| t.command.as_ref())),
                    output_tail: shorten(if last_line(&r.stderr).is_empty() {
                        last_line(&r.stdout)
                    } else {
                        last_line(&r.stderr)
                    }),
                })
            })
            .take(LIST_LIMIT)
            .collect();

        Ok(StatusModel {
            format_version: FORMAT_VERSION,
            generated_at: crate::time::rfc3339(now),
            commit: snapshot.tip.map(|c: ObjectId| c.to_string()),
            counts,
            nodes,
            queue: QueueStatus {
                oldest_wait,
                next: queued,
            },
            in_progress,
            recent,
        })
    }
}

pub use crate::time::human_duration;

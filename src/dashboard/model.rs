//! The status model: counts, nodes with liveness, queue, running tasks, recent results. Its JSON form
//! is the documented, stable output of `git dgrid status --json` and the dashboard's status.json.

use super::light::{age, last_line, read, short_command, shorten, LIST_LIMIT};
pub use super::queue::{QueueStatus, QueuedTask};
use crate::grid::{load_node, Snapshot};
use crate::layout::State;
use crate::node::{NodeRecord, NodeState, Reputation};
use crate::settings;
use crate::task::{self, Status};
use anyhow::Result;
use chrono::{DateTime, Utc};
use gix::ObjectId;
use serde::{Deserialize, Serialize};

/// Version of the JSON form; bumped only on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct StatusModel {
    pub format_version: u32,
    pub generated_at: String,
    /// The commit of `main` the status was read from.
    pub commit: Option<String>,
    /// Every task, archived results included.
    pub counts: Counts,
    /// How many of `counts.completed` and `counts.failed` are in `dgrid-archive` (running totals
    /// the archive keeps; `docs/ARCHITECTURE.md#archive`), zero without an archive.
    pub archived: ArchivedCounts,
    pub nodes: Vec<NodeStatus>,
    pub queue: QueueStatus,
    pub in_progress: Vec<RunningTask>,
    pub recent: Vec<RecentResult>,
    /// Set when most of `main`'s latest commits are not workers' transitions while nodes are
    /// live: under a push budget such commits eat it. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_eaten: Option<String>,
}

/// How many of `main`'s latest commits `status` looks at for [`StatusModel::budget_eaten`].
const BUDGET_LOOK_BACK: usize = 24;

/// Whether most of `main`'s latest commits are not nodes' own transitions (people's, scripts',
/// commits posing as nodes) while some node is live: the line that says so.
fn budget_eaten(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    nodes: &[NodeStatus],
) -> Option<String> {
    let live = nodes
        .iter()
        .any(|n| matches!(n.state, Liveness::Alive | Liveness::Late));
    if !live {
        return None;
    }
    let landed = crate::grid::landed_since(repo, snapshot.tip?, None, BUDGET_LOOK_BACK).ok()?;
    let foreign = landed.iter().filter(|l| !l.transition).count();
    (landed.len() >= BUDGET_LOOK_BACK / 2 && foreign * 2 > landed.len()).then(|| {
        format!(
            "{foreign} of the last {} commits on main are not workers' transitions (people's, scripts', or commits posing as nodes): under a push budget they eat it, and workers keep at least half",
            landed.len()
        )
    })
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub queue: usize,
    pub in_progress: usize,
    pub completed: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ArchivedCounts {
    pub completed: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Heartbeat within two heartbeat intervals (and within its lease).
    Alive,
    /// Within the lease it recorded plus its clock-skew margin: maybe a slow network.
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
    /// `null` when there is none: a reader finds every field in every record.
    pub problem: Option<String>,
    /// How its instances of replicated tasks settled (`valid`, `invalid`, `consecutive_valid`);
    /// `null` for a node that never voted.
    pub reputation: Option<Reputation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunningTask {
    pub id: String,
    /// The node that runs it; for a replicated task, the nodes of its live instances separated
    /// by spaces ("" while none holds one), each listed in `instances`.
    pub node_id: String,
    /// For a replicated task: the earliest claim, the latest lease and the highest attempt of
    /// its live instances.
    pub claimed_at: String,
    pub elapsed: Option<i64>,
    pub lease_expires_at: String,
    pub attempt: u32,
    pub image: String,
    pub command: String,
    /// A replicated task's live instances (empty for a task run once).
    pub instances: Vec<RunningInstance>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunningInstance {
    pub instance: u32,
    pub node_id: String,
    pub attempt: u32,
    /// `running`, `committed` (its commitment landed), `sealed` (waiting for its reveal) or
    /// `revealed`.
    pub state: &'static str,
}

/// A replicated task's agreement, as its result records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuorumSummary {
    pub replicas: u32,
    /// The agreed digest; `null` for `no_quorum`.
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub agreeing: Vec<String>,
    #[serde(default)]
    pub dissenting: Vec<String>,
    /// How many instances' votes were counted.
    #[serde(default, deserialize_with = "count_of")]
    pub votes: usize,
    /// An adaptive task run by one trusted node and not drawn for a check.
    #[serde(default)]
    pub unchecked: bool,
}

fn count_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(Vec::<serde::de::IgnoredAny>::deserialize(d)?.len())
}

#[derive(Debug, Clone, Serialize)]
pub struct RecentResult {
    pub id: String,
    pub status: Status,
    /// null when no node ran it (a task cancelled in the queue).
    pub node_id: Option<String>,
    pub finished_at: String,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    pub command: String,
    /// The last line of output (stderr when it has one, else stdout), shortened to 120 characters.
    pub output_tail: String,
    /// A replicated task's agreement (`null` for a task run once).
    pub quorum: Option<QuorumSummary>,
}

#[derive(Deserialize)]
struct RunningLight {
    #[serde(default)]
    image: String,
    #[serde(default, alias = "script")]
    command: Option<task::TaskCommand>,
    claim: Option<task::Claim>,
    #[serde(default)]
    instances: Vec<InstanceLight>,
}

/// An instance entry as the status needs it (not `task::Instance`: a field a newer writer adds
/// must not hide the task from the status).
#[derive(Deserialize)]
struct InstanceLight {
    instance: u32,
    node_id: String,
    claimed_at: String,
    lease_expires_at: String,
    attempt: u32,
    #[serde(default)]
    commitment: Option<String>,
    #[serde(default)]
    sealed: bool,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    dropped: Option<String>,
}

impl InstanceLight {
    fn state(&self) -> &'static str {
        match (&self.commitment, self.sealed, &self.digest) {
            (None, _, _) => "running",
            (Some(_), false, _) => "committed",
            (Some(_), true, None) => "sealed",
            (Some(_), true, Some(_)) => "revealed",
        }
    }
}

/// A running task as the status shows it: by its claim, or by its live instances.
fn running_task(id: &str, light: RunningLight, now: DateTime<Utc>) -> Option<RunningTask> {
    let command = short_command(light.command.as_ref());
    if let Some(claim) = light.claim {
        return Some(RunningTask {
            id: id.to_string(),
            node_id: claim.node_id,
            elapsed: age(now, &claim.claimed_at),
            claimed_at: claim.claimed_at,
            lease_expires_at: claim.lease_expires_at,
            attempt: claim.attempt.number(),
            image: light.image,
            command,
            instances: Vec::new(),
        });
    }
    let live: Vec<&InstanceLight> = light
        .instances
        .iter()
        .filter(|e| e.dropped.is_none())
        .collect();
    if light.instances.is_empty() {
        return None;
    }
    let claimed_at = live
        .iter()
        .map(|e| e.claimed_at.clone())
        .min()
        .unwrap_or_default();
    Some(RunningTask {
        id: id.to_string(),
        node_id: live
            .iter()
            .map(|e| e.node_id.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        elapsed: age(now, &claimed_at),
        claimed_at,
        lease_expires_at: live
            .iter()
            .map(|e| e.lease_expires_at.clone())
            .max()
            .unwrap_or_default(),
        attempt: live.iter().map(|e| e.attempt).max().unwrap_or(0),
        image: light.image,
        command,
        instances: live
            .iter()
            .map(|e| RunningInstance {
                instance: e.instance,
                node_id: e.node_id.clone(),
                attempt: e.attempt,
                state: e.state(),
            })
            .collect(),
    })
}

#[derive(Deserialize)]
struct ResultLight {
    /// null when no node ran it (cancelled in the queue).
    #[serde(default)]
    node_id: Option<String>,
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
    #[serde(default)]
    quorum: Option<QuorumSummary>,
}

#[derive(Deserialize)]
struct ResultTaskLight {
    #[serde(default)]
    command: Option<task::TaskCommand>,
}

pub fn liveness(record: &NodeRecord, now: DateTime<Utc>) -> (Liveness, Option<i64>) {
    let heartbeat_age = age(now, &record.last_heartbeat);
    if record.state == NodeState::Stopped {
        return (Liveness::Stopped, heartbeat_age);
    }
    // Judged by what the node recorded (docs/ARCHITECTURE.md#leases-and-clocks); records of older
    // workers lack the lease and the skew, and such workers ran with the defaults.
    let interval = record.heartbeat_interval.max(1);
    let lease = record
        .lease
        .unwrap_or(interval * u64::from(settings::LEASE_HEARTBEATS)) as i64;
    let skew = record.clock_skew.unwrap_or(settings::CLOCK_SKEW.fixed()) as i64;
    // Half a minute of slack for a heartbeat on its way (a slow push).
    let alive_within = (2 * interval as i64 + 30).min(lease);
    let state = match heartbeat_age {
        Some(a) if a <= alive_within => Liveness::Alive,
        Some(a) if a <= lease + skew => Liveness::Late,
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
                let record = load_node(repo, n)?;
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
                    reputation: record.reputation,
                })
            })
            .collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));

        let queue = super::queue::status(repo, snapshot, now);

        let mut in_progress: Vec<RunningTask> = snapshot
            .in_state(State::InProgress)
            .filter_map(|t| running_task(&t.id, read(repo, t)?, now))
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
                    node_id: r.node_id.filter(|n| !n.is_empty()),
                    finished_at: r.finished_at.unwrap_or(r.timestamp),
                    exit_code: r.exit_code,
                    duration_ms: r.duration_ms,
                    command: short_command(r.task.as_ref().and_then(|t| t.command.as_ref())),
                    output_tail: shorten(if last_line(&r.stderr).is_empty() {
                        last_line(&r.stdout)
                    } else {
                        last_line(&r.stderr)
                    }),
                    quorum: r.quorum,
                })
            })
            .take(LIST_LIMIT)
            .collect();

        let budget_eaten = budget_eaten(repo, snapshot, &nodes);
        Ok(StatusModel {
            budget_eaten,
            format_version: FORMAT_VERSION,
            generated_at: crate::time::rfc3339(now),
            commit: snapshot.tip.map(|c: ObjectId| c.to_string()),
            counts,
            archived: ArchivedCounts::default(),
            nodes,
            queue,
            in_progress,
            recent,
        })
    }
}

impl StatusModel {
    /// Counts the results the archive holds too (its running totals).
    pub fn add_archived(&mut self, totals: crate::grid::ArchiveTotals) {
        self.archived = ArchivedCounts {
            completed: totals.completed,
            failed: totals.failed,
        };
        self.counts.completed += totals.completed as usize;
        self.counts.failed += totals.failed as usize;
    }
}

pub use crate::time::human_duration;

#[cfg(test)]
mod tests {
    use super::*;

    fn record(lease: Option<u64>, clock_skew: Option<u64>) -> NodeRecord {
        NodeRecord {
            id: "n".into(),
            hostname: String::new(),
            version: String::new(),
            labels: Vec::new(),
            slots: 1,
            cpus: 1.0,
            memory: 0,
            docker_version: None,
            started_at: "2026-01-01T00:00:00Z".into(),
            last_heartbeat: "2026-01-01T12:00:00Z".into(),
            state: NodeState::Running,
            heartbeat_interval: 300,
            lease,
            clock_skew,
            running: Vec::new(),
            completed: 0,
            failed: 0,
            session: String::new(),
            problem: None,
            skipped: Default::default(),
            reputation: None,
        }
    }

    fn judged(record: &NodeRecord, silent_secs: i64) -> Liveness {
        let heartbeat = DateTime::parse_from_rfc3339(&record.last_heartbeat).unwrap();
        let now = heartbeat.with_timezone(&Utc) + chrono::Duration::seconds(silent_secs);
        liveness(record, now).0
    }

    #[test]
    fn a_node_is_judged_by_the_lease_it_recorded() {
        // A lease of 2 hours and a 10-minute skew margin: silent for 20 minutes is only late,
        // for more than 2 h 10 min dead.
        let long = record(Some(7200), Some(600));
        assert_eq!(judged(&long, 600), Liveness::Alive);
        assert_eq!(judged(&long, 1200), Liveness::Late);
        assert_eq!(judged(&long, 7200 + 600), Liveness::Late);
        assert_eq!(judged(&long, 7200 + 601), Liveness::Dead);
        // A lease shorter than two heartbeat intervals: late as soon as the lease is over.
        let short = record(Some(120), Some(30));
        assert_eq!(judged(&short, 100), Liveness::Alive);
        assert_eq!(judged(&short, 121), Liveness::Late);
        assert_eq!(judged(&short, 151), Liveness::Dead);
    }

    #[test]
    fn old_records_are_judged_by_the_defaults() {
        // No lease or skew recorded: 3 heartbeat intervals and 60 s, as such workers ran.
        let old = record(None, None);
        assert_eq!(judged(&old, 630), Liveness::Alive);
        assert_eq!(judged(&old, 631), Liveness::Late);
        assert_eq!(judged(&old, 960), Liveness::Late);
        assert_eq!(judged(&old, 961), Liveness::Dead);
        let stopped = NodeRecord {
            state: NodeState::Stopped,
            ..record(None, None)
        };
        assert_eq!(judged(&stopped, 10_000), Liveness::Stopped);
    }

    /// `status` says when most of `main`'s latest commits are not workers'
    /// transitions while a node is live (they eat the push budget), and nothing on a quiet grid.
    #[test]
    fn status_says_when_commits_not_workers_eat_the_budget() {
        use crate::grid::testkit::{empty_commit_as, grid, node, node_file};
        use crate::grid::Snapshot;
        let now = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fx = grid(&[node_file("w1", node("w1", "2026-01-01T09:59:50Z", "s"))]);
        let quiet = StatusModel::build(&fx.repo, &fx.snapshot, &[], now).unwrap();
        assert_eq!(quiet.budget_eaten, None);
        let mut tip = fx.snapshot.tip;
        for i in 0..20 {
            tip = Some(empty_commit_as(&fx.repo, tip, &format!("fake-{i}")));
        }
        let snapshot = Snapshot::read(&fx.repo, tip).unwrap();
        let model = StatusModel::build(&fx.repo, &snapshot, &[], now).unwrap();
        let note = model.budget_eaten.clone().expect("said");
        assert!(
            note.starts_with("21 of the last 21 commits on main are not workers'"),
            "{note}"
        );
        let text = crate::dashboard::table::render(&model, "g", false);
        assert!(text.contains("push budget: 21 of the last 21"), "{text}");
    }
}

//! Test helpers for the grid's transitions: a [`Snapshot`] built from `(path, json)` files in a
//! temporary bare repository (objects written with gix, no checkout, no remote), and builders for
//! the files a grid holds. Typed values (results, node records) are parsed from the JSON the
//! builders make, so the tests go through the same parsers as the grid does.

use crate::grid::engine::transact::Change;
use crate::grid::plan::claim;
use crate::grid::plan::cycle::{self, Applied, Intent, ReapPolicy};
use crate::grid::plan::ownership::Ownership;
use crate::grid::read::snapshot::{Snapshot, TaskRef};
use crate::layout::{self, State};
use crate::node::NodeRecord;
pub use crate::odb::Edit;
use crate::odb::{self, Identity};
use crate::task::{self, Attempt, Claim, Limits, TaskId, TaskResult, TaskSpec};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

/// The instant every test's transition runs at.
pub const NOW: &str = "2026-01-01T12:00:00Z";

pub fn now() -> DateTime<Utc> {
    at(NOW)
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a test timestamp is RFC 3339")
        .with_timezone(&Utc)
}

/// A grid's state at one commit of a temporary repository, and that repository.
pub struct Fixture {
    // Kept for its Drop: the repository lives in it.
    _dir: tempfile::TempDir,
    pub repo: gix::Repository,
    pub snapshot: Snapshot,
}

/// A snapshot holding exactly `files` (repository-relative path, JSON content).
/// A grid of `files`, with a record for every other node named in a claim or an instance that
/// has none among them (a claim of a node with no record is dead at once: `reap::may_take_back`).
pub fn grid(files: &[(String, Value)]) -> Fixture {
    let mut all = files.to_vec();
    let mut named = std::collections::BTreeSet::new();
    for (_, content) in files
        .iter()
        .filter(|(p, _)| p.starts_with("tasks/in_progress"))
    {
        named.extend(content["claim"]["node_id"].as_str().map(str::to_string));
        for entry in content["instances"].as_array().into_iter().flatten() {
            named.extend(entry["node_id"].as_str().map(str::to_string));
        }
    }
    // This node's own record is the test's business (its session decides ownership).
    named.remove(ME);
    for id in named {
        if !files.iter().any(|(p, _)| *p == layout::node_path(&id)) {
            all.push(node_file(
                &id,
                node(&id, "2026-01-01T12:00:00Z", "its-session"),
            ));
        }
    }
    grid_as_is(&all)
}

/// A grid of exactly `files` (no node record added).
pub fn grid_as_is(files: &[(String, Value)]) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let repo = gix::init_bare(dir.path().join("grid.git")).expect("gix can init a bare repository");
    // Every fixture is laid out as `init` does it (the empty placeholder files), as a grid is.
    let layout = layout::skeleton().into_iter().map(|path| Edit::Write {
        path,
        content: Vec::new(),
    });
    let edits: Vec<Edit> = layout
        .chain(files.iter().map(|(path, content)| Edit::Write {
            path: path.clone(),
            content: bytes(content),
        }))
        .collect();
    let tip = commit(&repo, None, &edits);
    let snapshot = Snapshot::read(&repo, Some(tip)).expect("the test grid reads back");
    Fixture {
        _dir: dir,
        repo,
        snapshot,
    }
}

fn commit(repo: &gix::Repository, parent: Option<gix::ObjectId>, edits: &[Edit]) -> gix::ObjectId {
    let who = Identity::node("test");
    odb::write_commit(repo, parent, edits, &who, "test\n").expect("the test commit is written")
}

fn bytes(content: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(content).expect("JSON serializes");
    out.push(b'\n');
    out
}

impl Fixture {
    /// Commits `edits` on top of `parent` as `who` (a node, or a person); returns the commit.
    pub fn commit_as(
        &self,
        parent: Option<gix::ObjectId>,
        edits: &[Edit],
        who: &Identity,
    ) -> gix::ObjectId {
        self.commit_with_message(parent, edits, who, "test\n")
    }

    pub fn commit_with_message(
        &self,
        parent: Option<gix::ObjectId>,
        edits: &[Edit],
        who: &Identity,
        message: &str,
    ) -> gix::ObjectId {
        odb::write_commit(&self.repo, parent, edits, who, message)
            .expect("the test commit is written")
    }

    /// The state after `edits` (a planned change) are committed on top of this one.
    pub fn after(&self, edits: &[Edit]) -> Snapshot {
        let tip = commit(&self.repo, self.snapshot.tip, edits);
        Snapshot::read(&self.repo, Some(tip)).expect("the changed grid reads back")
    }

    /// Where task `id` is in `snapshot`, and its file as JSON.
    pub fn task_in(&self, snapshot: &Snapshot, id: &str) -> Option<(State, Value)> {
        let task = snapshot.get(id)?;
        let blob = self.repo.find_blob(task.blob).expect("the task's blob");
        let value = serde_json::from_slice(&blob.data).expect("task files are JSON");
        Some((task.state, value))
    }

    /// Node `id`'s record in `snapshot`.
    pub fn node_in(&self, snapshot: &Snapshot, id: &str) -> Option<Value> {
        let node = snapshot.nodes.iter().find(|n| n.id == id)?;
        let blob = self.repo.find_blob(node.blob).expect("the node's blob");
        Some(serde_json::from_slice(&blob.data).expect("node files are JSON"))
    }
}

/// The error of `result`, which must be one (`unwrap_err` would want the value to be `Debug`).
pub fn error<T>(result: anyhow::Result<T>) -> anyhow::Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// A valid queued task, created at 09:00 on the test day.
pub fn task(id: &str) -> Value {
    json!({
        "id": id,
        "image": "alpine:3",
        "command": "true",
        "created_at": "2026-01-01T09:00:00Z",
        "timeout": 60,
        "submitted_by": "t",
    })
}

/// [`task`] (or any task JSON) as the grid's code holds it.
pub fn task_spec(content: &Value) -> TaskSpec {
    task::parse_task(
        "task.json",
        &bytes(content),
        &Limits::default(),
        task::Origin::Required,
    )
    .expect("a valid task")
}

/// `task` with `field` set to `value`.
pub fn with(mut task: Value, field: &str, value: Value) -> Value {
    task[field] = value;
    task
}

/// `task` claimed by `node` for `attempt`, claimed at 11:50 with its lease until `lease_until`.
pub fn claimed(task: Value, node: &str, attempt: u32, lease_until: &str) -> Value {
    with(
        task,
        "claim",
        json!({
            "node_id": node,
            "claimed_at": "2026-01-01T11:50:00Z",
            "lease_expires_at": lease_until,
            "attempt": attempt,
        }),
    )
}

/// The result file of task `id`, run by `node` for `attempt`, with `status` ("success", ...).
pub fn result(id: &str, node: &str, status: &str, attempt: u32) -> Value {
    json!({
        "task_id": id,
        "node_id": node,
        "exit_code": if status == "success" { 0 } else { 1 },
        "stdout": format!("{id} by {node}\n"),
        "stderr": "",
        "timestamp": "2026-01-01T11:55:00Z",
        "status": status,
        "started_at": "2026-01-01T11:50:00Z",
        "finished_at": "2026-01-01T11:55:00Z",
        "duration_ms": 300_000,
        "attempt": attempt,
        "task": task(id),
    })
}

/// [`result`] as the worker holds it.
pub fn task_result(id: &str, node: &str, status: &str, attempt: u32) -> TaskResult {
    let json = bytes(&result(id, node, status, attempt));
    task::parse_result("result.json", &json, &Limits::default()).expect("a valid result")
}

/// Node `id`'s record, last heard from at `heartbeat`, written by worker process `session`.
pub fn node(id: &str, heartbeat: &str, session: &str) -> Value {
    json!({
        "id": id,
        "hostname": "host",
        "version": "0.1.0",
        "labels": [],
        "slots": 1,
        "cpus": 1.0,
        "memory": 1,
        "started_at": "2026-01-01T08:00:00Z",
        "last_heartbeat": heartbeat,
        "state": "running",
        "heartbeat_interval": 300,
        "running": [],
        "session": session,
    })
}

/// [`node`] as the worker holds it.
pub fn node_record(id: &str, heartbeat: &str, session: &str) -> NodeRecord {
    NodeRecord::parse(&bytes(&node(id, heartbeat, session))).expect("a valid node record")
}

/// The file of task `content` in `state`, at its canonical (sharded) path.
pub fn file(state: State, id: &str, content: Value) -> (String, Value) {
    (layout::task_path(state, id), content)
}

/// An empty commit on `parent` authored as node `node` (anyone who may push can write one).
pub fn empty_commit_as(
    repo: &gix::Repository,
    parent: Option<gix::ObjectId>,
    node: &str,
) -> gix::ObjectId {
    crate::odb::write_commit(
        repo,
        parent,
        &[],
        &Identity::node(node),
        "dgrid: heartbeat\n",
    )
    .expect("a commit")
}

/// The file of node `id`'s record.
pub fn node_file(id: &str, content: Value) -> (String, Value) {
    (layout::node_path(id), content)
}

// ---------------------------------------------------------------------------------------------
// The worker's transition

/// The node whose worker plans in [`WorkerIntent`], and its worker process.
pub const ME: &str = "me";
pub const SESSION: &str = "my-session";
pub const LEASE: Duration = Duration::from_secs(900);
/// [`ME`]'s reveal key (`quorum::salt`).
pub const REVEAL_KEY: &[u8] = b"my reveal key, 32 bytes long....";

/// What node [`ME`]'s worker asks of [`cycle::plan`], owning what [`Intent`] borrows.
#[derive(Default)]
pub struct WorkerIntent {
    pub results: Vec<TaskResult>,
    pub releases: Vec<(String, u32)>,
    /// (id, attempt, docker's message).
    pub start_failures: Vec<(String, u32, String)>,
    pub running: Vec<(String, u32)>,
    pub held: Vec<String>,
    /// What the node record says runs here before the transition.
    pub node_running: Vec<String>,
    pub claim: Option<claim::Request>,
    pub heartbeat: bool,
    /// Whether this worker process has written already (see `Ownership::started`).
    pub started: bool,
    /// How long ago that write landed (see `Ownership::since_last_write`).
    pub since_last_write: Option<Duration>,
    /// The record that refused an earlier start, and for how long (see `Ownership::watched`).
    pub watched: Option<(gix::ObjectId, Duration)>,
    /// (id, attempt, claimed_at) the state dir noted as claimed ahead and never started.
    pub never_started: Vec<(String, u32, String)>,
}

impl WorkerIntent {
    pub fn plan(
        &self,
        fx: &Fixture,
        reaper: &mut dyn ReapPolicy,
    ) -> anyhow::Result<Option<Change<Applied>>> {
        let ownership = Ownership {
            session: SESSION.into(),
            previous_sessions: Vec::new(),
            started: self.started,
            silence: Duration::from_secs(960),
            since_last_write: self.since_last_write,
            watched: self.watched,
        };
        let mut node = node_record(ME, NOW, SESSION);
        node.running = self.node_running.clone();
        let releases = typed(&self.releases);
        let running = typed(&self.running);
        let start_failures: Vec<(TaskId, Attempt, String)> = self
            .start_failures
            .iter()
            .map(|(id, n, why)| {
                let (id, attempt) = typed(&[(id.clone(), *n)]).remove(0);
                (id, attempt, why.clone())
            })
            .collect();
        let never_started: HashSet<(String, Attempt, String)> = self
            .never_started
            .iter()
            .map(|(id, n, at)| (id.clone(), Attempt::new(*n).unwrap(), at.clone()))
            .collect();
        // As the worker does: the queue parsed once for the transition, by a probe of the node
        // (one task, the claim's labels and gate when it claims).
        let probe = self.claim.clone().unwrap_or_else(|| claim::Request {
            node_id: ME.into(),
            max: 1,
            ahead: 0,
            lease: LEASE,
            labels: Vec::new(),
            allow_network: false,
            admission: Default::default(),
        });
        let limits = Limits::default();
        let queue = claim::Claimable::read(&fx.repo, &fx.snapshot, &probe, &limits);
        let intent = Intent {
            node,
            results: &self.results,
            releases: &releases,
            start_failures: &start_failures,
            running: &running,
            held: &self.held,
            claim: self.claim.as_ref(),
            excluded: &Default::default(),
            heartbeat: self.heartbeat,
            ownership: &ownership,
            never_started: &never_started,
            lease: LEASE,
            now: now(),
            reveal_key: REVEAL_KEY,
            queue: Some(&queue),
        };
        cycle::plan(&fx.repo, &fx.snapshot, &intent, &limits, reaper)
    }
}

/// (id, attempt) pairs as the transition takes them, from the plain ones the tables write.
fn typed(pairs: &[(String, u32)]) -> Vec<(TaskId, Attempt)> {
    pairs
        .iter()
        .map(|(id, n)| {
            (
                TaskId::parse(id.as_str()).unwrap(),
                Attempt::new(*n).unwrap(),
            )
        })
        .collect()
}

/// (id, attempt) pairs the transition returns, as plain values to compare with a table's.
pub fn plain(pairs: &[(TaskId, Attempt)]) -> Vec<(String, u32)> {
    pairs
        .iter()
        .map(|(id, n)| (id.to_string(), n.number()))
        .collect()
}

/// Reaps the claims of the nodes it is told are dead, and remembers which tasks it was asked about.
#[derive(Default)]
pub struct FakeReaper {
    pub dead: Vec<&'static str>,
    pub asked: Vec<String>,
}

impl FakeReaper {
    pub fn dead(nodes: &[&'static str]) -> FakeReaper {
        FakeReaper {
            dead: nodes.to_vec(),
            asked: Vec::new(),
        }
    }
}

impl ReapPolicy for FakeReaper {
    fn may_reap(&mut self, _: &Snapshot, task: &TaskRef, claim: &Claim) -> bool {
        self.asked.push(task.id.clone());
        self.dead.contains(&claim.node_id.as_str())
    }
}

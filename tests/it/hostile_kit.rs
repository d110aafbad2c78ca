//! The hostile-content generator of `soak_hostile.rs`: random mixtures of valid, broken,
//! duplicated, oversized and forged files, pushed with plain git around the pre-push hook into every
//! state of a grid, with a ledger of what it pushed so the soak can tell which tasks must end
//! exactly once. Seeded: a failing run replays with `DGRID_TEST_SEED`.

use crate::common::{AroundHook, Content, Env, TaskJson};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const IMAGE: &str = "dgrid/busybox:latest";
const STATES: [&str; 4] = ["queue", "in_progress", "completed", "failed"];
/// Pushes a round may take: three workers heartbeating every second win most races against six
/// plain git commands on a loaded machine, so the generator is patient.
const ROUND_TRIES: u32 = 60;
/// The read cap of the grid (README: "a task file is UTF-8 JSON of at most 256 KiB").
const CAP: usize = 256 * 1024;

/// A valid task the generator submitted.
#[derive(Debug, Clone)]
pub struct Valid {
    /// Printed by the task's command, so every run of it can be counted.
    pub token: String,
    /// `echo`/`true` end in completed, `exit 3` in failed with exit code 3.
    pub succeeds: bool,
    pub depends_on: Vec<String>,
    /// The label a node must have, if any.
    pub label: Option<&'static str>,
    pub path: String,
}

#[derive(Default)]
pub struct Ledger {
    pub valid: BTreeMap<String, Valid>,
    /// Ids also used by another file the generator pushed: id -> what those files were.
    pub forged: BTreeMap<String, Vec<String>>,
    /// Valid ids that differ from another valid id only by case.
    pub case_twins: BTreeSet<String>,
    /// Files that `validate` must name: path -> what is wrong with it.
    pub broken: BTreeMap<String, String>,
    /// Every id the generator used, valid or not (bounds the grid's pushes).
    pub ids: BTreeSet<String>,
    pub pushes: usize,
    pub lost_races: usize,
}

impl Ledger {
    /// Valid tasks that must end exactly once: submitted once, their id in no other file, not a
    /// case twin, and every dependency such a task that succeeds.
    pub fn clean(&self) -> BTreeSet<String> {
        let mut clean: BTreeSet<String> = self
            .valid
            .keys()
            .filter(|id| !self.forged.contains_key(*id) && !self.case_twins.contains(*id))
            .cloned()
            .collect();
        loop {
            let before = clean.len();
            let keep: BTreeSet<String> = clean
                .iter()
                .filter(|id| {
                    self.valid[*id]
                        .depends_on
                        .iter()
                        .all(|d| clean.contains(d) && self.valid[d].succeeds)
                })
                .cloned()
                .collect();
            clean = keep;
            if clean.len() == before {
                return clean;
            }
        }
    }
}

pub struct Generator {
    /// Decides every file: the same seed makes the same rounds, whatever the timing.
    rng: fastrand::Rng,
    /// Decides only the pauses between rounds, whose number depends on lost races: kept apart
    /// from `rng` so that a replay pushes the same files.
    pub jitter: fastrand::Rng,
    pub ledger: Ledger,
    /// The three workers' node ids.
    nodes: Vec<String>,
    seed: u64,
    n: usize,
    node_forgeries: usize,
}

pub fn shard(id: &str) -> String {
    // The grid's FNV-1a shard (src/layout.rs), so sharded duplicates land where the grid looks.
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

fn sharded(state: &str, id: &str) -> String {
    format!("tasks/{state}/{}/{id}.json", shard(id))
}

fn flat(state: &str, id: &str) -> String {
    format!("tasks/{state}/{id}.json")
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Generator {
    pub fn new(seed: u64, nodes: Vec<String>) -> Generator {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            jitter: fastrand::Rng::new(),
            ledger: Ledger::default(),
            nodes,
            seed,
            n: 0,
            node_forgeries: 0,
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.n += 1;
        let id = format!("{prefix}{}", self.n);
        self.ledger.ids.insert(id.clone());
        id
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    fn some_valid(&mut self) -> Option<String> {
        let ids: Vec<String> = self.ledger.valid.keys().cloned().collect();
        (!ids.is_empty()).then(|| self.pick(&ids).clone())
    }

    fn forge(&mut self, id: &str, what: String) {
        self.ledger
            .forged
            .entry(id.to_string())
            .or_default()
            .push(what);
    }

    /// One round's files: 1 to 5 items of random kinds.
    fn round(&mut self) -> Vec<(String, Content)> {
        let mut files = Vec::new();
        for _ in 0..self.rng.usize(1..=5) {
            match self.rng.u32(0..16) {
                0..=5 => files.push(self.valid_task()),
                6..=8 => files.push(self.broken()),
                9..=10 => files.extend(self.duplicate()),
                11 => files.push(self.oversized()),
                _ => files.extend(self.forged()),
            }
        }
        files
    }

    /// A valid task: prints its token, then succeeds or exits 3; maybe a priority, a label a
    /// node has, dependencies on earlier valid tasks that succeed.
    fn valid_task(&mut self) -> (String, Content) {
        let id = self.fresh("v");
        self.valid_task_with_id(id, None)
    }

    fn valid_task_with_id(&mut self, id: String, path: Option<String>) -> (String, Content) {
        let token = format!("soaktok-{}-{id}", self.seed);
        let (tail, succeeds) = *self.pick(&[("", true), ("; true", true), ("; exit 3", false)]);
        let mut task = TaskJson::file(&id)
            .image(IMAGE)
            .command(format!("echo {token}{tail}"))
            .timeout(60);
        if self.rng.bool() {
            task = task.set("priority", self.rng.i32(-3..=3));
        }
        let label = match self.rng.u32(0..6) {
            0 => Some("gpu"),
            1 => Some("ssd"),
            _ => None,
        };
        if let Some(label) = label {
            task = task.set("labels", serde_json::json!([label]));
        }
        let mut depends_on = Vec::new();
        if self.rng.u32(0..4) == 0 {
            let done: Vec<String> = self
                .ledger
                .valid
                .iter()
                .filter(|(_, v)| v.succeeds)
                .map(|(id, _)| id.clone())
                .collect();
            if !done.is_empty() {
                depends_on.push(self.pick(&done).clone());
                task = task.set("depends_on", serde_json::json!(depends_on));
            }
        }
        let path = path.unwrap_or_else(|| {
            if self.rng.bool() {
                sharded("queue", &id)
            } else {
                flat("queue", &id)
            }
        });
        if self.ledger.valid.contains_key(&id) {
            self.forge(&id, format!("a second valid copy at {path}"));
        } else {
            self.ledger.valid.insert(
                id.clone(),
                Valid {
                    token,
                    succeeds,
                    depends_on,
                    label,
                    path: path.clone(),
                },
            );
        }
        (path, Content::Bytes(task.to_string().into_bytes()))
    }

    /// A file no reader can take, in any state or `nodes/`, under a fresh id.
    fn broken(&mut self) -> (String, Content) {
        let id = self.fresh("b");
        let state = *self.pick(&STATES);
        let path = if self.rng.bool() {
            sharded(state, &id)
        } else {
            flat(state, &id)
        };
        let task = TaskJson::file(&id).image(IMAGE);
        let (path, why, content) = match self.rng.u32(0..9) {
            0 => (
                path,
                "invalid JSON",
                Content::Bytes(b"{\"id\": \"x\", ".to_vec()),
            ),
            1 => (
                path,
                "wrong types",
                Content::Bytes(task.timeout("abc").command(5).to_string().into_bytes()),
            ),
            2 => (
                path,
                "an unknown field",
                Content::Bytes(task.set("colour", 1).to_string().into_bytes()),
            ),
            3 => (
                flat(state, &format!("-{id}")),
                "an invalid id",
                Content::Bytes(TaskJson::file(&format!("-{id}")).to_string().into_bytes()),
            ),
            4 => (
                flat(state, &format!("{id}..x")),
                "an id with ..",
                Content::Bytes(TaskJson::file(&format!("{id}..x")).to_string().into_bytes()),
            ),
            5 => {
                let mut bytes = task.to_string().into_bytes();
                bytes.splice(1..1, b"\"\xff\xfe\":1,".iter().copied());
                (path, "non-UTF-8", Content::Bytes(bytes))
            }
            6 => (
                path,
                "a symbolic link",
                Content::Symlink("../../../README.md".into()),
            ),
            7 => (path, "an empty file", Content::Bytes(Vec::new())),
            _ => (
                format!("nodes/{id}.json"),
                "a garbage node record",
                Content::Bytes(
                    serde_json::json!({"id": id, "slots": "many", "last_heartbeat": 7})
                        .to_string()
                        .into_bytes(),
                ),
            ),
        };
        self.ledger.broken.insert(path.clone(), why.to_string());
        (path, content)
    }

    /// An id in two places: flat and sharded in the queue, queued and also in another state
    /// (valid or garbage), or two valid ids that differ only by case.
    fn duplicate(&mut self) -> Vec<(String, Content)> {
        let id = self.fresh("d");
        match self.rng.u32(0..4) {
            0 => {
                let a = self.valid_task_with_id(id.clone(), Some(flat("queue", &id)));
                let b = self.valid_task_with_id(id.clone(), Some(sharded("queue", &id)));
                vec![a, b]
            }
            1 | 2 => {
                let queued = self.valid_task_with_id(id.clone(), None);
                let state = *self.pick(&STATES[1..]);
                let path = if self.rng.bool() {
                    sharded(state, &id)
                } else {
                    flat(state, &id)
                };
                let content = if self.rng.bool() {
                    b"not json at all".to_vec()
                } else {
                    forged_result(&id, "mallory")
                };
                self.forge(&id, format!("a copy at {path}"));
                vec![queued, (path, Content::Bytes(content))]
            }
            _ => {
                let Some(existing) = self.some_valid() else {
                    return vec![self.valid_task()];
                };
                let twin: String = existing
                    .chars()
                    .map(|c| {
                        if c.is_ascii_lowercase() {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                if self.ledger.valid.contains_key(&twin) {
                    return vec![self.valid_task()];
                }
                self.ledger.ids.insert(twin.clone());
                self.ledger.case_twins.insert(existing);
                self.ledger.case_twins.insert(twin.clone());
                vec![self.valid_task_with_id(twin, None)]
            }
        }
    }

    /// Over the read cap: a queued task whose command is long, or a huge result.
    fn oversized(&mut self) -> (String, Content) {
        let id = self.fresh("o");
        let state = *self.pick(&STATES);
        let path = sharded(state, &id);
        let padding = "x".repeat(CAP + 1024);
        let content = TaskJson::file(&id)
            .image(IMAGE)
            .command(format!("echo {padding}"))
            .to_string();
        self.ledger
            .broken
            .insert(path.clone(), "over the 256 KiB cap".into());
        (path, Content::Bytes(content.into_bytes()))
    }

    /// Forged claims (unknown or live nodes, leases in year 9999 or long past), forged results
    /// for queued tasks, forged node records of the running nodes with other sessions.
    fn forged(&mut self) -> Vec<(String, Content)> {
        match self.rng.u32(0..5) {
            0 | 1 => {
                let id = match self.some_valid() {
                    Some(victim) if self.rng.bool() => victim,
                    _ => self.fresh("f"),
                };
                let mut claimants = self.nodes.clone();
                claimants.push("mallory".into());
                let node = self.pick(&claimants).clone();
                let lease = *self.pick(&["9999-12-31T23:59:59Z", "2001-01-01T00:00:00Z"]);
                let attempt = self.rng.u32(1..=2);
                let path = sharded("in_progress", &id);
                let task = TaskJson::file(&id)
                    .image(IMAGE)
                    .command(format!("echo forged-{id}"))
                    .claim(&node, "2001-01-01T00:00:00Z", lease, attempt);
                self.forge(&id, format!("a claim by {node} until {lease} at {path}"));
                vec![(path, Content::Bytes(task.to_string().into_bytes()))]
            }
            2 | 3 => {
                let Some(victim) = self.some_valid() else {
                    return vec![self.valid_task()];
                };
                let state = *self.pick(&["completed", "failed"]);
                let path = if self.rng.bool() {
                    sharded(state, &victim)
                } else {
                    flat(state, &victim)
                };
                self.forge(&victim, format!("a forged result at {path}"));
                vec![(path, Content::Bytes(forged_result(&victim, "mallory")))]
            }
            _ => {
                // A few per run: a live worker must not stop for one stale forged record.
                if self.node_forgeries >= 3 {
                    return vec![self.broken()];
                }
                self.node_forgeries += 1;
                let node = self.pick(&self.nodes.clone()).clone();
                let record = serde_json::json!({
                    "id": node, "hostname": "evil", "version": "0.0.0", "labels": [],
                    "slots": 1, "cpus": 1.0, "memory": 1, "started_at": "2001-01-01T00:00:00Z",
                    "last_heartbeat": now(), "state": "running", "heartbeat_interval": 1,
                    "lease": 4, "clock_skew": 0, "running": [], "completed": 0, "failed": 0,
                    "session": format!("forged-{}", self.rng.u32(..)),
                });
                vec![(
                    git_dgrid::layout::node_path(&node),
                    Content::Bytes(record.to_string().into_bytes()),
                )]
            }
        }
    }

    /// Pushes one round with plain git around the hook, retrying a lost race on a fresh tip.
    /// Returns an error message when the push never landed.
    pub fn push_round(&mut self, env: &Env, clone: &Path) -> Result<(), String> {
        let files = self.round();
        let pushed = AroundHook::new(env, clone)
            .subject("hostile soak")
            .tries(ROUND_TRIES)
            .push(files);
        match pushed {
            Ok(landed) => {
                let attempts = landed.attempts as usize;
                self.ledger.pushes += attempts;
                self.ledger.lost_races += attempts.saturating_sub(1);
                Ok(())
            }
            Err(why) => {
                self.ledger.pushes += ROUND_TRIES as usize;
                self.ledger.lost_races += ROUND_TRIES as usize;
                Err(format!("the generator could not push a round: {why}"))
            }
        }
    }
}

/// A result a worker never wrote, in the seed's format.
fn forged_result(id: &str, node: &str) -> Vec<u8> {
    serde_json::json!({
        "task_id": id, "node_id": node, "exit_code": 0, "stdout": "forged\n", "stderr": "",
        "timestamp": "2001-01-01T00:00:00Z", "status": "success",
    })
    .to_string()
    .into_bytes()
}

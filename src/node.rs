//! A node's record in `nodes/<shard>/<node-id>.json` (flat `nodes/<node-id>.json` is read too):
//! who it is, what it can run, and its heartbeat.

use crate::fields::{read_object, FieldReader};
use crate::problem::Problem;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Running,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub slots: u32,
    #[serde(default)]
    pub cpus: f64,
    /// Bytes of memory the node gives a container at most.
    #[serde(default)]
    pub memory: u64,
    #[serde(default)]
    pub docker_version: Option<String>,
    pub started_at: String,
    pub last_heartbeat: String,
    pub state: NodeState,
    /// Seconds between heartbeats when idle, so readers can judge liveness.
    #[serde(default)]
    pub heartbeat_interval: u64,
    /// Seconds the node's claims last without a heartbeat (its `--lease`), and the clock
    /// difference it tolerates (`--clock-skew`): a reader judges the node dead only after both.
    /// Absent in records of older workers: readers assume the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<u64>,
    #[serde(default)]
    pub running: Vec<String>,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub failed: u64,
    /// A random id of the worker process that writes this record. Another process using the same
    /// node id shows up as another session; see `grid::plan::ownership`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// What keeps the node from working, when something does (e.g. docker is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Queued task versions this node's admission gate left in the queue since its process
    /// started, per reason (`caps`, `image`, `untrusted`; see `grid::policy::admission`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    /// How this node's instances of replicated tasks settled, written by the node that settles
    /// them (a cache: `quorum::reputation` recomputes it from results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reputation: Option<Reputation>,
}

/// A node's record of agreeing with the quorum (BOINC's adaptive replication keeps the same).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reputation {
    pub valid: u64,
    pub invalid: u64,
    /// Valid results since the last invalid one.
    pub consecutive_valid: u64,
}

impl NodeRecord {
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a node record always serializes");
        out.push(b'\n');
        out
    }

    /// The record in `bytes`, if it is one (for callers that have reported its problems already).
    pub fn parse(bytes: &[u8]) -> Option<NodeRecord> {
        NodeRecord::read("node record", bytes).ok()
    }

    /// The record in `file`'s `bytes`, or every problem of it (file, field, reason).
    pub fn read(file: &str, bytes: &[u8]) -> Result<NodeRecord, Vec<Problem>> {
        let object = read_object(file, bytes).map_err(|p| vec![p])?;
        NodeRecord::from_object(file, object)
    }

    /// Reads a node record field by field, naming every field of the wrong type or missing.
    /// Fields it does not know are ignored, not reported: a newer worker may record more.
    pub fn from_object(file: &str, object: Map<String, Value>) -> Result<NodeRecord, Vec<Problem>> {
        let mut r = FieldReader::new(file, "", object);
        let text = "a string";
        let count = "a whole number";
        let strings = "a list of strings";
        let id = r.required("id", &[]);
        let id = r.typed::<String>("id", id, text);
        let hostname = r.take("hostname", &[]);
        let hostname = r.typed("hostname", hostname, text);
        let version = r.take("version", &[]);
        let version = r.typed("version", version, text);
        let labels = r.take("labels", &[]);
        let labels = r.typed("labels", labels, strings);
        let slots = r.take("slots", &[]);
        let slots = r.typed("slots", slots, count);
        let cpus = r.take("cpus", &[]);
        let cpus = r.typed("cpus", cpus, "a number");
        let memory = r.take("memory", &[]);
        let memory = r.typed("memory", memory, "a whole number of bytes");
        let docker_version = r.take("docker_version", &[]);
        let docker_version = r.typed("docker_version", docker_version, "a string or null");
        let started_at = r.required("started_at", &[]);
        let started_at = r.typed::<String>("started_at", started_at, text);
        let last_heartbeat = r.required("last_heartbeat", &[]);
        let last_heartbeat = r.typed::<String>("last_heartbeat", last_heartbeat, text);
        let state = r.required("state", &[]);
        let state = r.typed::<NodeState>(
            "state",
            state,
            "one of \"running\", \"stopping\", \"stopped\"",
        );
        let heartbeat_interval = r.take("heartbeat_interval", &[]);
        let heartbeat_interval = r.typed("heartbeat_interval", heartbeat_interval, count);
        let lease = r.take("lease", &[]);
        let lease = r.typed("lease", lease, "a whole number of seconds or null");
        let clock_skew = r.take("clock_skew", &[]);
        let clock_skew = r.typed(
            "clock_skew",
            clock_skew,
            "a whole number of seconds or null",
        );
        let running = r.take("running", &[]);
        let running = r.typed("running", running, strings);
        let completed = r.take("completed", &[]);
        let completed = r.typed("completed", completed, count);
        let failed = r.take("failed", &[]);
        let failed = r.typed("failed", failed, count);
        let session = r.take("session", &[]);
        let session = r.typed("session", session, text);
        let problem = r.take("problem", &[]);
        let problem = r.typed("problem", problem, "a string or null");
        let skipped = r.take("skipped", &[]);
        let skipped = r.typed("skipped", skipped, "an object of whole numbers per reason");
        let reputation = r.take("reputation", &[]);
        let reputation = r.typed::<Reputation>(
            "reputation",
            reputation,
            "{\"valid\", \"invalid\", \"consecutive_valid\"} (whole numbers)",
        );
        r.ignore_rest();
        let problems = r.finish();
        if !problems.is_empty() {
            return Err(problems);
        }
        match (id, started_at, last_heartbeat, state) {
            (Some(id), Some(started_at), Some(last_heartbeat), Some(state)) => Ok(NodeRecord {
                id,
                hostname: hostname.unwrap_or_default(),
                version: version.unwrap_or_default(),
                labels: labels.unwrap_or_default(),
                slots: slots.unwrap_or_default(),
                cpus: cpus.unwrap_or_default(),
                memory: memory.unwrap_or_default(),
                docker_version: docker_version.unwrap_or_default(),
                started_at,
                last_heartbeat,
                state,
                heartbeat_interval: heartbeat_interval.unwrap_or_default(),
                lease: lease.unwrap_or_default(),
                clock_skew: clock_skew.unwrap_or_default(),
                running: running.unwrap_or_default(),
                completed: completed.unwrap_or_default(),
                failed: failed.unwrap_or_default(),
                session: session.unwrap_or_default(),
                problem: problem.unwrap_or_default(),
                skipped: skipped.unwrap_or_default(),
                reputation,
            }),
            _ => Err(vec![Problem::file(file, "is incomplete")]),
        }
    }
}

/// The machine's host name, reduced to the characters an id may hold.
pub fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "node".into());
    let cleaned: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    let cleaned = cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if cleaned.is_empty() {
        "node".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_wrong_types_are_named() {
        let record = NodeRecord {
            id: "n1".into(),
            hostname: "h".into(),
            version: "1".into(),
            labels: vec!["gpu".into()],
            slots: 2,
            cpus: 1.5,
            memory: 1 << 30,
            docker_version: None,
            started_at: "2025-10-16T10:00:00Z".into(),
            last_heartbeat: "2025-10-16T10:00:30Z".into(),
            state: NodeState::Running,
            heartbeat_interval: 30,
            lease: Some(90),
            clock_skew: None,
            running: vec!["t1".into()],
            completed: 3,
            failed: 0,
            session: "s".into(),
            problem: None,
            skipped: [("image".to_string(), 2)].into(),
            reputation: Some(Reputation {
                valid: 12,
                invalid: 1,
                consecutive_valid: 4,
            }),
        };
        assert_eq!(NodeRecord::parse(&record.to_json()), Some(record));
        let bad = br#"{"id":"n1","slots":"two","started_at":"x","last_heartbeat":"y","state":"running","future":1}"#;
        let problems =
            NodeRecord::from_object("nodes/n1.json", read_object("f", bad).unwrap()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field.as_deref(), Some("slots"));
        assert!(problems[0].message.contains("expected a whole number"));
        let bad = br#"{"id":"n1","slots":2,"started_at":"x","last_heartbeat":"y","state":"running","skipped":{"image":-1}}"#;
        let problems =
            NodeRecord::from_object("nodes/n1.json", read_object("f", bad).unwrap()).unwrap_err();
        assert_eq!(
            problems[0].field.as_deref(),
            Some("skipped"),
            "{problems:?}"
        );
        assert!(problems[0].message.contains("whole numbers per reason"));
    }
}

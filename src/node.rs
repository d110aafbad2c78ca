//! A node's record in `nodes/<node-id>.json`: who it is, what it can run, and its heartbeat.

use serde::{Deserialize, Serialize};

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
    /// node id shows up as another session; see `grid::ownership`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// What keeps the node from working, when something does (e.g. docker is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl NodeRecord {
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a node record always serializes");
        out.push(b'\n');
        out
    }

    pub fn parse(bytes: &[u8]) -> Option<NodeRecord> {
        serde_json::from_slice(bytes).ok()
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

//! The data types of the task contract, in the form they are written to the grid (see
//! `docs/ARCHITECTURE.md#formats`). Field order and names are the file format: do not reorder.

use super::ids::{Attempt, TaskId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DEFAULT_MAX_TIMEOUT: u64 = crate::settings::MAX_TIMEOUT.fixed();

/// What readers of a grid's files may be told (git config `dgrid.maxTimeout`, `dgrid.defaultImage`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_timeout: u64,
    /// The image of a task file that names none, as the Python implementation's files do.
    pub default_image: String,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_timeout: DEFAULT_MAX_TIMEOUT,
            default_image: crate::settings::DEFAULT_IMAGE.fixed().to_string(),
        }
    }
}

/// Where a task file that has no `created_at` or `submitted_by` (the Python implementation wrote
/// neither) gets them: the pure parser never looks at git, the reader says.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// Both are required (a task `submit` built, a result's copy of its task: git-dgrid writes them).
    Required,
    /// Validation of a file on its own, with no commit to ask: a missing one is fine, the grid
    /// fills it when it reads the file. The spec's missing values are left empty: never write it.
    Unchecked,
    /// Ask the commit that added the file (called at most once, only when a field is missing).
    Added(&'a dyn Fn() -> Result<AddedBy, String>),
}

/// When and by whom a file was added to the grid: the author of the commit that added it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedBy {
    /// RFC 3339, UTC.
    pub created_at: String,
    pub submitted_by: String,
}

/// What to run: a string for `sh -c` in the container, or an argv array run as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    None,
    Bridge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Docker's memory syntax: a number of bytes with an optional `b`, `k`, `m` or `g` suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Written by `claim` into a task in `tasks/in_progress/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub node_id: String,
    pub claimed_at: String,
    pub lease_expires_at: String,
    pub attempt: Attempt,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSpec {
    pub id: TaskId,
    pub image: String,
    pub command: TaskCommand,
    pub created_at: String,
    pub timeout: u64,
    pub submitted_by: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<TaskId>,
    /// Attempts already used (set when a task is put back in the queue after a lost lease);
    /// absent when none were. `next_attempt` turns it into the attempt a claim starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// Written by git-dgrid: each time a node could not start the task's container while its
    /// docker answered (an image that cannot be had, resources the daemon refuses). Bounded: the
    /// task fails as `unrunnable` after a few (see `grid::plan::start_failure`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub start_failures: Vec<StartFailure>,
    /// The submitter's SSH signature (`ssh-keygen -Y sign -n dgrid-task`, armored) over the
    /// canonical form of the submitter's fields (`trust::canonical`). Written by `submit --sign`
    /// and carried unchanged through every move, because tasks are always rewritten whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// How many nodes run the task (`1`-`9`, or `"adaptive"`); absent: one. See
    /// `docs/ARCHITECTURE.md#quorum` and `crate::quorum`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Replicas>,
    /// How many instances' digests must agree; absent: a majority of `replicas`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// How many instances may be issued in all, recruits after a disagreement included; absent:
    /// `replicas` + 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Written by git-dgrid for a replicated task in progress: one entry per instance issued
    /// (a replicated task has no `claim`; each entry is an instance's claim).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// Written by git-dgrid: how many instances the task wants now, when that is more than its
    /// `replicas` (recruits after a disagreement) or fewer (an adaptive task run alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances_wanted: Option<u32>,
    /// Secret values by name, each age ciphertext (armored) to the grid's recipients
    /// (`crate::secrets`): decrypted only in the memory of a node whose `--identity` opens them,
    /// given to the container as `/dgrid/secrets/NAME`. Signed like every submitter field.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Whether the secrets are also environment variables inside the container (set there, never
    /// on `docker run`'s command line).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secrets_env: bool,
}

/// The `replicas` field: a fixed count, or adaptive (a node with a record of valid results runs
/// the task alone, and is checked now and then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    Fixed(u32),
    Adaptive,
}

impl Serialize for Replicas {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Replicas::Fixed(n) => s.serialize_u32(*n),
            Replicas::Adaptive => s.serialize_str("adaptive"),
        }
    }
}

/// One instance of a replicated task: its claim (node, attempt, lease) and, once it ran, the
/// commitment to its digest and later the reveal (`crate::quorum`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Which instance, from 1; an instance re-issued after its node died keeps its number.
    pub instance: u32,
    /// 1 for the instances issued first; recruits after a round without agreement count on.
    pub round: u32,
    pub node_id: String,
    pub claimed_at: String,
    pub lease_expires_at: String,
    /// Attempts of this instance, counted per instance.
    pub attempt: Attempt,
    /// `quorum::commitment(node_id, salt, digest)`: lands when the instance finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
    /// Set on every committed instance of the round at once, when the round's last commitment
    /// lands: only sealed commitments are revealed and counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
    /// The reveal: the digest (`quorum::digest`) and the salt of the commitment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// What the instance's run was, once revealed (the full result stays with its node until
    /// the task settles: the settling node is an agreeing one and writes its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why this entry no longer counts (its node died; a reveal that does not match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

impl Instance {
    /// The entry as a single task's claim, for the code that renews and judges claims.
    pub fn as_claim(&self) -> Claim {
        Claim {
            node_id: self.node_id.clone(),
            claimed_at: self.claimed_at.clone(),
            lease_expires_at: self.lease_expires_at.clone(),
            attempt: self.attempt,
        }
    }
}

/// How a replicated task settled, in its result (`docs/ARCHITECTURE.md#quorum`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumOutcome {
    pub replicas: u32,
    /// The digest `quorum` instances agreed on; absent for `no_quorum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Node ids whose revealed digest is the agreed one, and those whose is not.
    pub agreeing: Vec<String>,
    pub dissenting: Vec<String>,
    /// Every counted instance's vote.
    pub votes: Vec<Vote>,
    /// An adaptive task run by one trusted node and not drawn for a check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchecked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    pub node_id: String,
    pub instance: u32,
    pub attempt: Attempt,
    pub digest: String,
}

/// One node's failed try at starting a task's container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartFailure {
    pub node_id: String,
    pub at: String,
    /// Docker's message.
    pub reason: String,
}

impl TaskSpec {
    pub fn priority(&self) -> i64 {
        self.priority.unwrap_or(0)
    }

    /// The attempt the next claim of this queued task starts.
    pub fn next_attempt(&self) -> Attempt {
        Attempt::after_used(self.attempts.unwrap_or(0))
    }

    /// Records `used` attempts as the queue file does: absent when none were used.
    pub fn set_attempts_used(&mut self, used: u32) {
        self.attempts = (used > 0).then_some(used);
    }

    /// The file's bytes: compact JSON, so a file git-dgrid rewrites (a claim, a requeue) never
    /// grows past the size limit the reader enforces, as pretty-printing (one argv item per line)
    /// would make it. `git dgrid show` prints tasks pretty.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a task spec always serializes");
        out.push(b'\n');
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
    Timeout,
    Cancelled,
    Lost,
    /// No node could start its container (see `TaskSpec::start_failures`).
    Unrunnable,
    /// A replicated task whose instances did not agree, with every instance issued.
    #[serde(rename = "no_quorum")]
    NoQuorum,
    /// A queued file that breaks the contract the same way on every node (`task::fails_everywhere`):
    /// it can never run, and its problems are the result's `stderr`.
    Invalid,
}

impl Status {
    pub const ALL: [(&'static str, Status); 8] = [
        ("success", Status::Success),
        ("failed", Status::Failed),
        ("timeout", Status::Timeout),
        ("cancelled", Status::Cancelled),
        ("lost", Status::Lost),
        ("unrunnable", Status::Unrunnable),
        ("no_quorum", Status::NoQuorum),
        ("invalid", Status::Invalid),
    ];

    /// The name used in result files (`"success"`, ...).
    pub fn name(self) -> &'static str {
        Status::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }
}

/// What was kept of one output stream, and what was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub total_bytes: u64,
    pub sha256: String,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    pub task_id: TaskId,
    /// The node that ran it; empty (null in the file) when none did: a task cancelled in the queue.
    #[serde(serialize_with = "null_if_empty")]
    pub node_id: String,
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub timestamp: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The attempt as the file gives it. Absent in the seed's results and in the result of a
    /// task cancelled before any attempt; kept absent so a rewritten file keeps its form. Read
    /// it through `attempt()`.
    #[serde(rename = "attempt", skip_serializing_if = "Option::is_none")]
    pub recorded_attempt: Option<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_info: Option<StreamInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_info: Option<StreamInfo>,
    /// The task as it was run, so a finished task keeps its spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// Results that arrived after this one from nodes whose claim had been taken over: kept as a
    /// record (never dropped, never a second file in completed/).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub late_results: Vec<LateResult>,
    /// Who signed the task, when the node that ran it checked signatures (`--allowed-signers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<SignedBy>,
    /// A replicated task's agreement (or its lack: `no_quorum`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<QuorumOutcome>,
}

/// Who signed a task, as the result records it (`trust::verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedBy {
    /// The principals of the allowed-signers line that holds the key, as written there.
    pub principal: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

fn null_if_empty<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    if text.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(text)
    }
}

impl TaskResult {
    /// Which attempt this result is of; a result that does not say counts as the first.
    pub fn attempt(&self) -> Attempt {
        self.recorded_attempt.unwrap_or(Attempt::FIRST)
    }

    /// The file's bytes: compact JSON, as for [`TaskSpec::to_json`].
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a result always serializes");
        out.push(b'\n');
        out
    }
}

/// A summary of a result that arrived after the task was already finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateResult {
    pub node_id: String,
    pub attempt: Attempt,
    pub status: Status,
    pub exit_code: Option<i64>,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_info: Option<StreamInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_info: Option<StreamInfo>,
}

//! Small shared rules of the plans: how many attempts a task has by default, what a task put back
//! in the queue looks like, when a claim lost with its node fails the task (and the result it
//! fails with), and the result of a queued file no node will run. The worker's transition
//! (`cycle`), the replicated transitions (`quorum`), the claim and the maintainer's commands all
//! follow them; they live here so that none of those imports another for them. `reap` is the
//! take-back rule: when another node's claim may be taken back, and what the taking back means for
//! this node's own claims.

pub(super) mod reap;

use crate::problem::Problem;
use crate::task::{Claim, Status, TaskId, TaskResult, TaskSpec};
use crate::time::rfc3339;
use chrono::{DateTime, Utc};

/// Attempts a task gets when its file does not say (`max_attempts`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The file of a task put back in the queue: no claim, and `used` attempts counted.
pub fn requeued(mut spec: TaskSpec, used: u32) -> Vec<u8> {
    spec.claim = None;
    spec.set_attempts_used(used);
    spec.to_json()
}

/// Whether `claim` (a plain task's, or a replicated task's entry as a claim) used the last attempt
/// `spec` allows: taken back from a dead node, it fails the task as lost ([`lost_result`]).
pub fn used_last_attempt(spec: &TaskSpec, claim: &Claim) -> bool {
    claim.attempt.used() >= spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

/// The result of a task whose every attempt was lost with its node.
pub fn lost_result(spec: &TaskSpec, claim: &Claim, now: DateTime<Utc>) -> TaskResult {
    let mut task = spec.clone();
    task.claim = None;
    TaskResult {
        task_id: spec.id.clone(),
        node_id: claim.node_id.clone(),
        exit_code: None,
        stdout: String::new(),
        stderr: format!(
            "lost: node {} stopped heartbeating during attempt {} of {}",
            claim.node_id,
            claim.attempt,
            spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
        ),
        timestamp: rfc3339(now),
        status: Status::Lost,
        started_at: Some(claim.claimed_at.clone()),
        finished_at: Some(rfc3339(now)),
        duration_ms: None,
        recorded_attempt: Some(claim.attempt),
        stdout_info: None,
        stderr_info: None,
        task: Some(task),
        late_results: Vec::new(),
        signed_by: None,
        quorum: None,
    }
}

/// The result of queued file `id` that breaks the contract on every node, written by `node`: its
/// problems, one a line, in `stderr` (what `logs` and `show` print). No `task` copy: the file
/// does not read as one; its history still has it.
pub fn invalid_result(
    id: &TaskId,
    node: &str,
    problems: &[Problem],
    now: DateTime<Utc>,
) -> TaskResult {
    let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
    TaskResult {
        task_id: id.clone(),
        node_id: node.to_string(),
        exit_code: None,
        stdout: String::new(),
        stderr: format!(
            "invalid: no node will run this task file:\n{}\n",
            said.join("\n")
        ),
        timestamp: rfc3339(now),
        status: Status::Invalid,
        started_at: None,
        finished_at: Some(rfc3339(now)),
        duration_ms: None,
        recorded_attempt: None,
        stdout_info: None,
        stderr_info: None,
        task: None,
        late_results: Vec::new(),
        signed_by: None,
        quorum: None,
    }
}

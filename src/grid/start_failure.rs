//! Tasks that no node can start: an image that exists nowhere (a typo), resources the daemon
//! refuses. A node whose docker answers but cannot start a task's container puts the task back
//! with a `start_failures` entry (node, time, docker's message). Once the failures come from
//! [`DISTINCT_NODES`] different nodes (or from every live node, when the grid has fewer) and number
//! at least [`MIN_FAILURES`], or number [`MAX_FAILURES`] whatever their nodes, the task fails with
//! status `unrunnable` and docker's message: without this bound it would go back to the queue at
//! attempt 0 forever and, with a high priority, starve every other task.

use crate::grid::snapshot::{self, Snapshot};
use crate::layout::State;
use crate::node::NodeState;
use crate::task::{StartFailure, Status, TaskResult, TaskSpec};
use crate::time::rfc3339;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Different nodes that must have failed to start a task before it is given up (fewer when the
/// grid has fewer live nodes).
pub const DISTINCT_NODES: usize = 3;
/// Failures a task is always allowed, so that one node's passing trouble on a one-node grid does
/// not fail it at once.
pub const MIN_FAILURES: usize = 3;
/// Failures after which a task is given up whatever nodes they came from (nodes that cannot
/// claim it, or are too few to reach [`DISTINCT_NODES`]).
pub const MAX_FAILURES: usize = 5;
/// The longest docker message kept per failure.
const MAX_REASON: usize = 2000;

/// Whether `failures` are enough to give the task up, with `live_nodes` nodes on the grid.
pub fn given_up(failures: &[StartFailure], live_nodes: usize) -> bool {
    let nodes: BTreeSet<&str> = failures.iter().map(|f| f.node_id.as_str()).collect();
    let needed = DISTINCT_NODES.min(live_nodes.max(1));
    failures.len() >= MAX_FAILURES || (nodes.len() >= needed && failures.len() >= MIN_FAILURES)
}

/// Where a task goes after `node` failed to start it (`reason`, docker's message), and its file:
/// back to the queue with the failure noted (`used` attempts, as before the claim), or to
/// `failed` as `unrunnable`.
pub fn after_failure(
    mut spec: TaskSpec,
    used: u32,
    node: &str,
    reason: &str,
    live_nodes: usize,
    now: DateTime<Utc>,
) -> (State, Vec<u8>) {
    let claim = spec.claim.take();
    spec.start_failures.push(StartFailure {
        node_id: node.to_string(),
        at: rfc3339(now),
        reason: bounded(reason),
    });
    if !given_up(&spec.start_failures, live_nodes) {
        spec.set_attempts_used(used);
        return (State::Queue, spec.to_json());
    }
    let nodes: BTreeSet<&str> = spec
        .start_failures
        .iter()
        .map(|f| f.node_id.as_str())
        .collect();
    let stderr = format!(
        "unrunnable: no node could start the container ({} tries on {} node(s): {}); docker said: {}",
        spec.start_failures.len(),
        nodes.len(),
        nodes.into_iter().collect::<Vec<_>>().join(", "),
        bounded(reason)
    );
    let started_at = claim.as_ref().map(|c| c.claimed_at.clone());
    let mut task = spec.clone();
    task.attempts = None;
    let result = TaskResult {
        task_id: spec.id.clone(),
        node_id: node.to_string(),
        exit_code: None,
        stdout: String::new(),
        stderr,
        timestamp: rfc3339(now),
        status: Status::Unrunnable,
        started_at,
        finished_at: Some(rfc3339(now)),
        duration_ms: None,
        recorded_attempt: claim.map(|c| c.attempt),
        stdout_info: None,
        stderr_info: None,
        task: Some(task),
        late_results: Vec::new(),
        signed_by: None,
        quorum: None,
    };
    (State::Failed, result.to_json())
}

/// Nodes whose record does not say they stopped (this one included): how many could still try.
/// A dead node that never said so counts too; [`MAX_FAILURES`] bounds that case.
pub fn live_nodes(repo: &gix::Repository, snapshot: &Snapshot) -> usize {
    snapshot
        .nodes
        .iter()
        .filter(|node| {
            snapshot::load_node(repo, node).is_none_or(|r| r.state != NodeState::Stopped)
        })
        .count()
        .max(1)
}

/// Docker's message on one line, at most [`MAX_REASON`] bytes.
fn bounded(reason: &str) -> String {
    let one_line = reason.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= MAX_REASON {
        return one_line;
    }
    let mut end = MAX_REASON;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &one_line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(nodes: &[&str]) -> Vec<StartFailure> {
        nodes
            .iter()
            .map(|n| StartFailure {
                node_id: n.to_string(),
                at: "2026-01-01T00:00:00Z".into(),
                reason: "no such image".into(),
            })
            .collect()
    }

    #[test]
    fn three_nodes_or_every_live_one_and_at_least_three_tries() {
        assert!(!given_up(&failures(&["a", "b"]), 5));
        assert!(given_up(&failures(&["a", "b", "c"]), 5));
        assert!(!given_up(&failures(&["a", "a", "b", "b"]), 5));
        // A one-node grid: three tries there.
        assert!(!given_up(&failures(&["a", "a"]), 1));
        assert!(given_up(&failures(&["a", "a", "a"]), 1));
        // Two live nodes: both, three tries in all.
        assert!(!given_up(&failures(&["a", "a", "a"]), 2));
        assert!(given_up(&failures(&["a", "b", "a"]), 2));
        // Whatever the nodes, five is the end.
        assert!(given_up(&failures(&["a"; 5]), 9));
        assert!(given_up(&failures(&["a", "b"]), 0) == given_up(&failures(&["a", "b"]), 1));
    }

    fn claimed(failures_so_far: &[&str]) -> TaskSpec {
        let mut spec = crate::task::parse_task(
            "t.json",
            br#"{"id":"t","image":"no/such:1","command":"true","created_at":"2026-01-01T00:00:00Z",
                "timeout":60,"submitted_by":"x","attempts":1,
                "claim":{"node_id":"a","claimed_at":"2026-01-01T00:00:00Z",
                         "lease_expires_at":"2026-01-01T00:15:00Z","attempt":2}}"#,
            &Default::default(),
            crate::task::Origin::Required,
        )
        .unwrap();
        spec.start_failures = failures(failures_so_far);
        spec
    }

    #[test]
    fn a_failure_goes_back_noted_without_an_attempt_until_the_task_is_given_up() {
        let now = Utc::now();
        let (state, file) = after_failure(claimed(&[]), 1, "a", "no such image", 3, now);
        assert_eq!(state, State::Queue);
        let back = crate::task::parse_task(
            "t.json",
            &file,
            &Default::default(),
            crate::task::Origin::Required,
        )
        .unwrap();
        assert_eq!((back.attempts, back.claim.is_none()), (Some(1), true));
        assert_eq!(back.start_failures.len(), 1);
        assert_eq!(back.start_failures[0].reason, "no such image");

        let (state, file) = after_failure(claimed(&["b", "c"]), 1, "a", "no\nsuch", 3, now);
        assert_eq!(state, State::Failed);
        let result = crate::task::parse_result("t.json", &file, &Default::default()).unwrap();
        assert_eq!(result.status, Status::Unrunnable);
        assert_eq!(result.exit_code, None);
        assert!(
            result.stderr.contains("3 tries on 3 node(s): a, b, c"),
            "{}",
            result.stderr
        );
        assert!(
            result.stderr.ends_with("docker said: no such"),
            "{}",
            result.stderr
        );
    }

    #[test]
    fn a_long_message_is_kept_on_one_bounded_line() {
        let long = format!("line one\nline two {}", "é".repeat(3000));
        let kept = bounded(&long);
        assert!(kept.starts_with("line one line two"));
        assert!(kept.len() <= MAX_REASON + "…".len());
    }
}

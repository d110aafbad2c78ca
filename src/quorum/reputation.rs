//! A node's reputation: how often its instances agreed with the quorum. Each settling transition
//! updates the voters' records (`settle`); the records are a cache, `recompute` rebuilds them
//! from the results' `quorum` objects, which are the authority.

use crate::node::Reputation;
use crate::task::{QuorumOutcome, TaskResult};
use std::collections::BTreeMap;

/// `rep` after one settled vote: a valid one counts on, an invalid one (dissenting, or a reveal
/// that did not match its commitment) resets the run of valid results.
pub fn apply(rep: Option<Reputation>, valid: bool) -> Reputation {
    let mut rep = rep.unwrap_or_default();
    if valid {
        rep.valid += 1;
        rep.consecutive_valid += 1;
    } else {
        rep.invalid += 1;
        rep.consecutive_valid = 0;
    }
    rep
}

/// The new reputation of every node that voted on a settled task: agreeing nodes valid,
/// dissenting ones invalid, starting from `current` (the node records of the snapshot). A
/// `no_quorum` outcome names nobody, so it changes nothing.
pub fn settle(
    outcome: &QuorumOutcome,
    current: impl Fn(&str) -> Option<Reputation>,
) -> BTreeMap<String, Reputation> {
    let mut updated: BTreeMap<String, Reputation> = BTreeMap::new();
    let votes = outcome
        .agreeing
        .iter()
        .map(|n| (n, true))
        .chain(outcome.dissenting.iter().map(|n| (n, false)));
    for (node, valid) in votes {
        let before = updated.get(node).copied().or_else(|| current(node));
        updated.insert(node.clone(), apply(before, valid));
    }
    updated
}

/// Every node's reputation as the results say: each result with a `quorum` object, in the order
/// the tasks finished (`finished_at`, else `timestamp`; ties by task id), applied with [`settle`].
pub fn recompute<'a>(
    results: impl Iterator<Item = &'a TaskResult>,
) -> BTreeMap<String, Reputation> {
    let mut settled: Vec<(&'a TaskResult, &'a QuorumOutcome)> = results
        .filter_map(|r| r.quorum.as_ref().map(|q| (r, q)))
        .collect();
    settled.sort_by_cached_key(|(r, _)| (finished(r), r.task_id.to_string()));
    let mut reps: BTreeMap<String, Reputation> = BTreeMap::new();
    for (_, outcome) in settled {
        let updated = settle(outcome, |n| reps.get(n).copied());
        reps.extend(updated);
    }
    reps
}

/// When a result was settled, as a time that sorts (an unreadable one sorts first).
fn finished(result: &TaskResult) -> Option<chrono::DateTime<chrono::Utc>> {
    let at = result.finished_at.as_deref().unwrap_or(&result.timestamp);
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Attempt, Status, TaskId, Vote};

    fn rep(valid: u64, invalid: u64, consecutive_valid: u64) -> Reputation {
        Reputation {
            valid,
            invalid,
            consecutive_valid,
        }
    }

    fn result(id: &str, finished: &str, agreeing: &[&str], dissenting: &[&str]) -> TaskResult {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let votes = agreeing
            .iter()
            .chain(dissenting)
            .enumerate()
            .map(|(i, n)| Vote {
                node_id: n.to_string(),
                instance: i as u32 + 1,
                attempt: Attempt::FIRST,
                digest: "0".repeat(64),
            })
            .collect();
        TaskResult {
            task_id: TaskId::parse(id).unwrap(),
            node_id: agreeing.first().unwrap_or(&"n").to_string(),
            exit_code: Some(0),
            stdout: String::new(),
            stderr: String::new(),
            timestamp: finished.into(),
            status: Status::Success,
            started_at: None,
            finished_at: Some(finished.into()),
            duration_ms: None,
            recorded_attempt: None,
            stdout_info: None,
            stderr_info: None,
            task: None,
            late_results: Vec::new(),
            signed_by: None,
            quorum: Some(QuorumOutcome {
                replicas: 3,
                digest: (!agreeing.is_empty()).then(|| "0".repeat(64)),
                agreeing: names(agreeing),
                dissenting: names(dissenting),
                votes,
                unchecked: false,
            }),
        }
    }

    #[test]
    fn a_vote_counts_on_or_resets_the_run() {
        assert_eq!(apply(None, true), rep(1, 0, 1));
        assert_eq!(apply(None, false), rep(0, 1, 0));
        assert_eq!(apply(Some(rep(12, 1, 9)), true), rep(13, 1, 10));
        assert_eq!(apply(Some(rep(12, 1, 9)), false), rep(12, 2, 0));
    }

    #[test]
    fn settling_updates_every_voter_from_its_record() {
        let r = result("t", "2026-12-03T10:00:00Z", &["a", "b"], &["liar"]);
        let known = |n: &str| (n == "a").then(|| rep(5, 0, 5));
        let updated = settle(r.quorum.as_ref().unwrap(), known);
        assert_eq!(updated["a"], rep(6, 0, 6));
        assert_eq!(updated["b"], rep(1, 0, 1));
        assert_eq!(updated["liar"], rep(0, 1, 0));
        assert_eq!(updated.len(), 3);
        let none = result("u", "2026-12-03T10:00:00Z", &[], &[]);
        assert!(settle(none.quorum.as_ref().unwrap(), known).is_empty());
    }

    #[test]
    fn recompute_applies_results_in_the_order_they_finished() {
        let mut plain = result("plain", "2026-12-03T09:00:00Z", &["a"], &[]);
        plain.quorum = None;
        let results = [
            // Listed out of order: the reset in the middle must come after the first two.
            result("t3", "2026-12-03T12:00:00Z", &["a", "liar"], &[]),
            result("t1", "2026-12-03T10:00:00Z", &["a", "b"], &["liar"]),
            plain,
            result("t2", "2026-12-03T11:00:00+01:00", &["a", "liar"], &["b"]),
        ];
        let reps = recompute(results.iter());
        // t2 (10:00 UTC, same instant as t1: by id after it), then t3.
        assert_eq!(reps["a"], rep(3, 0, 3));
        assert_eq!(reps["b"], rep(1, 1, 0));
        assert_eq!(reps["liar"], rep(2, 1, 2));
        assert_eq!(reps.len(), 3, "a result without a quorum names nobody");
        assert!(recompute([].iter()).is_empty());
    }
}

//! Adaptive replication (`"replicas": "adaptive"`, after BOINC's): a node with a run of valid
//! results runs a task alone, and is checked now and then, with a probability that falls as its
//! run grows. The draw must be one the node cannot foresee or steer: it is made from the task id
//! and a commit another node lands after the solo instance revealed (the grid picks it).

use super::{sha256_hex, TRUSTED_AFTER};
use crate::node::Reputation;
use crate::task::TaskResult;

/// Whether a node with this record may run an adaptive task alone.
pub fn solo_allowed(rep: Option<&Reputation>) -> bool {
    rep.is_some_and(|r| r.consecutive_valid >= TRUSTED_AFTER)
}

/// Whether a solo result gets a checking instance: with probability 1/`consecutive_valid`, from
/// the first 8 bytes of sha256(task id, commit id) read as a number. A node without a run of
/// valid results (`0`) is always checked.
pub fn check_drawn(task_id: &str, commit_hex: &str, consecutive_valid: u64) -> bool {
    if consecutive_valid == 0 {
        return true;
    }
    let hash = sha256_hex(format!("dgrid-check-v1\n{task_id}\n{commit_hex}\n").as_bytes());
    // 16 hex digits are 8 bytes; `sha256_hex` always gives 64.
    let draw = u64::from_str_radix(&hash[..16], 16).unwrap_or(0);
    draw.is_multiple_of(consecutive_valid)
}

/// The results `node` settled alone and unchecked: what goes back for a check once the node is
/// found dissenting (its run of valid results was not what it seemed).
pub fn unchecked_by<'a>(
    results: impl Iterator<Item = &'a TaskResult>,
    node: &str,
) -> Vec<&'a TaskResult> {
    results
        .filter(|r| {
            r.quorum
                .as_ref()
                .is_some_and(|q| q.unchecked && q.agreeing.iter().any(|n| n == node))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_runs_alone_after_ten_valid_results_in_a_row() {
        let rep = |consecutive_valid| Reputation {
            valid: 40,
            invalid: 3,
            consecutive_valid,
        };
        assert!(!solo_allowed(None));
        assert!(!solo_allowed(Some(&rep(0))));
        assert!(!solo_allowed(Some(&rep(TRUSTED_AFTER - 1))));
        assert!(solo_allowed(Some(&rep(TRUSTED_AFTER))));
        assert!(solo_allowed(Some(&rep(500))));
    }

    #[test]
    fn a_check_is_drawn_about_once_in_consecutive_valid() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        for cv in [1u64, 2, 10, 25] {
            let n = 20_000u64;
            let drawn = (0..n)
                .filter(|i| check_drawn(&format!("task-{i}"), commit, cv))
                .count() as f64;
            let expected = n as f64 / cv as f64;
            // Binomial: within 4 standard deviations (the ids are fixed, so is the count).
            let sd = (n as f64 * (1.0 / cv as f64) * (1.0 - 1.0 / cv as f64)).sqrt();
            assert!(
                (drawn - expected).abs() <= 4.0 * sd + 1.0,
                "cv {cv}: {drawn} drawn of {n}, expected about {expected}"
            );
        }
        assert!((0..100).all(|i| check_drawn(&format!("t{i}"), commit, 0)));
    }

    #[test]
    fn the_draw_depends_on_the_commit_and_the_task() {
        let commits: Vec<String> = (0..200)
            .map(|i| sha256_hex(format!("{i}").as_bytes()))
            .collect();
        let drawn: Vec<bool> = commits
            .iter()
            .map(|c| check_drawn("t", &c[..40], 10))
            .collect();
        assert!(drawn.iter().any(|d| *d) && drawn.iter().any(|d| !*d));
        assert_eq!(
            check_drawn("t", &commits[0][..40], 10),
            check_drawn("t", &commits[0][..40], 10),
            "the same inputs draw the same"
        );
    }

    #[test]
    fn unchecked_results_of_a_node_are_found_for_re_checks() {
        let result = |id: &str, node: &str, unchecked: bool| {
            let text = format!(
                r#"{{"task_id":"{id}","node_id":"{node}","exit_code":0,"stdout":"","stderr":"","timestamp":"2026-01-01T00:00:00Z","status":"success","quorum":{{"replicas":1,"digest":"{h}","agreeing":["{node}"],"dissenting":[],"votes":[],"unchecked":{unchecked}}}}}"#,
                h = "a".repeat(64)
            );
            crate::task::parse_result("r.json", text.as_bytes(), &Default::default()).unwrap()
        };
        let results = [
            result("t1", "n1", true),
            result("t2", "n1", false),
            result("t3", "n2", true),
            result("t4", "n1", true),
        ];
        let found: Vec<&str> = unchecked_by(results.iter(), "n1")
            .iter()
            .map(|r| r.task_id.as_str())
            .collect();
        assert_eq!(found, ["t1", "t4"]);
    }
}

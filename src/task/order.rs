//! The order in which claims take queued tasks: one rule for the grid, which claims in it, and for
//! the dashboard, which shows the queue in it. Highest priority first, then the oldest by the
//! instant `created_at` names (a time that does not read goes last), then by id.

use chrono::DateTime;
use std::cmp::Reverse;

/// The seconds since the epoch that `created_at` names; `i64::MAX` (last in line) when it does not
/// read as RFC 3339. Parsed, not compared as text: `+02:00` and `Z` times interleave.
pub fn created_seconds(created_at: &str) -> i64 {
    DateTime::parse_from_rfc3339(created_at).map_or(i64::MAX, |t| t.timestamp())
}

/// A queued task's place in claim order: the smaller key is claimed first.
pub fn claim_order(priority: i64, created_seconds: i64, id: &str) -> (Reverse<i64>, i64, &str) {
    (Reverse(priority), created_seconds, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_then_instant_then_id() {
        let a = claim_order(5, created_seconds("2026-01-02T00:00:00Z"), "z");
        let b = claim_order(1, created_seconds("2026-01-01T00:00:00Z"), "a");
        assert!(a < b, "a higher priority goes first");
        let early = claim_order(0, created_seconds("2026-01-01T01:00:00+02:00"), "b");
        let late = claim_order(0, created_seconds("2026-01-01T00:00:00Z"), "a");
        assert!(early < late, "times compare as instants, not as text");
        let unreadable = claim_order(0, created_seconds("yesterday"), "a");
        assert!(late < unreadable, "a time that does not read goes last");
        assert!(claim_order(0, 7, "a") < claim_order(0, 7, "b"));
    }
}

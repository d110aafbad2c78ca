//! A remote that says "slow down" (HTTP 429, GitHub's secondary rate limit, GitLab's throttle) is
//! not refusing the change: the same push a little later is accepted. So it is told apart from a
//! hook that declines on purpose, and answered with a growing wait instead of a stop.

use std::time::Duration;

/// The remote limited our rate: wait and try again. `retry_after` is the wait the remote asked
/// for, when its message named one.
#[derive(Debug)]
pub struct RateLimited {
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for RateLimited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RateLimited {}

/// Words of servers that limit the rate of git traffic, lowercase:
/// - git over HTTP when the server answers 429 ("The requested URL returned error: 429");
/// - GitHub: "You have exceeded a secondary rate limit. Please wait a few minutes before you try
///   again", "API rate limit exceeded for ...";
/// - GitLab (Rack::Attack and its push throttle): "429 Too Many Requests", "Retry later",
///   "Too many pushes", and its application limits' "This endpoint has been requested too many
///   times. Try again later.".
const SIGNS: [&str; 7] = [
    "requested too many times",
    "returned error: 429",
    "rate limit",
    "rate-limit",
    "too many requests",
    "too many pushes",
    "retry later",
];

/// Whether `text` (git's stderr, or a push's summary and the server's `remote:` lines) says the
/// remote is limiting our rate.
pub(crate) fn is_rate_limit(text: &str) -> bool {
    let lower = text.to_lowercase();
    SIGNS.iter().any(|s| lower.contains(s))
}

/// The longest wait a message may ask for that we obey as such; beyond it we ask again sooner.
const HINT_CAP: Duration = Duration::from_secs(15 * 60);

/// The wait a rate-limit message asks for, when it names a number: "Retry-After: 30",
/// "retry after 30 seconds", "try again in 2 minutes", "wait 10s". Vague words ("a few minutes")
/// are no hint: the growing backoff covers them.
pub(crate) fn retry_hint(text: &str) -> Option<Duration> {
    let lower = text.to_lowercase();
    for marker in ["retry-after:", "retry after", "try again in", "wait"] {
        for (at, _) in lower.match_indices(marker) {
            let rest = lower[at + marker.len()..].trim_start();
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Ok(n) = digits.parse::<u64>() else {
                continue;
            };
            let unit = rest[digits.len()..].trim_start();
            let secs = if unit.starts_with("min") {
                n.saturating_mul(60)
            } else if unit.starts_with('h') {
                n.saturating_mul(3600)
            } else {
                n
            };
            return Some(Duration::from_secs(secs).min(HINT_CAP));
        }
    }
    None
}

/// How long to wait before the `attempt`-th retry (1 = the first) of a rate-limited operation:
/// `base` doubling with every limit in a row up to `cap`, never less than the remote's own hint,
/// plus up to a tenth more at random so that limited workers do not all come back together.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, hint: Option<Duration>) -> Duration {
    let grown = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let wait = grown.max(hint.unwrap_or_default());
    let spread = (wait.as_millis() as u64 / 10).max(1);
    wait + Duration::from_millis(fastrand::u64(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_messages_of_real_servers() {
        for text in [
            "remote: You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "error: RPC failed; HTTP 429 curl 22 The requested URL returned error: 429\nfatal: expected flush after ref listing",
            "fatal: unable to access 'https://github.com/o/r.git/': The requested URL returned error: 429",
            "remote: API rate limit exceeded for user ID 1.",
            "remote: GitLab: 429 Too Many Requests",
            "remote: Retry later",
            "remote: GitLab: This endpoint has been requested too many times. Try again later.",
            "remote: Too many pushes to this project, try again in 60 seconds",
        ] {
            assert!(is_rate_limit(text), "{text}");
        }
        for text in [
            "remote: no tasks on Fridays",
            "fatal: unable to access 'https://h/g.git/': The requested URL returned error: 403",
            "ssh: connect to host h port 22: Connection refused",
            "[remote rejected] (pre-receive hook declined)",
        ] {
            assert!(!is_rate_limit(text), "{text}");
        }
    }

    #[test]
    fn hints_with_a_number_are_read_and_vague_ones_are_not() {
        let s = Duration::from_secs;
        assert_eq!(retry_hint("Retry-After: 30"), Some(s(30)));
        assert_eq!(retry_hint("please retry after 7 seconds"), Some(s(7)));
        assert_eq!(retry_hint("try again in 2 minutes"), Some(s(120)));
        assert_eq!(retry_hint("wait 10s"), Some(s(10)));
        assert_eq!(retry_hint("retry after 5 hours"), Some(HINT_CAP));
        assert_eq!(
            retry_hint("Please wait a few minutes before you try again."),
            None
        );
        assert_eq!(retry_hint("Retry later"), None);
    }

    #[test]
    fn backoff_grows_to_its_cap_and_never_undercuts_the_hint() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(60));
        let within = |d: Duration, low: u64| {
            d >= Duration::from_secs(low) && d <= Duration::from_millis(low * 1100 + 1)
        };
        assert!(within(backoff(1, base, cap, None), 1));
        assert!(within(backoff(3, base, cap, None), 4));
        assert!(within(backoff(40, base, cap, None), 60));
        assert!(within(
            backoff(1, base, cap, Some(Duration::from_secs(30))),
            30
        ));
        assert!(within(
            backoff(7, base, cap, Some(Duration::from_secs(2))),
            60
        ));
    }
}

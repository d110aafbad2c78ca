//! Time formats shared by every layer: the one way a time is written into grid files and logs, and
//! the short human form the dashboard and the worker's live lines print.

use chrono::{DateTime, SecondsFormat, Utc};

/// `2025-10-16T10:00:00Z`: whole seconds, always UTC, as every time in a grid file is written.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// "3m 12s", "2h 5m", "4d 1h": short and exact enough. Negative durations read "in ...".
pub fn human_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    let text = match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    };
    if secs < 0 {
        format!("in {text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = DateTime::parse_from_rfc3339("2025-10-16T10:00:00.123+02:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(rfc3339(t), "2025-10-16T08:00:00Z");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(192), "3m 12s");
        assert_eq!(human_duration(-7500), "in 2h 5m");
        assert_eq!(human_duration(90_000), "1d 1h");
    }
}

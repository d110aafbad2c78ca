//! `--max-tasks-per-hour N`: a sliding window of this worker's task starts over the last hour, on
//! its monotonic clock (wall clocks jump). Pure: the worker says when it starts a task and asks
//! how many more it may start (or claim) now. Claimed-ahead tasks count as started already: the
//! worker never claims beyond what the window will let it start.
//!
//! The window outlives the process: the worker notes the starts' wall-clock times in its state dir
//! (`state/hourly_note.rs`) and a new process takes them back in ([`Hourly::restore`]), so `work
//! --once` from cron and restarts respect the limit too. Across processes only the wall clock
//! exists; a start dated in the future (the clock went back) counts as a start now.

use chrono::{DateTime, Utc};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const HOUR: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Hourly {
    limit: usize,
    window: Duration,
    /// Starts within the window as of the last look, oldest first.
    starts: VecDeque<Instant>,
    /// Whether the log was told that the window is full (said once per full spell).
    said: bool,
}

impl Hourly {
    pub fn new(limit: u32) -> Hourly {
        Hourly::with_window(limit, HOUR)
    }

    /// A window of another length (tests).
    pub fn with_window(limit: u32, window: Duration) -> Hourly {
        Hourly {
            limit: limit as usize,
            window,
            starts: VecDeque::new(),
            said: false,
        }
    }

    /// Takes back the starts a previous process noted (wall-clock times), as of `now` (this
    /// process's monotonic clock) and `wall` (the wall clock at the same instant).
    pub fn restore(&mut self, noted: &[DateTime<Utc>], now: Instant, wall: DateTime<Utc>) {
        let mut ages: Vec<Duration> = noted
            .iter()
            .map(|at| (wall - *at).to_std().unwrap_or_default())
            .filter(|age| *age < self.window)
            .collect();
        ages.sort_by(|a, b| b.cmp(a)); // oldest first
        for age in ages {
            self.starts.push_back(now.checked_sub(age).unwrap_or(now));
        }
    }

    /// The starts in the window as wall-clock times, for the note (`now`, `wall`: as for
    /// [`restore`](Hourly::restore)).
    pub fn noted(&self, now: Instant, wall: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        self.starts
            .iter()
            .map(|t| {
                let age = now.saturating_duration_since(*t);
                wall - chrono::Duration::from_std(age).unwrap_or_default()
            })
            .collect()
    }

    /// Forgets the starts that are out of the window at `now`.
    pub fn prune(&mut self, now: Instant) {
        while let Some(first) = self.starts.front() {
            if now.saturating_duration_since(*first) >= self.window {
                self.starts.pop_front();
            } else {
                break;
            }
        }
    }

    /// A task started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.prune(now);
        self.starts.push_back(now);
    }

    /// Starts the window still allows, `reserved` (claimed, not started yet) taken off, as of the
    /// last prune.
    pub fn room(&self, reserved: usize) -> usize {
        self.limit
            .saturating_sub(self.starts.len())
            .saturating_sub(reserved)
    }

    /// How long from `now` until the oldest start leaves the window (`None`: the window is empty).
    pub fn next_room_in(&self, now: Instant) -> Option<Duration> {
        self.starts.front().map(|first| {
            self.window
                .saturating_sub(now.saturating_duration_since(*first))
        })
    }

    /// Prunes at `now`; returns the log line, once per spell, when the window is full
    /// (`wall`: the wall clock now, to say when the next start may come).
    pub fn notice(&mut self, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        self.prune(now);
        if self.starts.len() < self.limit {
            self.said = false;
            return None;
        }
        if self.said {
            return None;
        }
        self.said = true;
        let wait = self.next_room_in(now).unwrap_or_default();
        let at = wall + chrono::Duration::from_std(wait).unwrap_or_default();
        Some(format!(
            "rate limit: {} tasks in the last hour (--max-tasks-per-hour {}), next start at ~{} UTC; claiming nothing until then",
            self.starts.len(),
            self.limit,
            at.format("%H:%M")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides_with_each_start() {
        let t0 = Instant::now();
        let mut h = Hourly::new(3);
        assert_eq!(h.room(0), 3);
        h.started(t0);
        h.started(t0 + Duration::from_secs(600));
        assert_eq!(h.room(0), 1);
        assert_eq!(h.room(1), 0, "a task claimed ahead takes the last place");
        h.started(t0 + Duration::from_secs(1200));
        assert_eq!(h.room(0), 0);
        assert_eq!(
            h.next_room_in(t0 + Duration::from_secs(1200)),
            Some(Duration::from_secs(2400))
        );
        // Just before the hour of the first start: still full.
        h.prune(t0 + Duration::from_secs(3599));
        assert_eq!(h.room(0), 0);
        // The first start leaves the window; the others stay (a sliding, not a fixed, window).
        h.prune(t0 + HOUR);
        assert_eq!(h.room(0), 1);
        h.prune(t0 + HOUR + Duration::from_secs(600));
        assert_eq!(h.room(0), 2);
        h.prune(t0 + 2 * HOUR);
        assert_eq!(h.room(0), 3);
        assert_eq!(h.next_room_in(t0 + 2 * HOUR), None);
    }

    #[test]
    fn a_full_window_is_said_once_per_spell() {
        let t0 = Instant::now();
        let wall = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut h = Hourly::new(2);
        assert_eq!(h.notice(t0, wall), None);
        h.started(t0);
        h.started(t0 + Duration::from_secs(60));
        let line = h.notice(t0 + Duration::from_secs(60), wall).unwrap();
        assert!(
            line.contains("rate limit: 2 tasks in the last hour"),
            "{line}"
        );
        // The first start leaves the window 59 minutes from now.
        assert!(line.contains("next start at ~10:59 UTC"), "{line}");
        assert_eq!(h.notice(t0 + Duration::from_secs(120), wall), None, "once");
        // Room again, then full again: said again.
        assert_eq!(h.notice(t0 + HOUR, wall), None);
        h.started(t0 + HOUR);
        assert!(h.notice(t0 + HOUR, wall).is_some());
    }

    /// The window of one process is the next one's (a restart, `work --once`
    /// from cron), by the wall-clock times noted.
    #[test]
    fn the_window_carries_over_to_the_next_process() {
        let t0 = Instant::now();
        let wall = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut first = Hourly::new(2);
        first.started(t0);
        first.started(t0 + Duration::from_secs(600));
        let noted = first.noted(t0 + Duration::from_secs(600), wall);
        // Started again 20 minutes later, on a new monotonic clock.
        let t1 = Instant::now() + Duration::from_secs(7200);
        let later = wall + chrono::Duration::minutes(20);
        let mut second = Hourly::new(2);
        second.restore(&noted, t1, later);
        assert_eq!(second.room(0), 0, "both starts are in the last hour");
        assert_eq!(
            second.next_room_in(t1),
            Some(Duration::from_secs(3600 - 1800)),
            "the oldest, 30 minutes ago, leaves in 30"
        );
        // Started after the hour: the old starts are gone; one dated in the future counts now.
        let mut third = Hourly::new(2);
        let future = [later + chrono::Duration::minutes(5)];
        third.restore(&noted, t1, later + chrono::Duration::hours(2));
        third.restore(&future, t1, later);
        assert_eq!(third.room(0), 1);
    }

    #[test]
    fn a_limit_of_zero_starts_nothing() {
        let h = Hourly::new(0);
        assert_eq!(h.room(0), 0);
    }
}

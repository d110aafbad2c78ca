//! What the worker was asked to run (`--slots`, `--max-tasks`, `--once`, `--until-empty`,
//! `--max-tasks-per-hour`) and how far through it it is: how many tasks to claim now, and when to
//! stop. `--until-empty` ends when nothing queued is runnable *by this worker*: the claim's
//! eligibility (`grid::plan::claim`), which leaves out what the admission gate refuses, says so.

use super::hourly::Hourly;
use crate::worker::Config;
use chrono::{DateTime, Utc};
use std::time::Instant;

pub struct Budget {
    slots: usize,
    once: bool,
    max_tasks: Option<u64>,
    until_empty: bool,
    /// Tasks started by this process.
    started: u64,
    /// Whether a claim this process asked for got anything.
    claimed_any: bool,
    /// `--max-tasks-per-hour`.
    hourly: Option<Hourly>,
}

impl Budget {
    pub fn new(cfg: &Config) -> Budget {
        Budget {
            slots: cfg.slots,
            once: cfg.once,
            max_tasks: cfg.max_tasks,
            until_empty: cfg.until_empty,
            started: 0,
            claimed_any: false,
            hourly: cfg.max_tasks_per_hour.map(Hourly::new),
        }
    }

    /// Brings the hourly window up to `now`; the log line to say, once, when it is full.
    pub fn tick(&mut self, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        self.hourly.as_mut().and_then(|h| h.notice(now, wall))
    }

    /// Takes back the hourly window's starts noted by a previous process (see
    /// [`Hourly::restore`]).
    pub fn restore_hourly(&mut self, noted: &[DateTime<Utc>], now: Instant, wall: DateTime<Utc>) {
        if let Some(hourly) = self.hourly.as_mut() {
            hourly.restore(noted, now, wall);
        }
    }

    /// The hourly window's starts as wall-clock times, for the state dir (`None`: no window).
    pub fn hourly_noted(&self, now: Instant, wall: DateTime<Utc>) -> Option<Vec<DateTime<Utc>>> {
        self.hourly.as_ref().map(|h| h.noted(now, wall))
    }

    /// A claim asked for got tasks.
    pub fn claimed(&mut self) {
        self.claimed_any = true;
    }

    /// A claimed task started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.started += 1;
        if let Some(hourly) = self.hourly.as_mut() {
            hourly.started(now);
        }
    }

    pub fn tasks_started(&self) -> u64 {
        self.started
    }

    /// `--once` ended without claiming anything.
    pub fn found_nothing(&self) -> bool {
        self.once && !self.claimed_any
    }

    /// How many more tasks to claim now, with `containers` running and `waiting` claimed ahead
    /// (not started yet): free slots, within `--max-tasks`, `--once` and the hourly window.
    pub fn claimable(&self, containers: usize, waiting: usize) -> usize {
        let mut free = self.slots.saturating_sub(containers + waiting);
        if self.once && self.claimed_any {
            return 0;
        }
        if let Some(hourly) = &self.hourly {
            free = free.min(hourly.room(waiting));
        }
        match self.max_tasks {
            Some(_) => free.min(self.left(waiting)),
            None => free,
        }
    }

    /// How many of `ahead` tasks may be claimed ahead of the free slots: none with `--once`
    /// (one batch, the slots), within `--max-tasks` and the hourly window.
    pub fn claimable_ahead(&self, containers: usize, waiting: usize, ahead: usize) -> usize {
        if self.once {
            return 0;
        }
        let free = self.claimable(containers, waiting);
        let ahead = match &self.hourly {
            Some(hourly) => ahead.min(hourly.room(waiting).saturating_sub(free)),
            None => ahead,
        };
        match self.max_tasks {
            Some(_) => ahead.min(self.left(waiting).saturating_sub(free)),
            None => ahead,
        }
    }

    /// Tasks `--max-tasks` still allows, beyond those started and `waiting`.
    fn left(&self, waiting: usize) -> usize {
        let max = self.max_tasks.unwrap_or(u64::MAX);
        (max.saturating_sub(self.started) as usize).saturating_sub(waiting)
    }

    /// Whether an idle worker is done: it ran what it was asked to, or (with `--until-empty` or
    /// `--once`) the queue holds nothing it may claim.
    pub fn spent(&self, queue_has_work: bool) -> bool {
        let budget_spent =
            self.max_tasks.is_some_and(|m| self.started >= m) || (self.once && self.claimed_any);
        let nothing_left = (self.until_empty || self.once) && !queue_has_work;
        // `--once` (cron) with the hourly window full ends at once: it would only hold the state
        // dir's lock until the window frees, and the next run would find the node busy.
        let window_full = self.once && self.hourly.as_ref().is_some_and(|h| h.room(0) == 0);
        budget_spent || nothing_left || window_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(slots: usize, once: bool, max_tasks: Option<u64>, until_empty: bool) -> Budget {
        Budget {
            slots,
            once,
            max_tasks,
            until_empty,
            started: 0,
            claimed_any: false,
            hourly: None,
        }
    }

    #[test]
    fn claims_fill_the_free_slots() {
        let b = budget(4, false, None, false);
        assert_eq!(b.claimable(0, 0), 4);
        assert_eq!(b.claimable(3, 0), 1);
        assert_eq!(b.claimable(5, 0), 0);
        assert!(
            !b.spent(false),
            "a plain worker runs on with an empty queue"
        );
    }

    #[test]
    fn max_tasks_caps_the_claims_and_ends_the_worker() {
        let mut b = budget(4, false, Some(5), false);
        for _ in 0..3 {
            b.started(Instant::now());
        }
        assert_eq!(b.claimable(0, 0), 2);
        assert!(!b.spent(true));
        b.started(Instant::now());
        b.started(Instant::now());
        assert_eq!(b.claimable(0, 0), 0);
        assert!(b.spent(true));
        assert_eq!(b.tasks_started(), 5);
    }

    #[test]
    fn once_claims_one_batch_then_ends() {
        let mut b = budget(2, true, None, false);
        assert!(b.found_nothing());
        assert!(!b.spent(true));
        assert!(b.spent(false), "nothing to claim: done");
        b.claimed();
        assert_eq!(b.claimable(0, 0), 0);
        assert!(b.spent(true));
        assert!(!b.found_nothing());
    }

    #[test]
    fn claims_ahead_stay_within_max_tasks_and_not_with_once() {
        let mut b = budget(2, false, Some(10), false);
        b.started(Instant::now());
        b.started(Instant::now());
        assert_eq!(b.claimable(2, 0), 0);
        assert_eq!(b.claimable_ahead(2, 0, 20), 8);
        assert_eq!(b.claimable_ahead(2, 5, 20), 3, "the waiting ones count");
        assert_eq!(b.claimable(0, 7), 0, "the waiting ones take the slots");
        assert_eq!(b.claimable(1, 0), 1);
        assert_eq!(b.claimable_ahead(1, 0, 20), 7);
        let unbounded = budget(2, false, None, false);
        assert_eq!(unbounded.claimable_ahead(2, 3, 20), 20);
        assert_eq!(budget(2, true, None, false).claimable_ahead(0, 0, 20), 0);
    }

    #[test]
    fn the_hourly_window_caps_claims_and_claims_ahead() {
        let t0 = Instant::now();
        let mut b = budget(2, false, None, false);
        b.hourly = Some(Hourly::new(3));
        assert_eq!(b.claimable(0, 0), 2);
        assert_eq!(
            b.claimable_ahead(0, 0, 10),
            1,
            "3 in the hour: 2 now, 1 ahead"
        );
        b.started(t0);
        b.started(t0);
        assert_eq!(b.claimable(2, 0), 0);
        assert_eq!(b.claimable_ahead(2, 0, 10), 1);
        assert_eq!(
            b.claimable_ahead(2, 1, 10),
            0,
            "the one waiting takes the last place"
        );
        assert_eq!(b.claimable(1, 1), 0, "the waiting one is counted");
        b.started(t0);
        assert_eq!(b.claimable(0, 0), 0, "the slots are free, the hour is not");
        assert_eq!(b.claimable_ahead(0, 0, 10), 0);
        assert!(
            !b.spent(true),
            "a full hour waits, it does not end the worker"
        );
        let wall = Utc::now();
        assert!(b.tick(t0, wall).is_some());
        assert!(b.tick(t0, wall).is_none());
        assert!(b.tick(t0 + super::super::hourly::HOUR, wall).is_none());
        assert_eq!(b.claimable(0, 0), 2);
    }

    #[test]
    fn until_empty_ends_when_nothing_is_claimable() {
        let b = budget(1, false, None, true);
        assert!(!b.spent(true));
        assert!(b.spent(false));
        assert!(!b.found_nothing());
    }
}

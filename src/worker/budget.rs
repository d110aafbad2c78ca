//! What the worker was asked to run (`--slots`, `--max-tasks`, `--once`, `--until-empty`) and how
//! far through it it is: how many tasks to claim now, and when to stop.

use crate::worker::Config;

pub struct Budget {
    slots: usize,
    once: bool,
    max_tasks: Option<u64>,
    until_empty: bool,
    /// Tasks started by this process.
    started: u64,
    /// Whether a claim this process asked for got anything.
    claimed_any: bool,
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
        }
    }

    /// A claim asked for got tasks.
    pub fn claimed(&mut self) {
        self.claimed_any = true;
    }

    /// A claimed task started.
    pub fn started(&mut self) {
        self.started += 1;
    }

    pub fn tasks_started(&self) -> u64 {
        self.started
    }

    /// `--once` ended without claiming anything.
    pub fn found_nothing(&self) -> bool {
        self.once && !self.claimed_any
    }

    /// How many more tasks to claim now, with `containers` running and `waiting` claimed ahead
    /// (not started yet): free slots, within `--max-tasks` and `--once`.
    pub fn claimable(&self, containers: usize, waiting: usize) -> usize {
        let free = self.slots.saturating_sub(containers + waiting);
        if self.once && self.claimed_any {
            return 0;
        }
        match self.max_tasks {
            Some(_) => free.min(self.left(waiting)),
            None => free,
        }
    }

    /// How many of `ahead` tasks may be claimed ahead of the free slots: none with `--once`
    /// (one batch, the slots), within `--max-tasks`.
    pub fn claimable_ahead(&self, containers: usize, waiting: usize, ahead: usize) -> usize {
        if self.once {
            return 0;
        }
        let free = self.claimable(containers, waiting);
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
        budget_spent || nothing_left
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
            b.started();
        }
        assert_eq!(b.claimable(0, 0), 2);
        assert!(!b.spent(true));
        b.started();
        b.started();
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
        b.started();
        b.started();
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
    fn until_empty_ends_when_nothing_is_claimable() {
        let b = budget(1, false, None, true);
        assert!(!b.spent(true));
        assert!(b.spent(false));
        assert!(!b.found_nothing());
    }
}

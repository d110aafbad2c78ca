//! The worker under a push budget (`docs/ARCHITECTURE.md#push-economy`): what it sees land on
//! `main` goes to its [`Pacing`](crate::worker::policy::Pacing); a push waits for its turn unless it
//! cannot wait; one push claims ahead enough work to keep the slots busy until the next.

use super::Remote;
use crate::grid::{landed_since, stopped_nodes, Snapshot};
use crate::layout::NODES_DIR;
use crate::worker::held::HeldTasks;
use crate::worker::Worker;
use anyhow::{bail, Result};
use gix::ObjectId;
use std::time::{Duration, Instant};

/// A push waits for its turn after a fresh look at the remote (an `ls-remote`): pushes that
/// landed since the last look count before this one is decided.
const FRESH_LOOK: Duration = Duration::from_secs(1);
/// Leases must outlast this many of the shortest push spacings.
pub const LEASE_SPACINGS: u32 = 4;

impl Worker {
    /// At start, before the first push: the writers of the grid's latest commits (nodes that have
    /// not stopped) are taken as active, and a newcomer to a busy grid waits its turn.
    pub(in crate::worker) fn join_grid(&mut self) -> Result<()> {
        let tip = self.grid.tip()?;
        self.remote.view.tip_seen(tip);
        let Some(pacing) = self.remote.pacing.as_mut() else {
            return Ok(());
        };
        let Some(tip) = tip else {
            return Ok(());
        };
        let recent = landed_since(
            &self.grid.repo,
            tip,
            None,
            2 * pacing.per_minute() as usize + 2,
        )?;
        let nodes = Snapshot::read_dirs(&self.grid.repo, Some(tip), &[NODES_DIR])?;
        let stopped = stopped_nodes(&self.grid.repo, &nodes);
        // Only nodes' own transitions name writers: an author's name alone costs nothing.
        let mut others: Vec<String> = recent
            .into_iter()
            .filter(|l| l.transition)
            .filter_map(|l| l.node)
            .filter(|n| *n != self.cfg.node_id && !stopped.contains(n))
            .collect();
        others.sort();
        others.dedup();
        pacing.joined(self.clock.instant(), &others);
        let at = self.clock.instant();
        let wait = pacing.earliest_push(at).saturating_duration_since(at);
        if !wait.is_zero() {
            let why = if others.is_empty() {
                "no other writer seen yet (others may be starting now)".to_string()
            } else {
                format!("{} other writer(s) pushed lately", others.len())
            };
            self.log(&format!(
                "{why}: waiting {:.1}s for this node's turn to push",
                wait.as_secs_f64()
            ));
        }
        Ok(())
    }

    /// Takes in the commits that landed between `since` and `tip`: each is a push seen now,
    /// by its writer; `own` is this worker's own commit (counted by the caller).
    pub(super) fn saw_landed(
        &mut self,
        tip: Option<ObjectId>,
        own: Option<ObjectId>,
        since: Option<ObjectId>,
    ) {
        self.remote.view.tip_seen(tip);
        let (Some(pacing), Some(tip)) = (self.remote.pacing.as_mut(), tip) else {
            return;
        };
        let max = 4 * pacing.per_minute() as usize + 16;
        let landed = match landed_since(&self.grid.repo, tip, since, max) {
            Ok(landed) => landed,
            Err(e) => {
                self.cfg.log.debug(
                    &self.cfg.node_id,
                    &format!("cannot read the commits that landed: {e:#}"),
                );
                return;
            }
        };
        let at = self.clock.instant();
        let mut nodes_seen = false;
        for l in landed.iter().rev() {
            if Some(l.commit) == own {
                continue;
            }
            // A commit of this node not pushed just now (an earlier run, an unanswered push)
            // filled the window all the same.
            // A commit that is not a node's own transition names no writer (it fills the window).
            let writer = l
                .node
                .as_deref()
                .filter(|n| l.transition && *n != self.cfg.node_id);
            nodes_seen |= writer.is_some();
            pacing.saw_push(at, writer);
        }
        if nodes_seen {
            if let Ok(nodes) = Snapshot::read_dirs(&self.grid.repo, Some(tip), &[NODES_DIR]) {
                for node in stopped_nodes(&self.grid.repo, &nodes) {
                    pacing.writer_left(&node);
                }
            }
        }
    }

    /// Whether a push wanted now may go: always without a budget; with one, when it cannot wait
    /// (see [`must_push_now`](Worker::must_push_now)) or when its turn has come, judged after a
    /// fresh look at the remote (which this call may take: then it says no, and the loop asks
    /// again with what the look found).
    pub(in crate::worker) fn may_push_now(&mut self, stopping: bool) -> Result<bool> {
        let Some(pacing) = self.remote.pacing.as_ref() else {
            return Ok(true);
        };
        let at = self.clock.instant();
        if self.must_push_now(stopping) {
            return Ok(true);
        }
        if !pacing.may_push(at) {
            return Ok(false);
        }
        if self.remote.looked_just_now(at) {
            return Ok(true);
        }
        self.poll()?;
        Ok(false)
    }

    /// The pushes that cannot wait for their turn (they count against the budget all the same):
    /// a shutdown, a task of ours cancelled or taken over, leases that would run out.
    fn must_push_now(&self, stopping: bool) -> bool {
        stopping
            || self.remote.view.claim_gone()
            || self.remote.lease_renewal_due(
                self.clock.instant(),
                self.held.tasks(),
                self.cfg.lease,
            )
    }

    /// How long the loop may wait before a wanted push is due (`None`: no budget, or nothing
    /// to wait for).
    pub(in crate::worker) fn time_to_turn(&self) -> Option<Duration> {
        self.remote
            .time_to_turn(self.clock.instant(), self.held.tasks(), self.cfg.lease)
    }

    /// Waits (with a budget) until this worker may push, looking at the remote meanwhile; a stop
    /// request ends the wait at once.
    pub(in crate::worker) fn wait_for_turn(&mut self) {
        let requests = self.shutdown.requests.count();
        loop {
            if self.shutdown.requests.count() != requests {
                return;
            }
            match self.may_push_now(requests > 0) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    self.warn(&format!("{e:#}"));
                    return;
                }
            }
            let until = Instant::now()
                + self
                    .time_to_turn()
                    .unwrap_or_default()
                    .min(self.cfg.poll_interval);
            while Instant::now() < until && self.shutdown.requests.count() == requests {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// How many tasks to claim ahead of the free slots (0 without a budget): enough to keep the
    /// slots busy until the next push, by the durations seen here, within `--prefetch` and
    /// `--max-tasks`, minus those already waiting. The tail split is applied against the queue.
    pub(in crate::worker) fn claims_ahead(&self) -> usize {
        let Some(pacing) = self.remote.pacing.as_ref() else {
            return 0;
        };
        let wanted = pacing
            .ahead(self.cfg.slots, self.clock.instant())
            .min(self.cfg.prefetch);
        let ahead = wanted.saturating_sub(self.held.tasks().waiting());
        self.budget.claimable_ahead(
            self.held.tasks().containers(),
            self.held.tasks().waiting(),
            ahead,
        )
    }
}

impl Remote {
    /// Whether this worker looked at the remote within the last second before `now` (only under
    /// a push budget, where a paced push looks first).
    pub(in crate::worker) fn looked_just_now(&self, now: Instant) -> bool {
        self.pacing.is_some()
            && self
                .view
                .looked_at()
                .is_some_and(|t| now.saturating_duration_since(t) < FRESH_LOOK)
    }

    /// Whether the claims of `held` tasks are past a third of their lease since the last push.
    /// A finished result waiting for its turn counts: its task is still in progress under this
    /// node's claim until the push that records it, and a turn can be longer than a lease.
    fn lease_renewal_due(&self, now: Instant, held: &HeldTasks, lease: Duration) -> bool {
        held.keeps_claims()
            && self
                .last_push
                .is_some_and(|t| now.saturating_duration_since(t) >= lease / 3)
    }

    /// How long from `now` until a wanted push is due (`None`: no budget); the claims of `held`
    /// tasks are renewed a third of a lease after the last push.
    fn time_to_turn(&self, now: Instant, held: &HeldTasks, lease: Duration) -> Option<Duration> {
        let pacing = self.pacing.as_ref()?;
        let mut due = pacing.earliest_push(now);
        if held.keeps_claims() {
            if let Some(last) = self.last_push {
                due = due.min(last + lease / 3);
            }
        }
        Some(
            due.saturating_duration_since(now)
                .max(Duration::from_millis(50)),
        )
    }

    /// The remote answered with a rate-limit error (`remote_trouble`): this worker's pushes are
    /// spaced further apart. Returns the line to warn with (`None`: no budget).
    pub(super) fn rate_limited(&mut self, now: Instant) -> Option<String> {
        let pacing = self.pacing.as_mut()?;
        pacing.rate_limited(now);
        let spacing = pacing.spacing(now);
        Some(format!(
            "the remote is rate limiting pushes: pushing at most every {}s",
            spacing.as_secs()
        ))
    }

    /// The line to warn with, once per spell, when commits that are not workers' transitions
    /// fill their part of the push window (`None`: no budget, or they do not).
    pub(in crate::worker) fn foreign_warning(&mut self, now: Instant) -> Option<String> {
        self.pacing.as_mut()?.foreign_notice(now)
    }

    /// The line to warn with, once, when this grid's writers make the push spacing too long for
    /// the `lease`.
    pub(in crate::worker) fn spacing_warning(
        &mut self,
        now: Instant,
        lease: Duration,
    ) -> Option<String> {
        let pacing = self.pacing.as_ref()?;
        let spacing = pacing.spacing(now);
        let too_long = spacing > lease / 3;
        let warning = (too_long && !self.spacing_warned).then(|| {
            format!(
                "with {} writer(s) at --push-budget {}, pushes are {}s apart, more than a third of the {}s lease: leases are renewed out of turn; raise --lease or the budget",
                pacing.active_writers(now),
                pacing.per_minute(),
                spacing.as_secs(),
                lease.as_secs()
            )
        });
        self.spacing_warned = too_long;
        warning
    }
}

/// Refuses a lease too short for the push budget: claimed tasks (and claimed-ahead ones above
/// all) must keep their leases across several push spacings.
pub fn check_lease(lease: Duration, per_minute: u32) -> Result<()> {
    if per_minute == 0 {
        return Ok(());
    }
    let spacing = Duration::from_secs(60) / per_minute;
    let least = spacing * LEASE_SPACINGS;
    if lease < least {
        bail!(
            "--lease {}s is too short for --push-budget {per_minute}: a lone writer pushes every {}s, and a lease must last at least {LEASE_SPACINGS} of those ({}s)",
            lease.as_secs(),
            spacing.as_secs(),
            least.as_secs()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{parse_result, Limits};
    use crate::worker::policy::clock::SystemClock;
    use crate::worker::policy::{Observer, Pacing};
    use crate::worker::remote::view::RemoteView;
    use std::sync::Arc;

    fn remote(budget: u32, last_push: Instant) -> Remote {
        Remote {
            view: RemoteView::new(),
            last_push: Some(last_push),
            failures: 0,
            reads: 0,
            pushes: 1,
            pacing: Pacing::new(budget, 7),
            spacing_warned: false,
            observer: Observer::new(
                Duration::from_secs(60),
                Duration::from_secs(60),
                Arc::new(SystemClock),
            ),
        }
    }

    fn finished_only() -> HeldTasks {
        let json = r#"{"task_id": "t1", "node_id": "w1", "exit_code": 0, "stdout": "hi", "stderr": "",
            "timestamp": "2026-01-01T00:00:02Z", "status": "success"}"#;
        let result = parse_result("t1.json", json.as_bytes(), &Limits::default()).unwrap();
        let mut held = HeldTasks::default();
        held.finished(result);
        held
    }

    /// A worker holding only a finished result, its turn far off (many writers),
    /// pushes out of turn a third of a lease after its last push: the task stays in progress
    /// under its claim until then, and other nodes would rightly take it back once the lease ran out.
    #[test]
    fn a_finished_result_waiting_for_its_turn_keeps_its_claim_alive() {
        let start = Instant::now();
        let lease = Duration::from_secs(120);
        let mut remote = remote(6, start);
        let pacing = remote.pacing.as_mut().unwrap();
        pacing.pushed(start);
        let others: Vec<String> = (0..5).map(|i| format!("w{i}")).collect();
        for other in &others {
            pacing.saw_push(start, Some(other));
        }
        let held = finished_only();
        let later = start + lease / 3 + Duration::from_secs(1);
        assert!(
            !remote.pacing.as_ref().unwrap().may_push(later),
            "the turn is a minute away: six writers at 6 pushes a minute"
        );
        assert!(
            remote.lease_renewal_due(later, &held, lease),
            "a held result must go out of turn before its claim's lease runs out"
        );
        let wait = remote.time_to_turn(start, &held, lease).unwrap();
        assert!(
            wait <= lease / 3,
            "the loop wakes for the renewal: {wait:?}"
        );
        assert!(!remote.lease_renewal_due(later, &HeldTasks::default(), lease));
    }
}

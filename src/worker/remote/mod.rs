//! The worker's side of the remote: one transition (`transition`), the cheap look between
//! transitions (`poll`), the turn to push under a push budget (`paced`), and trouble with the
//! remote (`trouble`). [`Remote`] owns what the worker knows of the remote (its [`view`]) and
//! its counters: reads, pushes, the last push, failures in a row, the pacing and the observer of
//! other nodes' claims.

mod paced;
mod poll;
mod transition;
mod trouble;
mod view;

use super::policy::clock::Clock;
use super::policy::{Observer, Pacing};
use super::Config;
pub(super) use paced::check_lease;
use std::sync::Arc;
use std::time::{Duration, Instant};
use view::RemoteView;

pub(super) struct Remote {
    view: RemoteView,
    /// When this process's last push landed.
    last_push: Option<Instant>,
    /// Transitions that failed in a row (network trouble).
    failures: u32,
    /// Reads of the remote and pushes accepted, for the log at debug level.
    reads: u64,
    pushes: u64,
    /// When this worker may push, under a push budget (`None`: no budget).
    pacing: Option<Pacing>,
    /// Whether the log said that the push spacing is too long for the leases.
    spacing_warned: bool,
    /// When another node's claim may be taken back, by what this process saw of it.
    observer: Observer,
}

impl Remote {
    /// Nothing seen of the remote yet; the pacing's jitter is drawn from `seed`.
    pub(super) fn new(cfg: &Config, clock: Arc<dyn Clock>, seed: u64) -> Remote {
        Remote {
            view: RemoteView::new(),
            last_push: None,
            failures: 0,
            reads: 0,
            pushes: 0,
            pacing: Pacing::new(cfg.push_budget.per_minute, seed),
            spacing_warned: false,
            observer: Observer::new(cfg.lease, cfg.clock_skew, clock),
        }
    }

    /// What the worker last learnt of the remote.
    pub(super) fn view(&self) -> &RemoteView {
        &self.view
    }

    /// See [`RemoteView::recheck_exclusions`].
    pub(super) fn recheck_exclusions(&mut self, ended: impl FnOnce() -> Option<bool>) {
        self.view.recheck_exclusions(ended);
    }

    /// Whether pushes are paced (a push budget).
    pub(super) fn paced(&self) -> bool {
        self.pacing.is_some()
    }

    /// The log's line about the push budget (`None`: no budget); `why` says where it came from.
    pub(super) fn budget_line(&self, why: &str) -> Option<String> {
        self.pacing.as_ref().map(|pacing| {
            format!(
                "push budget: {} push(es) per minute for the whole grid ({why}); {}s or more between this node's pushes",
                pacing.per_minute(),
                pacing.shortest_spacing().as_secs()
            )
        })
    }

    /// Whether a heartbeat is due at `now`, `interval` after the last push.
    pub(super) fn heartbeat_due(&self, now: Instant, interval: Duration) -> bool {
        self.last_push
            .is_none_or(|t| now.saturating_duration_since(t) >= interval)
    }

    /// How long from `now` until a heartbeat is due (at least 100 ms).
    pub(super) fn time_to_heartbeat(&self, now: Instant, interval: Duration) -> Duration {
        match self.last_push {
            Some(t) => interval
                .saturating_sub(now.saturating_duration_since(t))
                .max(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        }
    }

    /// A transition landed, or found nothing to do: the remote answers again.
    pub(super) fn answered(&mut self) {
        self.failures = 0;
    }

    /// Counts reads of the remote (`ls-remote`, fetches), for the log at debug level.
    pub(super) fn note_reads(&mut self, n: u32) {
        self.reads += u64::from(n);
    }

    /// A transition failed (the network, the remote): returns how many did in a row.
    pub(super) fn failed(&mut self) -> u32 {
        self.failures += 1;
        self.failures
    }

    /// A push of this process landed at `at`: returns how many did so far.
    pub(super) fn pushed(&mut self, at: Instant) -> u64 {
        self.pushes += 1;
        self.last_push = Some(at);
        self.pushes
    }

    /// Since this process's last push landed, as of `now` (`None`: it has not pushed yet).
    pub(super) fn since_last_push(&self, now: Instant) -> Option<Duration> {
        self.last_push.map(|at| now.saturating_duration_since(at))
    }

    /// A task ran for `took`: the claims ahead are sized on the durations seen.
    pub(super) fn task_took(&mut self, took: Duration) {
        if let Some(pacing) = self.pacing.as_mut() {
            pacing.task_took(took);
        }
    }
}

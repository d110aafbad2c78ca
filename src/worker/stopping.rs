//! Stopping: the signals that ask for it, the grace period, and the last push (the node's stopped
//! record with whatever is still owed).

use super::Worker;
use crate::grid::{NodeIdInUse, RemoteRefused};
use crate::node::NodeState;
use anyhow::Result;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Signals that come closer together than this are one stop request. One Ctrl-C on `git dgrid
/// work` reaches the worker twice: the terminal sends SIGINT to the whole process group, and git
/// forwards its own to its `git-dgrid` child (systemd's SIGTERM to a control group does the same).
/// Counted twice, that one Ctrl-C would skip the grace period; a second press a moment later
/// still kills at once.
pub const SAME_REQUEST: Duration = Duration::from_millis(1500);

/// Counts SIGINT/SIGTERM: the first asks for a graceful stop, the second for an immediate one.
#[derive(Default)]
pub struct StopRequests {
    count: AtomicUsize,
    /// When the first came: the grace period runs from then.
    first: std::sync::OnceLock<Instant>,
    /// When the last counted one came: another within [`SAME_REQUEST`] is the same request.
    last: std::sync::Mutex<Option<Instant>>,
}

impl StopRequests {
    /// A signal came (called from the signal-handling thread).
    pub fn request(&self) {
        self.request_at(Instant::now());
    }

    /// A signal came at `at`: counted unless it comes within [`SAME_REQUEST`] of the last one
    /// counted (the same Ctrl-C, delivered twice).
    pub fn request_at(&self, at: Instant) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|l| at.saturating_duration_since(l) < SAME_REQUEST) {
            return;
        }
        *last = Some(at);
        self.first.get_or_init(|| at);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether waiting for anything (the remote above all) must end now: a second request, or
    /// the grace period since the first is over.
    pub fn past_grace(&self, grace: Duration) -> bool {
        self.count() >= 2 || self.first.get().is_some_and(|t| t.elapsed() >= grace)
    }
}

/// The shutdown asked for by signals.
pub(super) struct Shutdown {
    pub(super) requests: Arc<StopRequests>,
    /// When the first request was seen: the grace period runs from then.
    pub(super) since: Option<Instant>,
}

impl Worker {
    /// The last push: the node's stopped record, with whatever is still owed (results,
    /// releases). Under a push budget a worker that ends by itself (`--until-empty`,
    /// `--max-tasks`) waits its turn for it, and tries again while the remote has trouble and
    /// results are owed; a signal makes it push at once, once.
    pub(super) fn say_goodbye(&mut self) -> Result<()> {
        self.node.state = NodeState::Stopped;
        let paced = self.remote.paced();
        if paced && self.shutdown.requests.count() == 0 {
            self.wait_for_turn();
        }
        loop {
            let Err(e) = self.cycle(false, true) else {
                return Ok(());
            };
            if e.is::<RemoteRefused>() || e.is::<NodeIdInUse>() {
                return Err(e);
            }
            let signalled = self.shutdown.requests.count() > 0;
            if paced && !signalled && self.held.tasks().owed_to_grid() {
                self.remote_trouble(e)?;
                continue;
            }
            // Told to stop, and stopping within the grace period matters more than telling the
            // remote: the results are in the spool and go on the next start.
            self.warn(&format!(
                "{e:#}; stopping without writing the node's stopped record; {} result(s) stay in the spool for the next start",
                self.held.tasks().results().len()
            ));
            return Ok(());
        }
    }

    /// Under a push budget, whether the worker is done but for what it owes the grid: then the
    /// stopped record carries it, and the worker saves a push (its last one).
    pub(super) fn last_push_can_say_goodbye(&self, stopping: bool) -> bool {
        let view = self.remote.view();
        if !self.remote.paced() || view.take_back_due() || view.claim_gone() {
            return false;
        }
        let work_left = view.work_left(self.cfg.until_empty);
        self.held.tasks().settled_by_one_push(stopping)
            && (stopping || self.budget.spent(work_left))
    }

    /// Graceful stop, then (after the grace period or a second SIGINT) kill and release.
    pub(super) fn handle_stop_requests(&mut self) {
        let requests = self.shutdown.requests.count();
        if requests == 0 {
            return;
        }
        let now = self.clock.instant();
        let since = *self.shutdown.since.get_or_insert(now);
        if self.node.state == NodeState::Running {
            self.node.state = NodeState::Stopping;
            self.put_back_waiting();
            self.log(&format!(
                "stopping: no new tasks; {} running task(s) get {}s to finish (a second Ctrl-C kills them now)",
                self.held.tasks().containers(),
                self.cfg.grace.as_secs()
            ));
        }
        if requests >= 2 || now.saturating_duration_since(since) >= self.cfg.grace {
            self.kill_for_shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Ctrl-C on `git dgrid work` arrives twice (the terminal's and git's):
    /// one request, the grace period kept; a second press later is a second request.
    #[test]
    fn one_ctrl_c_delivered_twice_is_one_request() {
        let stop = StopRequests::default();
        let t0 = Instant::now();
        stop.request_at(t0);
        stop.request_at(t0 + Duration::from_millis(5));
        assert_eq!(
            stop.count(),
            1,
            "the same Ctrl-C, from git and from the terminal"
        );
        assert!(!stop.past_grace(Duration::from_secs(3600)));
        stop.request_at(t0 + Duration::from_secs(3));
        assert_eq!(stop.count(), 2, "a second press kills");
        assert!(stop.past_grace(Duration::from_secs(3600)));
    }
}

//! The tasks this worker holds, from their claim until the grid has what it is owed: one phase per
//! task in one map (`task_run`), the containers' ends (`exits`), whether docker is usable
//! (`docker_health`), and the tasks this node failed to start, left alone for a while
//! (`exclusions`). Starting a claimed task is here too (`start`).

mod docker_health;
mod exclusions;
mod exits;
mod start;
mod task_run;

use super::Worker;
use crate::grid::Applied;
use crate::task::TaskResult;
use docker_health::DockerHealth;
use exclusions::Exclusions;
use std::collections::HashSet;
use std::sync::mpsc;
use std::time::{Duration, Instant};
pub(super) use task_run::Exited;
pub(super) use task_run::HeldTasks;

pub(super) struct Held {
    tasks: HeldTasks,
    /// Each container's thread says on this channel that it ended.
    exits_tx: mpsc::Sender<Exited>,
    exits: mpsc::Receiver<Exited>,
    docker: DockerHealth,
    exclusions: Exclusions,
}

impl Held {
    /// Nothing held yet; docker's backoff and the exclusions start from `poll_interval`.
    pub(super) fn new(poll_interval: Duration) -> Held {
        let (exits_tx, exits) = mpsc::channel();
        Held {
            tasks: HeldTasks::default(),
            exits_tx,
            exits,
            docker: DockerHealth::new(poll_interval),
            exclusions: Exclusions::new(poll_interval),
        }
    }

    /// Holds the results found in the spool at start-up, still to be recorded.
    pub(super) fn take_spooled(&mut self, spooled: Vec<TaskResult>) {
        self.tasks = HeldTasks::from_spooled(spooled);
    }

    /// The held tasks, for what the transition and the loop read off them.
    pub(super) fn tasks(&self) -> &HeldTasks {
        &self.tasks
    }

    /// The tasks not to claim at `now` (this node failed to start them a moment ago).
    pub(super) fn excluded(&self, now: Instant) -> HashSet<String> {
        self.exclusions.active(now)
    }

    /// Whether some task left alone here may be claimed again at `now` (`None`: none is noted).
    pub(super) fn exclusions_ended(&self, now: Instant) -> Option<bool> {
        self.exclusions
            .any()
            .then(|| self.exclusions.active(now).len() < self.exclusions.len())
    }

    /// `id` ended as unrunnable: no longer left alone here.
    pub(super) fn forget_exclusion(&mut self, id: &str) {
        self.exclusions.forget(id);
    }

    /// Why docker is not usable, for the node record.
    pub(super) fn docker_problem(&self) -> Option<&str> {
        self.docker.problem()
    }

    /// A container that ended already, if any (no wait).
    pub(super) fn ended(&self) -> Option<Exited> {
        self.exits.try_recv().ok()
    }

    /// The next container to end within `wait`; `None` as soon as `stop_asked` says so, so that a
    /// long poll interval never delays a stop.
    pub(super) fn next_exit(
        &self,
        wait: Duration,
        stop_asked: impl Fn() -> bool,
    ) -> Result<Option<Exited>, mpsc::RecvTimeoutError> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(mpsc::RecvTimeoutError::Timeout);
            }
            match self
                .exits
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(exited) => return Ok(Some(exited)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => return Err(e),
            }
            if stop_asked() {
                return Ok(None);
            }
        }
    }
}

impl Worker {
    /// Takes in what a transition landed (see [`HeldTasks::settle`]).
    pub(super) fn settle_held(&mut self, applied: &Applied) {
        for id in self.held.tasks.settle(applied) {
            self.log(&format!(
                "dropped {id}, claimed ahead: it is no longer ours (cancelled, or taken over)"
            ));
        }
    }

    /// Every task claimed ahead goes back to the queue, not started (a shutdown, or docker not
    /// usable here).
    pub(super) fn put_back_waiting(&mut self) {
        for id in self.held.tasks.release_waiting() {
            self.log(&format!(
                "putting {id} back in the queue: claimed ahead, not started"
            ));
        }
    }

    /// The tasks claimed ahead below the `best` priority queued go back to the queue.
    pub(super) fn put_back_waiting_below(&mut self, best: Option<i64>) {
        for id in self
            .held
            .tasks
            .release_waiting_below(best.unwrap_or(i64::MIN))
        {
            self.log(&format!(
                "putting {id} back in the queue: claimed ahead, and a task of higher priority is queued"
            ));
        }
    }

    /// The grace period is over: every running container is killed, its task to be put back.
    pub(super) fn kill_for_shutdown(&mut self) {
        for id in self.held.tasks.stop_for_shutdown() {
            self.log(&format!("killing {id} and putting it back in the queue"));
        }
    }

    /// Kills every running container and waits (a little) for their threads to report.
    pub(super) fn abort_running(&mut self) {
        self.held.tasks.kill_all();
        let deadline = self.clock.instant() + Duration::from_secs(30);
        while self.held.tasks.containers() > 0 && self.clock.instant() < deadline {
            if let Ok(exited) = self.held.exits.recv_timeout(Duration::from_millis(200)) {
                self.held.tasks.forget(&exited);
            }
        }
    }
}

//! Trouble with the remote: a refusal on purpose ends the worker, anything else (the network, a
//! rate limit) is waited out, longer each time, with the results in the spool meanwhile.

use crate::grid::{rate_limit_backoff, NodeIdInUse, RateLimited, RemoteRefused};
use crate::worker::Worker;
use anyhow::Result;
use std::time::{Duration, Instant};

/// The longest a rate-limited worker waits between tries (unless the remote asks for longer).
const RATE_LIMIT_CAP: Duration = Duration::from_secs(300);

impl Worker {
    /// A failed transition: fatal if the remote refused on purpose (the running tasks are stopped
    /// and stay claimed, for another node to take back); otherwise the network or the remote is
    /// having trouble, so wait and try again, longer each time. Results stay in the spool meanwhile.
    pub(in crate::worker) fn remote_trouble(&mut self, error: anyhow::Error) -> Result<()> {
        if error.is::<RemoteRefused>() || error.is::<NodeIdInUse>() {
            let spooled = self.held.tasks().results().len();
            self.warn(&format!(
                "{error:#}; stopping ({spooled} result(s) stay in the spool for the next start)"
            ));
            self.abort_running();
            return Err(error);
        }
        let failures = self.remote.failed();
        let requests = self.shutdown.requests.count();
        let wait = match error.downcast_ref::<RateLimited>() {
            // Not a failure: the remote asks us to come back later, and later is what it gets,
            // however many times in a row (the spool keeps the results meanwhile).
            Some(limited) => {
                let base = self.cfg.poll_interval.max(Duration::from_secs(1));
                let wait = rate_limit_backoff(failures, base, RATE_LIMIT_CAP, limited.retry_after);
                let what = if requests > 0 {
                    "stopping all the same".to_string()
                } else {
                    format!(
                        "slowing down, trying again in {}s",
                        wait.as_secs_f32().ceil()
                    )
                };
                self.warn(&format!("rate limited: {error:#}; {what}"));
                // And its pushes are spaced further apart from now on (under a push budget).
                if let Some(line) = self.remote.rate_limited(self.clock.instant()) {
                    self.warn(&line);
                }
                wait
            }
            None => (self.cfg.poll_interval * failures.min(30)).min(Duration::from_secs(300)),
        };
        let limited = error.is::<RateLimited>();
        if requests > 0 {
            // Stopping: no long pause, the loop ends when the tasks are done or the grace is over.
            // A rate-limited remote still gets a second between tries, not a burst.
            if !limited {
                self.warn(&format!("{error:#}"));
            }
            let pause = if limited {
                wait.min(Duration::from_secs(1))
            } else {
                Duration::from_millis(200)
            };
            std::thread::sleep(pause);
            return Ok(());
        }
        if !limited {
            self.warn(&format!("{error:#}; trying again in {}s", wait.as_secs()));
        }
        // A stop request ends the pause early: stopping must not wait for the remote.
        let until = Instant::now() + wait;
        while Instant::now() < until && self.shutdown.requests.count() == requests {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

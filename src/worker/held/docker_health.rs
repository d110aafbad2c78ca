//! Whether docker is usable, as this worker last found it. When it is not, the worker stops
//! claiming for a while that doubles with every failure in a row (from the poll interval up to five
//! minutes), keeps heartbeating, and says why in its node record; then it looks again.

use std::time::{Duration, Instant};

/// The longest pause in claiming: docker coming back is noticed within this.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct DockerHealth {
    /// The first pause after a failure.
    min_backoff: Duration,
    /// The current pause; zero while docker is healthy.
    backoff: Duration,
    /// Claiming waits until then; `None` while docker is healthy.
    until: Option<Instant>,
    /// Why docker is not usable, for the node record.
    problem: Option<String>,
}

/// What to do about docker before claiming.
#[derive(Debug, PartialEq, Eq)]
pub enum DockerCheck {
    /// Docker was fine at the last look.
    Usable,
    /// Docker failed recently: do not claim yet.
    Pausing,
    /// The pause is over: look again (and report with [`healthy`](DockerHealth::healthy) or
    /// [`failed`](DockerHealth::failed)).
    LookAgain,
}

impl DockerHealth {
    pub fn new(min_backoff: Duration) -> DockerHealth {
        DockerHealth {
            min_backoff,
            backoff: Duration::ZERO,
            until: None,
            problem: None,
        }
    }

    pub fn verdict(&self, now: Instant) -> DockerCheck {
        match self.until {
            None => DockerCheck::Usable,
            Some(until) if now < until => DockerCheck::Pausing,
            Some(_) => DockerCheck::LookAgain,
        }
    }

    /// Docker failed at `now` because of `why`; returns how long claiming pauses.
    pub fn failed(&mut self, now: Instant, why: String) -> Duration {
        self.backoff =
            (self.backoff * 2).clamp(self.min_backoff, MAX_BACKOFF.max(self.min_backoff));
        self.until = Some(now + self.backoff);
        self.problem = Some(why);
        self.backoff
    }

    /// Docker answered a look (`docker version`): claiming may go on, but the pause stays as long
    /// as it was, so that a daemon that answers but still cannot start containers (a full disk)
    /// is backed off from longer each time; only a container that ran restarts it
    /// ([`healthy`](DockerHealth::healthy)).
    pub fn answered(&mut self) {
        self.until = None;
        self.problem = None;
    }

    /// A container ran: docker is usable, and the backoff starts again from the beginning.
    pub fn healthy(&mut self) {
        self.backoff = Duration::ZERO;
        self.until = None;
        self.problem = None;
    }

    /// Why docker is not usable, if it is not.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(10);

    #[test]
    fn the_pause_doubles_from_the_poll_interval_up_to_five_minutes() {
        let mut health = DockerHealth::new(POLL);
        let now = Instant::now();
        let pauses: Vec<u64> = (0..7)
            .map(|_| health.failed(now, "down".into()).as_secs())
            .collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(health.problem(), Some("down"));
    }

    #[test]
    fn claiming_pauses_until_the_backoff_is_over_then_docker_is_looked_at_again() {
        let mut health = DockerHealth::new(POLL);
        let now = Instant::now();
        assert_eq!(health.verdict(now), DockerCheck::Usable);
        health.failed(now, "docker is not usable: gone".into());
        assert_eq!(health.verdict(now), DockerCheck::Pausing);
        assert_eq!(
            health.verdict(now + POLL - Duration::from_millis(1)),
            DockerCheck::Pausing
        );
        assert_eq!(health.verdict(now + POLL), DockerCheck::LookAgain);
    }

    #[test]
    fn a_daemon_that_answers_lifts_the_pause_but_not_the_backoff() {
        let mut health = DockerHealth::new(POLL);
        let now = Instant::now();
        health.failed(now, "disk full".into());
        health.answered();
        assert_eq!(health.verdict(now), DockerCheck::Usable);
        assert_eq!(health.problem(), None);
        assert_eq!(health.failed(now, "disk full".into()), POLL * 2);
    }

    #[test]
    fn a_healthy_look_clears_the_problem_and_restarts_the_backoff() {
        let mut health = DockerHealth::new(POLL);
        let now = Instant::now();
        health.failed(now, "a".into());
        health.failed(now, "b".into());
        health.healthy();
        assert_eq!(health.verdict(now), DockerCheck::Usable);
        assert_eq!(health.problem(), None);
        assert_eq!(health.failed(now, "c".into()), POLL);
    }
}

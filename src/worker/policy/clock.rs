//! The worker's two clocks, behind a trait so that the decisions taken on them (is a lease out, has
//! a node been silent long enough, is docker due for another look) can be tested at chosen instants.
//! See `docs/ARCHITECTURE.md#leases-and-clocks`.

use chrono::{DateTime, Utc};
use std::time::Instant;

pub trait Clock: Send + Sync {
    /// Wall-clock time: for what is written on the grid (heartbeats, leases) and compared with what
    /// other nodes wrote there.
    fn now(&self) -> DateTime<Utc>;
    /// Monotonic time: for this process's own intervals (silence observed, backoff, grace).
    fn instant(&self) -> Instant;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests.
#[cfg(test)]
pub struct FixedClock {
    at: std::sync::Mutex<(DateTime<Utc>, Instant)>,
}

#[cfg(test)]
impl FixedClock {
    pub fn at(rfc3339: &str) -> FixedClock {
        let wall = DateTime::parse_from_rfc3339(rfc3339)
            .expect("a test's time is valid")
            .with_timezone(&Utc);
        FixedClock {
            at: std::sync::Mutex::new((wall, Instant::now())),
        }
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let mut at = self.at.lock().unwrap();
        at.0 += chrono::Duration::from_std(by).unwrap();
        at.1 += by;
    }
}

#[cfg(test)]
impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.at.lock().unwrap().0
    }

    fn instant(&self) -> Instant {
        self.at.lock().unwrap().1
    }
}

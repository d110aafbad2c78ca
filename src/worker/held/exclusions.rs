//! Tasks this node failed to start while its docker answered: it does not claim them again for a
//! while (doubling with each failure here, from the poll interval up to five minutes), so other
//! nodes and other tasks get their turn instead of the same task being claimed on every poll.

use crate::task::TaskId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const MAX_PAUSE: Duration = Duration::from_secs(300);

pub struct Exclusions {
    first_pause: Duration,
    /// id -> (failures here, claimable again from)
    tasks: HashMap<TaskId, (u32, Instant)>,
}

impl Exclusions {
    pub fn new(first_pause: Duration) -> Exclusions {
        Exclusions {
            first_pause,
            tasks: HashMap::new(),
        }
    }

    /// `id` failed to start at `now`; returns how long it is not claimed here.
    pub fn failed(&mut self, id: &TaskId, now: Instant) -> Duration {
        let failures = self.tasks.get(id).map_or(0, |(n, _)| *n) + 1;
        let pause = self
            .first_pause
            .saturating_mul(1 << (failures - 1).min(16))
            .min(MAX_PAUSE.max(self.first_pause));
        self.tasks.insert(id.clone(), (failures, now + pause));
        pause
    }

    /// The tasks not to claim at `now`.
    pub fn active(&self, now: Instant) -> HashSet<String> {
        self.tasks
            .iter()
            .filter(|(_, (_, until))| now < *until)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Forgets `id` (it ended as unrunnable, or it started after all).
    pub fn forget(&mut self, id: &str) {
        self.tasks.remove(id);
    }

    /// How many tasks are noted, expired or not.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether any task is excluded at all (expired or not): they may still be in the queue.
    pub fn any(&self) -> bool {
        !self.tasks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_task_is_left_alone_for_a_pause_that_doubles() {
        let mut ex = Exclusions::new(Duration::from_secs(10));
        let id = TaskId::parse("t").unwrap();
        let now = Instant::now();
        assert_eq!(ex.failed(&id, now), Duration::from_secs(10));
        assert!(ex.active(now).contains("t"));
        assert!(!ex.active(now + Duration::from_secs(10)).contains("t"));
        assert_eq!(ex.failed(&id, now), Duration::from_secs(20));
        for _ in 0..10 {
            ex.failed(&id, now);
        }
        assert_eq!(ex.failed(&id, now), MAX_PAUSE);
        ex.forget("t");
        assert!(!ex.any());
    }
}

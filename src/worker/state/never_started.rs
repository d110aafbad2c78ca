//! Claims this node holds ahead of a free slot, noted durably in its state dir until their task
//! starts. A worker killed with SIGKILL (or a machine that lost power) while holding claimed-ahead
//! tasks finds its own claims on the grid when it starts again from the same state dir. Without
//! this note those claims look like any claim of the node's previous run, which may have run the
//! task, and the attempt counts: a task with `max_attempts: 1` claimed ahead by a worker that was
//! then killed would fail as lost without ever having run. With it, a claim the note lists was
//! never started (the note loses an entry, durably, *before* its container starts), so it goes back
//! to the queue without using an attempt, as a shutdown would have put it back.
//!
//! The note errs on the side of today's rule: a claim missing from it (the worker died between the
//! push that claimed and the note; the note could not be read) counts as possibly started. A claim
//! is matched whole (task, attempt and the `claimed_at` the claim wrote), so a later claim of the
//! same task is never mistaken for a noted one.

use super::spool::write_durably;
use crate::log;
use crate::task::{Attempt, TaskSpec};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct NotedClaim {
    id: String,
    attempt: Attempt,
    claimed_at: String,
}

/// The note: `claimed-ahead.json` in the node's folder of the state dir.
pub struct NeverStarted {
    path: PathBuf,
    claims: BTreeSet<NotedClaim>,
}

impl NeverStarted {
    /// Reads the note a previous run left (an unreadable one is set aside: its claims count as
    /// possibly started, the rule without a note).
    pub fn open(node_dir: &Path) -> NeverStarted {
        let path = node_dir.join("claimed-ahead.json");
        let claims = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                log::warning(&format!(
                    "{}: not a list of claims ({e}); the claims of the previous run count as possibly started",
                    path.display()
                ));
                BTreeSet::new()
            }),
            Err(_) => BTreeSet::new(),
        };
        NeverStarted { path, claims }
    }

    /// (id, attempt, claimed_at) of every claim noted as not started, for the grid transition.
    pub fn claims(&self) -> HashSet<(String, Attempt, String)> {
        self.claims
            .iter()
            .map(|c| (c.id.clone(), c.attempt, c.claimed_at.clone()))
            .collect()
    }

    /// Tasks just claimed that wait for a slot.
    pub fn add<'a>(&mut self, specs: impl IntoIterator<Item = &'a TaskSpec>) -> Result<()> {
        let before = self.claims.len();
        for spec in specs {
            if let Some(claim) = &spec.claim {
                self.claims.insert(NotedClaim {
                    id: spec.id.to_string(),
                    attempt: claim.attempt,
                    claimed_at: claim.claimed_at.clone(),
                });
            }
        }
        self.save_if(self.claims.len() != before)
    }

    /// A task is about to start (its container may run from now on), or is no longer held.
    pub fn remove(&mut self, id: &str, attempt: Attempt) -> Result<()> {
        let before = self.claims.len();
        self.claims
            .retain(|c| !(c.id == id && c.attempt == attempt));
        self.save_if(self.claims.len() != before)
    }

    /// After a push of this process landed: the previous run's claims have been put back, and
    /// only the tasks still waiting here (`waiting`) stay noted.
    pub fn keep_only(&mut self, waiting: &HashSet<(String, Attempt)>) -> Result<()> {
        let before = self.claims.len();
        self.claims
            .retain(|c| waiting.contains(&(c.id.clone(), c.attempt)));
        self.save_if(self.claims.len() != before)
    }

    fn save_if(&self, changed: bool) -> Result<()> {
        if !changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&self.claims)?;
        write_durably(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::testkit::{task, task_spec};
    use crate::task::Claim;

    fn claimed(id: &str, attempt: u32, at: &str) -> TaskSpec {
        let mut spec = task_spec(&task(id));
        spec.claim = Some(Claim {
            node_id: "n".into(),
            claimed_at: at.into(),
            lease_expires_at: at.into(),
            attempt: Attempt::new(attempt).unwrap(),
        });
        spec
    }

    #[test]
    fn the_note_survives_a_restart_until_its_tasks_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut note = NeverStarted::open(dir.path());
        note.add([&claimed("a", 1, "t1"), &claimed("b", 2, "t1")])
            .unwrap();
        note.remove("a", Attempt::FIRST).unwrap(); // a starts
        let again = NeverStarted::open(dir.path()); // killed, started again
        let expected: HashSet<_> = [("b".to_string(), Attempt::new(2).unwrap(), "t1".to_string())]
            .into_iter()
            .collect();
        assert_eq!(again.claims(), expected);
        let mut again = again;
        again.keep_only(&HashSet::new()).unwrap(); // its first push put b back
        assert!(NeverStarted::open(dir.path()).claims().is_empty());
    }

    #[test]
    fn an_unreadable_note_counts_every_claim_as_possibly_started() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("claimed-ahead.json"), b"{not json").unwrap();
        assert!(NeverStarted::open(dir.path()).claims().is_empty());
    }
}

//! Between transitions: a cheap look at the remote to decide whether one is due.

use super::Worker;
use crate::grid::{
    any_claimable, any_claimable_except, best_priority_except, claims_to_take_back,
    entries_to_take_back, holds_live_entry, replicated_in_progress, replicated_work_due, RemoteTip,
    Snapshot,
};
use crate::layout::{State, NODES_DIR};
use anyhow::Result;
use std::collections::HashSet;

impl Worker {
    /// A cheap look at the remote: `git ls-remote` transfers nothing when nothing changed. Returns
    /// whether anything did.
    pub(super) fn poll(&mut self) -> Result<bool> {
        self.note_reads(1);
        self.view.looked_at = Some(self.clock.instant());
        let remote_tip = match self.grid.remote_tip()? {
            RemoteTip::At(tip) => tip,
            RemoteTip::Unreachable(why) => {
                self.warn(&why);
                return Ok(false);
            }
        };
        let changed = remote_tip != self.view.last_tip;
        if changed {
            self.note_reads(1);
            self.cfg.log.debug(
                &self.cfg.node_id,
                &format!("the remote moved; fetching ({} read(s) so far)", self.reads),
            );
            let since = self.view.last_tip;
            let tip = self.grid.fetch()?;
            self.saw_landed(tip, None, since);
            let snapshot = Snapshot::read(&self.grid.repo, tip)?;
            self.observer.observe(&self.grid.repo, &snapshot);
            let probe = self.claim_request(1);
            let excluded = self.exclusions.active(self.clock.instant());
            let repo = &self.grid.repo;
            self.view.queue_has_work =
                any_claimable_except(repo, &snapshot, &probe, &self.grid.limits, &excluded);
            self.view.queue_waits = any_claimable(repo, &snapshot, &probe, &self.grid.limits);
            if self.tasks.waiting() > 0 {
                let limits = &self.grid.limits;
                let best = best_priority_except(repo, &snapshot, &probe, limits, &excluded);
                for id in self.tasks.release_waiting_below(best.unwrap_or(i64::MIN)) {
                    self.log(&format!(
                        "putting {id} back in the queue: claimed ahead, and a task of higher priority is queued"
                    ));
                }
            }
            // Our tasks (running, or claimed ahead) may have been cancelled or taken over. Any
            // file of the id in progress will do: a finished copy beside it (a duplicate, a late
            // result) does not mean that the claim is gone, and is not worth a transition.
            self.view.claim_gone |= self
                .tasks
                .claimed()
                .any(|id| !snapshot.places(id).any(|t| t.state == State::InProgress));
            // A replicated task keeps its file while an entry of ours is dropped (taken back).
            let me = self.cfg.node_id.as_str();
            let limits = &self.grid.limits;
            self.view.claim_gone |= self.tasks.claimed().any(|id| {
                replicated_in_progress(repo, &snapshot, id, limits)
                    .is_some_and(|(_, spec, _)| !holds_live_entry(&spec, me))
            });
            let awaiting = self.tasks.awaiting();
            if !awaiting.is_empty() {
                self.view.quorum_due |= replicated_work_due(repo, &snapshot, me, &awaiting, limits);
            }
        }
        // Leases of other nodes run out without anything changing on the remote.
        if !self.view.take_back_due {
            self.view.take_back_due = self.anything_to_take_back()?;
        }
        Ok(changed)
    }

    /// Whether a transition would take a task back (by the rule the transition itself applies),
    /// judged on the in-progress tasks and node records of the last tip seen.
    fn anything_to_take_back(&mut self) -> Result<bool> {
        let in_progress = State::InProgress.dir();
        let dirs = [in_progress.as_str(), NODES_DIR];
        let snapshot = Snapshot::read_dirs(&self.grid.repo, self.view.last_tip, &dirs)?;
        let held = self.tasks.held();
        let nothing_skipped = HashSet::new();
        let mut due = claims_to_take_back(
            &self.grid.repo,
            &snapshot,
            &self.cfg.node_id,
            &held,
            &self.grid.limits,
            &mut self.observer,
            &nothing_skipped,
        );
        if due.next().is_some() {
            return Ok(true);
        }
        drop(due);
        let entries = entries_to_take_back(
            &self.grid.repo,
            &snapshot,
            &self.cfg.node_id,
            &held,
            &self.grid.limits,
            &mut self.observer,
            &nothing_skipped,
        );
        Ok(!entries.is_empty())
    }
}

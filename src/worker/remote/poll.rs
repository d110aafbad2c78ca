//! Between transitions: a cheap look at the remote to decide whether one is due.

use crate::grid::{
    claims_to_take_back, entries_to_take_back, holds_live_entry, replicated_in_progress,
    replicated_work_due, Claimable, RemoteTip, Snapshot,
};
use crate::layout::{State, NODES_DIR};
use crate::worker::Worker;
use anyhow::Result;
use std::collections::HashSet;

impl Worker {
    /// A cheap look at the remote: `git ls-remote` transfers nothing when nothing changed. Returns
    /// whether anything did.
    pub(in crate::worker) fn poll(&mut self) -> Result<bool> {
        self.remote.note_reads(1);
        self.remote.view.looked(self.clock.instant());
        let remote_tip = match self.grid.remote_tip()? {
            RemoteTip::At(tip) => tip,
            RemoteTip::Unreachable(why) => {
                self.warn(&why);
                return Ok(false);
            }
        };
        let changed = remote_tip != self.remote.view.last_tip();
        if changed {
            self.remote.note_reads(1);
            self.cfg.log.debug(
                &self.cfg.node_id,
                &format!(
                    "the remote moved; fetching ({} read(s) so far)",
                    self.remote.reads
                ),
            );
            let since = self.remote.view.last_tip();
            let tip = self.grid.fetch()?;
            self.saw_landed(tip, None, since);
            let snapshot = Snapshot::read(&self.grid.repo, tip)?;
            self.looked_at_queue(&snapshot);
        }
        // Leases of other nodes run out without anything changing on the remote.
        if !self.remote.view.take_back_due() {
            let due = self.anything_to_take_back()?;
            self.remote.view.take_back_seen(due);
        }
        Ok(changed)
    }

    /// What a fetch of a moved remote says: the queue (parsed once), tasks claimed ahead that a
    /// higher priority queued sends back, claims of ours gone, and results awaiting a quorum
    /// with work due.
    fn looked_at_queue(&mut self, snapshot: &Snapshot) {
        self.remote.observer.observe(&self.grid.repo, snapshot);
        let probe = self.claim_request(1);
        let excluded = self.held.excluded(self.clock.instant());
        let repo = &self.grid.repo;
        let queue = Claimable::read(repo, snapshot, &probe, &self.grid.limits);
        self.remote
            .view
            .queue_seen(queue.any_except(&excluded), queue.any());
        if self.held.tasks().waiting() > 0 {
            let best = queue.best_priority_except(&excluded);
            self.put_back_waiting_below(best);
        }
        let repo = &self.grid.repo;
        let tasks = self.held.tasks();
        // Our tasks (running, or claimed ahead) may have been cancelled or taken over. Any
        // file of the id in progress will do: a finished copy beside it (a duplicate, a late
        // result) does not mean that the claim is gone, and is not worth a transition.
        let gone = tasks
            .claimed()
            .any(|id| !snapshot.places(id).any(|t| t.state == State::InProgress));
        // A replicated task keeps its file while an entry of ours is dropped (taken back).
        let me = self.cfg.node_id.as_str();
        let limits = &self.grid.limits;
        let entry_dropped = tasks.claimed().any(|id| {
            replicated_in_progress(repo, snapshot, id, limits)
                .is_some_and(|(_, spec, _)| !holds_live_entry(&spec, me))
        });
        let awaiting = tasks.awaiting();
        let quorum_due =
            !awaiting.is_empty() && replicated_work_due(repo, snapshot, me, &awaiting, limits);
        self.remote.view.claims_seen(gone);
        self.remote.view.claims_seen(entry_dropped);
        if !awaiting.is_empty() {
            self.remote.view.quorum_seen(quorum_due);
        }
    }

    /// Whether a transition would take a task back (by the rule the transition itself applies),
    /// judged on the in-progress tasks and node records of the last tip seen.
    fn anything_to_take_back(&mut self) -> Result<bool> {
        let in_progress = State::InProgress.dir();
        let dirs = [in_progress.as_str(), NODES_DIR];
        let snapshot = Snapshot::read_dirs(&self.grid.repo, self.remote.view.last_tip(), &dirs)?;
        let held = self.held.tasks().held();
        let nothing_skipped = HashSet::new();
        let mut due = claims_to_take_back(
            &self.grid.repo,
            &snapshot,
            &self.cfg.node_id,
            &held,
            &self.grid.limits,
            &mut self.remote.observer,
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
            &mut self.remote.observer,
            &nothing_skipped,
        );
        Ok(!entries.is_empty())
    }
}

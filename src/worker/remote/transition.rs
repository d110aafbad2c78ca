//! The worker's transition: what it owes the grid and wants from it (results, releases, leases
//! to renew, claims, its heartbeat) as one intent, landed by the compare-and-swap loop in one push
//! (`docs/ARCHITECTURE.md#compare-and-swap`), and what landed taken back into the worker.

use super::view::Transitioned;
use crate::grid::{
    append_late, plan_transition, Applied, ClaimRequest, Claimable, Intent, Outcome,
};
use crate::layout::State;
use crate::task::TaskResult;
use crate::time::rfc3339;
use crate::worker::policy::tail_split;
use crate::worker::Worker;
use anyhow::Result;

impl Worker {
    pub(super) fn claim_request(&self, max: usize) -> ClaimRequest {
        ClaimRequest {
            node_id: self.cfg.node_id.clone(),
            max,
            ahead: 0,
            lease: self.cfg.lease,
            labels: self.cfg.labels.clone(),
            allow_network: self.cfg.docker.allow_network,
            admission: self.cfg.admission.clone(),
        }
    }

    /// One transition: results, releases, lease renewals, taking back, claims and the heartbeat.
    /// `claim`: claim for the free slots, and (with a push budget) ahead of them. The queue is
    /// parsed once per snapshot read: its count, whether it waits on exclusions, and the claim's
    /// choice all come from that one parse (`claim::Claimable`).
    pub(in crate::worker) fn cycle(&mut self, claim: bool, heartbeat: bool) -> Result<()> {
        let ahead = if claim { self.claims_ahead() } else { 0 };
        let free = self.claim_budget();
        let request = (claim && free + ahead > 0).then(|| ClaimRequest {
            ahead,
            ..self.claim_request(free)
        });
        let writers = self
            .remote
            .pacing
            .as_ref()
            .map_or(1, |p| p.active_writers(self.clock.instant()));
        let tasks = self.held.tasks();
        let results = tasks.results();
        let releases = tasks.releases();
        let start_failures = tasks.start_failures();
        let running = tasks.running();
        let leased = tasks.leased();
        let held = tasks.held();
        let excluded = self.held.excluded(self.clock.instant());
        let now = self.clock.now();
        let since_last_write = self.remote.since_last_push(self.clock.instant());
        self.state.writing(since_last_write);
        self.node.last_heartbeat = rfc3339(now);
        self.node.running = running.iter().map(|(id, _)| id.to_string()).collect();
        self.node.skipped = self.cfg.admission.counts();
        self.node.problem = self.held.docker_problem().map(str::to_string);
        let node = self.node.clone();
        let ownership = self.state.ownership();
        let never_started = self.state.never_started();
        let lease = self.cfg.lease;
        let reveal_key = self.state.reveal_key();
        let probe = self.claim_request(1);
        let grid = &self.grid;
        let observer = &mut self.remote.observer;
        let view = &self.remote.view;
        let (mut queue_has_work, mut queue_waits) = (view.queue_has_work(), view.queue_waits());
        let last_tip = view.last_tip();
        let held_here = leased.len();
        let outcome = grid.transact(&self.identity, |snapshot| {
            observer.observe(&grid.repo, snapshot);
            let queue = Claimable::read(&grid.repo, snapshot, &probe, &grid.limits);
            let claimable = queue.count_except(&excluded);
            queue_has_work = claimable > 0;
            queue_waits = queue.any();
            // Claims ahead take at most this node's share of the queue (the tail split).
            let request = request.as_ref().map(|r| {
                let in_progress = snapshot.count(State::InProgress);
                let total = tail_split(r.max, r.ahead, claimable, in_progress, held_here, writers);
                ClaimRequest {
                    max: r.max.min(total),
                    ahead: total.saturating_sub(r.max),
                    ..r.clone()
                }
            });
            let intent = Intent {
                node: node.clone(),
                results: &results,
                releases: &releases,
                start_failures: &start_failures,
                running: &leased,
                held: &held,
                claim: request.as_ref(),
                excluded: &excluded,
                heartbeat,
                ownership,
                never_started: &never_started,
                lease,
                now,
                reveal_key,
                queue: Some(&queue),
            };
            plan_transition(&grid.repo, snapshot, &intent, &grid.limits, observer)
        })?;
        self.remote.note_reads(1);
        let at = self.clock.instant();
        let applied = self.landed(outcome, last_tip);
        self.remote.view.transitioned(Transitioned {
            at,
            queue_has_work,
            queue_waits,
            took_all: request
                .as_ref()
                .is_some_and(|r| applied.claimed.len() < r.max),
            put_back: !applied.unheld.is_empty()
                || !applied.never_started.is_empty()
                || !applied.reaped.is_empty()
                || !releases.is_empty(),
            failed_starts_back: start_failures
                .iter()
                .any(|(id, _, _)| !applied.unrunnable.contains(id)),
        });
        for notice in &applied.notices {
            self.warn(notice);
        }
        for (id, problems) in &applied.invalid {
            self.warn(&format!(
                "failed {id} as invalid: no node will run its file ({problems})"
            ));
        }
        for id in &applied.unrunnable {
            self.warn(&format!(
                "gave {id} up as unrunnable: nodes failed to start it too often"
            ));
            self.held.forget_exclusion(id);
        }
        let mut applied = applied;
        self.record_late(&results, &mut applied);
        self.apply(applied, claim);
        Ok(())
    }

    /// Takes in the outcome of a transition: the reads it took, and a push of ours that landed
    /// (the remote's tip now; what others pushed before it is on its parent line).
    fn landed(&mut self, outcome: Outcome<Applied>, last_tip: Option<gix::ObjectId>) -> Applied {
        match outcome {
            Outcome::Committed {
                commit,
                value,
                stats,
            } => {
                self.remote.note_reads(stats.pushes);
                let pushes = self.remote.pushed(self.clock.instant());
                self.cfg.log.debug(
                    &self.cfg.node_id,
                    &format!(
                        "pushed in {} attempt(s), {} lost race(s); {} push(es) and {} read(s) so far",
                        stats.pushes, stats.lost_races, pushes, self.remote.reads
                    ),
                );
                self.state.wrote();
                // Our commit is the remote's tip now: the next poll sees nothing new unless
                // someone pushed. What others pushed before it is on its parent line.
                self.saw_landed(Some(commit), Some(commit), last_tip);
                if let Some(pacing) = self.remote.pacing.as_mut() {
                    pacing.pushed(self.clock.instant());
                }
                value
            }
            Outcome::Settled { value, stats } => {
                self.remote.note_reads(stats.pushes);
                value
            }
            Outcome::NotApplicable { stats } => {
                self.remote.note_reads(stats.pushes);
                Applied::default()
            }
        }
    }

    /// Results whose task is on `main` no more: when the archive holds the task (it finished
    /// elsewhere after this node was presumed dead, and was archived), the result joins the
    /// archived result's `late_results` (`docs/ARCHITECTURE.md#archive`), never dropped. When the
    /// archive cannot be reached they stay held (and spooled) for the next transition.
    fn record_late(&mut self, results: &[TaskResult], applied: &mut Applied) {
        if applied.orphaned.is_empty() {
            return;
        }
        let late: Vec<TaskResult> = results
            .iter()
            .filter(|r| {
                applied
                    .orphaned
                    .iter()
                    .any(|(id, a)| *id == r.task_id && *a == r.attempt())
            })
            .cloned()
            .collect();
        match append_late(&self.grid, &self.identity, &late) {
            Ok(held) => {
                let (archived, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut applied.orphaned)
                    .into_iter()
                    .partition(|(id, _)| held.iter().any(|h| *id == h.as_str()));
                for (id, attempt) in &archived {
                    self.log(&format!(
                        "{id} was archived meanwhile: its result (attempt {attempt}) is kept in dgrid-archive as a late result"
                    ));
                }
                applied.recorded.extend(archived);
                applied.orphaned = gone;
            }
            Err(e) => {
                self.warn(&format!(
                    "cannot look for archived tasks in dgrid-archive ({e:#}); keeping {} result(s) to try again",
                    applied.orphaned.len()
                ));
                applied.orphaned.clear();
            }
        }
    }

    fn apply(&mut self, applied: Applied, claimed_something_wanted: bool) {
        for (id, attempt) in &applied.recorded {
            self.state.unspool(id, *attempt);
        }
        for (id, attempt) in &applied.discarded {
            self.log(&format!(
                "dropped the result of {id} (attempt {attempt}): the task no longer holds this node's instance (taken back, or the task was put back)"
            ));
            self.state.unspool(id, *attempt);
        }
        for (id, attempt) in &applied.orphaned {
            self.warn(&format!(
                "{id} was removed from the grid; its result (attempt {attempt}) has nowhere to go"
            ));
            self.state.unspool(id, *attempt);
        }
        self.settle_held(&applied);
        for (id, node) in &applied.reaped {
            if *node == self.cfg.node_id {
                self.log(&format!("took {id} back from this node's previous run"));
            } else {
                self.log(&format!("took {id} back from {node}: its lease expired"));
            }
        }
        for id in &applied.never_started {
            self.log(&format!(
                "put {id} back in the queue without using an attempt: this node's previous run claimed it ahead and never started it"
            ));
        }
        for id in &applied.unheld {
            self.warn(&format!(
                "put {id} back in the queue: the push that claimed it seemed to fail, but the remote took it"
            ));
        }
        if claimed_something_wanted && !applied.claimed.is_empty() {
            self.budget.claimed();
        }
        self.take_claimed(applied.claimed);
    }
}

//! The worker's transition: what it owes the grid and wants from it (results, releases, leases
//! to renew, claims, its heartbeat) as one intent, landed by the compare-and-swap loop in one push
//! (`docs/ARCHITECTURE.md#compare-and-swap`), and what landed taken back into the worker.

use super::Worker;
use crate::exec::docker;
use crate::grid::{
    any_claimable, append_late, claimed_attempt, count_claimable_except, plan_transition, Applied,
    ClaimRequest, Intent, Outcome,
};
use crate::layout::State;
use crate::task::{Attempt, TaskResult, TaskSpec};
use crate::time::rfc3339;
use crate::worker::pacing::tail_split;
use anyhow::Result;
use std::collections::HashSet;

impl Worker {
    /// Logs what the operator's policy held back since the last look: tasks left queued by the
    /// admission gate (once per file version and reason) and a full hourly window (once a spell).
    pub(super) fn say_policy(&mut self) {
        let hourly = self.budget.tick(self.clock.instant(), self.clock.now());
        for line in self.cfg.admission.take_lines().into_iter().chain(hourly) {
            self.log(&line);
        }
    }

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
    /// `claim`: claim for the free slots, and (with a push budget) ahead of them.
    pub(super) fn cycle(&mut self, claim: bool, heartbeat: bool) -> Result<()> {
        let ahead = if claim { self.claims_ahead() } else { 0 };
        let free = self.claim_budget();
        let request = (claim && free + ahead > 0).then(|| ClaimRequest {
            ahead,
            ..self.claim_request(free)
        });
        let writers = self
            .pacing
            .as_ref()
            .map_or(1, |p| p.active_writers(self.clock.instant()));
        let results = self.tasks.results();
        let releases = self.tasks.releases();
        let start_failures = self.tasks.start_failures();
        let excluded = self.exclusions.active(self.clock.instant());
        let running = self.tasks.running();
        let leased = self.tasks.leased();
        let held = self.tasks.held();
        let now = self.clock.now();
        self.session.ownership.since_last_write = self
            .last_push
            .map(|at| self.clock.instant().saturating_duration_since(at));
        self.node.last_heartbeat = rfc3339(now);
        self.node.running = running.iter().map(|(id, _)| id.to_string()).collect();
        self.node.skipped = self.cfg.admission.counts();
        self.node.problem = self.docker.problem().map(str::to_string);
        let node = self.node.clone();
        let ownership = &self.session.ownership;
        let never_started = self.never_started.claims();
        let lease = self.cfg.lease;
        let reveal_key = &self.reveal_key;
        let probe = self.claim_request(1);
        let grid = &self.grid;
        let observer = &mut self.observer;
        let mut queue_has_work = self.view.queue_has_work;
        let mut queue_waits = self.view.queue_waits;
        let last_tip = self.view.last_tip;
        let held_here = leased.len();
        let outcome = grid.transact(&self.identity, |snapshot| {
            observer.observe(&grid.repo, snapshot);
            let claimable =
                count_claimable_except(&grid.repo, snapshot, &probe, &grid.limits, &excluded);
            queue_has_work = claimable > 0;
            queue_waits = any_claimable(&grid.repo, snapshot, &probe, &grid.limits);
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
            };
            plan_transition(&grid.repo, snapshot, &intent, &grid.limits, observer)
        })?;
        self.note_reads(1);
        self.view.queue_has_work = queue_has_work;
        self.view.queue_waits = queue_waits;
        self.view.take_back_due = false;
        self.view.claim_gone = false;
        self.view.quorum_due = false;
        self.view.looked_at = Some(self.clock.instant());
        let applied = match outcome {
            Outcome::Committed {
                commit,
                value,
                stats,
            } => {
                self.note_reads(stats.pushes);
                self.pushes += 1;
                self.cfg.log.debug(
                    &self.cfg.node_id,
                    &format!(
                        "pushed in {} attempt(s), {} lost race(s); {} push(es) and {} read(s) so far",
                        stats.pushes, stats.lost_races, self.pushes, self.reads
                    ),
                );
                self.last_push = Some(self.clock.instant());
                self.session.ownership.started = true;
                // Our commit is the remote's tip now: the next poll sees nothing new unless
                // someone pushed. What others pushed before it is on its parent line.
                self.saw_landed(Some(commit), Some(commit), last_tip);
                if let Some(pacing) = self.pacing.as_mut() {
                    pacing.pushed(self.clock.instant());
                }
                value
            }
            Outcome::Settled { value, stats } => {
                self.note_reads(stats.pushes);
                value
            }
            Outcome::NotApplicable { stats } => {
                self.note_reads(stats.pushes);
                Applied::default()
            }
        };
        if request
            .as_ref()
            .is_some_and(|r| applied.claimed.len() < r.max)
        {
            self.view.queue_has_work = false; // we took everything claimable
        }
        if !applied.unheld.is_empty()
            || !applied.never_started.is_empty()
            || !applied.reaped.is_empty()
            || !releases.is_empty()
        {
            self.view.queue_has_work = true; // tasks went back to the queue in this very commit
        }
        for notice in &applied.notices {
            self.warn(notice);
        }
        for id in &applied.unrunnable {
            self.warn(&format!(
                "gave {id} up as unrunnable: nodes failed to start it too often"
            ));
            self.exclusions.forget(id);
        }
        if start_failures
            .iter()
            .any(|(id, _, _)| !applied.unrunnable.contains(id))
        {
            self.view.queue_waits = true; // back in the queue in this very commit, excluded here
        }
        let mut applied = applied;
        self.record_late(&results, &mut applied);
        self.apply(applied, claim);
        Ok(())
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
            self.spool.remove(id, *attempt);
        }
        for (id, attempt) in &applied.discarded {
            self.log(&format!(
                "dropped the result of {id} (attempt {attempt}): the task no longer holds this node's instance (taken back, or the task was put back)"
            ));
            self.spool.remove(id, *attempt);
        }
        for (id, attempt) in &applied.orphaned {
            self.warn(&format!(
                "{id} was removed from the grid; its result (attempt {attempt}) has nowhere to go"
            ));
            self.spool.remove(id, *attempt);
        }
        for id in self.tasks.settle(&applied) {
            self.log(&format!(
                "dropped {id}, claimed ahead: it is no longer ours (cancelled, or taken over)"
            ));
        }
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
        self.start_waiting();
        for spec in applied.claimed {
            let attempt = claimed_attempt(&spec, &self.cfg.node_id);
            if self.tasks.containers() < self.cfg.slots {
                self.log(&format!(
                    "claimed {} (attempt {attempt}), running {}",
                    spec.id, spec.image
                ));
                self.start(spec, attempt);
            } else {
                self.log(&format!(
                    "claimed {} (attempt {attempt}) ahead: it starts when a slot frees",
                    spec.id
                ));
                self.tasks.hold(spec, attempt);
            }
        }
        self.note_never_started();
    }

    /// Notes the tasks waiting for a slot as never started (`never_started.rs`); once this
    /// process has pushed, the previous run's claims are settled and leave the note.
    fn note_never_started(&mut self) {
        let waiting: Vec<&TaskSpec> = self.tasks.waiting_specs().collect();
        let noted = if self.session.ownership.started {
            let keys: HashSet<(String, Attempt)> = waiting
                .iter()
                .filter_map(|s| s.claim.as_ref().map(|c| (s.id.to_string(), c.attempt)))
                .collect();
            self.never_started.keep_only(&keys)
        } else {
            Ok(())
        };
        if let Err(e) = noted.and_then(|()| self.never_started.add(waiting)) {
            self.warn(&format!("{e:#}"));
        }
    }

    /// Starts tasks claimed ahead while slots are free: no push needed.
    pub(super) fn start_waiting(&mut self) {
        while self.tasks.containers() < self.cfg.slots {
            let Some((spec, attempt)) = self.tasks.next_waiting() else {
                return;
            };
            // Out of the note before the container may run: a task noted as never started goes
            // back without using an attempt after a crash.
            if let Err(e) = self.never_started.remove(&spec.id, attempt) {
                self.warn(&format!("{e:#}; {} waits", spec.id));
                self.tasks.hold(spec, attempt);
                return;
            }
            self.log(&format!(
                "starting {} (attempt {attempt}), claimed ahead, running {}",
                spec.id, spec.image
            ));
            self.start(spec, attempt);
        }
    }

    fn start(&mut self, spec: TaskSpec, attempt: Attempt) {
        // This node's policy, decided before docker is asked anything (asking would resolve the
        // image): the task goes back as one this node could not start, and another node that
        // allows its registry may run it; if none does, it ends as unrunnable with this reason.
        if let Some(why) = docker::pull_refusal(&self.cfg.docker, &spec) {
            let pause = self.exclusions.failed(&spec.id, self.clock.instant());
            self.warn(&format!(
                "not starting {} here: {why}; putting it back with the failure noted, not claiming it here for {}s",
                spec.id,
                pause.as_secs()
            ));
            self.tasks.refused(&spec.id, attempt, why);
            return;
        }
        let line = self.cfg.log.task_line(&spec.id, spec.timeout);
        self.budget.started(self.clock.instant());
        let exits = self.exits_tx.clone();
        self.tasks.start(
            spec,
            attempt,
            &self.cfg.docker,
            &self.cfg.node_id,
            line,
            exits,
        );
    }
}

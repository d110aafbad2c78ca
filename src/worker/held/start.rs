//! Starting held tasks: a claimed task runs at once when a slot is free, or waits for one
//! (claimed ahead, noted in the state dir as never started until its container may run).

use super::super::Worker;
use crate::exec::docker;
use crate::grid::claimed_attempt;
use crate::task::{Attempt, TaskSpec};

impl Worker {
    /// Takes the tasks a transition claimed: each starts while a slot is free, the others wait
    /// for one (after the tasks already waiting), noted as never started.
    pub(in crate::worker) fn take_claimed(&mut self, claimed: Vec<TaskSpec>) {
        self.start_waiting();
        for spec in claimed {
            let attempt = claimed_attempt(&spec, &self.cfg.node_id);
            if self.held.tasks.containers() < self.cfg.slots {
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
                self.held.tasks.hold(spec, attempt);
            }
        }
        let waiting: Vec<&TaskSpec> = self.held.tasks.waiting_specs().collect();
        if let Err(e) = self.state.note_never_started(waiting) {
            self.warn(&format!("{e:#}"));
        }
    }

    /// Starts tasks claimed ahead while slots are free: no push needed.
    pub(in crate::worker) fn start_waiting(&mut self) {
        while self.held.tasks.containers() < self.cfg.slots {
            let Some((spec, attempt)) = self.held.tasks.next_waiting() else {
                return;
            };
            // Out of the note before the container may run: a task noted as never started goes
            // back without using an attempt after a crash.
            if let Err(e) = self.state.starting(&spec.id, attempt) {
                self.warn(&format!("{e:#}; {} waits", spec.id));
                self.held.tasks.hold(spec, attempt);
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
            let pause = self.held.exclusions.failed(&spec.id, self.clock.instant());
            self.warn(&format!(
                "not starting {} here: {why}; putting it back with the failure noted, not claiming it here for {}s",
                spec.id,
                pause.as_secs()
            ));
            self.held.tasks.refused(&spec.id, attempt, why);
            return;
        }
        let line = self.cfg.log.task_line(&spec.id, spec.timeout);
        self.budget.started(self.clock.instant());
        if let Some(starts) = self
            .budget
            .hourly_noted(self.clock.instant(), self.clock.now())
        {
            // Noted before the container starts: a crash right after still counts this start.
            if let Err(e) = self.state.note_hourly_starts(&starts) {
                self.warn(&format!(
                    "{e:#}: the next run may start more than --max-tasks-per-hour"
                ));
            }
        }
        let exits = self.held.exits_tx.clone();
        self.held.tasks.start(
            spec,
            attempt,
            &self.cfg.docker,
            &self.cfg.node_id,
            line,
            exits,
        );
    }
}

//! The life of each task this worker process holds, from its claim until the grid has what it is
//! owed: its container runs in a thread of its own; it may be stopped (for a shutdown, or because
//! the claim was lost); when the container ends, the result is spooled and waits to be recorded,
//! or the task waits to be put back in the queue. One state per task, in one map; the transition's
//! intent (results, releases, leases to renew, tasks held) is read off that map.

use crate::exec::docker::{self, DockerConfig, Execution, InfraError};
use crate::grid::Applied;
use crate::task::{self, Attempt, SignedBy, Status, TaskId, TaskResult, TaskSpec};
use crate::time::rfc3339;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

/// A running container: the flag that kills it, and its live line on a terminal.
pub struct Run {
    kill: Arc<AtomicBool>,
    line: Option<indicatif::ProgressBar>,
}

impl Run {
    fn kill(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }

    fn clear_line(&self) {
        if let Some(line) = &self.line {
            line.finish_and_clear();
        }
    }
}

/// Why a running task is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Shutdown: the task goes back to the queue without using an attempt.
    Release,
    /// Our claim was taken over or the task removed: nothing to report.
    ClaimLost,
}

/// Where one held task is in its life.
pub enum Phase {
    /// Claimed ahead (with a push budget): it waits for a free slot, no push needed to start it;
    /// its lease is renewed with every push.
    Waiting(Box<TaskSpec>),
    /// Its container runs; its lease is renewed with every push.
    Running(Run),
    /// Its container was told to stop; its lease is no longer renewed.
    Stopping { run: Run, reason: StopReason },
    /// Its result is in the spool, waiting to be recorded.
    Finished(Box<TaskResult>),
    /// A replicated task's result, committed (or revealed) on the grid and waiting for the
    /// quorum: kept in the spool, sent again with each transition (its lease renewed by it),
    /// not a reason to push by itself (`grid::replicated::quorum::due` says when one is).
    Awaiting(Box<TaskResult>),
    /// It waits to be put back in the queue without using its attempt.
    Releasing,
    /// Its container could not start here while docker answered (docker's message): it waits to
    /// be put back with the failure noted, or failed as unrunnable.
    CouldNotStart(String),
}

/// The message a task's thread sends when its container ended.
pub struct Exited {
    pub spec: TaskSpec,
    pub attempt: Attempt,
    pub outcome: Result<Execution, InfraError>,
}

/// What the end of a container means for its task.
#[derive(Debug)]
pub enum TaskEnd {
    /// The task is no longer ours (cancelled, or taken over): nothing to report.
    NotOurs,
    /// Stopped for a shutdown: it now waits to be released.
    Released,
    /// Its result, to be spooled and then handed to [`HeldTasks::finished`].
    Report(Box<TaskResult>),
    /// Docker could not run it: it now waits to be released.
    CannotRun(InfraError),
}

/// Every task this process holds, keyed by (task id, attempt).
#[derive(Default)]
pub struct HeldTasks {
    tasks: BTreeMap<(TaskId, Attempt), Phase>,
}

impl HeldTasks {
    /// The results found in the spool at start-up, still to be recorded.
    pub fn from_spooled(results: Vec<TaskResult>) -> HeldTasks {
        let mut held = HeldTasks::default();
        for result in results {
            held.finished(result);
        }
        held
    }

    /// Starts `spec`'s container in a thread of its own; its end is sent on `exits`.
    pub fn start(
        &mut self,
        spec: TaskSpec,
        attempt: Attempt,
        docker: &DockerConfig,
        node_id: &str,
        line: Option<indicatif::ProgressBar>,
        exits: mpsc::Sender<Exited>,
    ) {
        let kill = self.track(&spec.id, attempt, line);
        let docker = docker.clone();
        let node_id = node_id.to_string();
        std::thread::spawn(move || {
            let outcome = docker::run(&docker, &spec, &node_id, attempt, &kill);
            // The worker may have stopped listening (it is ending on an error): nothing to do.
            let _ = exits.send(Exited {
                spec,
                attempt,
                outcome,
            });
        });
    }

    /// Holds a task claimed ahead, to start when a slot frees.
    pub fn hold(&mut self, spec: TaskSpec, attempt: Attempt) {
        let key = (spec.id.clone(), attempt);
        self.tasks.insert(key, Phase::Waiting(Box::new(spec)));
    }

    /// The waiting task to start next (the highest priority, then the first claimed), taken out
    /// of the waiting ones: the caller starts it.
    pub fn next_waiting(&mut self) -> Option<(TaskSpec, Attempt)> {
        let key = self
            .tasks
            .iter()
            .filter_map(|(key, phase)| match phase {
                Phase::Waiting(spec) => Some((key, spec.priority())),
                _ => None,
            })
            .max_by_key(|(_, priority)| *priority)?
            .0
            .clone();
        match self.tasks.remove(&key) {
            Some(Phase::Waiting(spec)) => Some((*spec, key.1)),
            _ => None,
        }
    }

    /// The tasks waiting for a slot, with their claims.
    pub fn waiting_specs(&self) -> impl Iterator<Item = &TaskSpec> {
        self.tasks.values().filter_map(|phase| match phase {
            Phase::Waiting(spec) => Some(spec.as_ref()),
            _ => None,
        })
    }

    /// How many tasks wait for a slot.
    pub fn waiting(&self) -> usize {
        self.tasks
            .values()
            .filter(|phase| matches!(phase, Phase::Waiting(_)))
            .count()
    }

    /// Every task waiting for a slot goes back to the queue without using its attempt (a
    /// shutdown, or docker not usable here).
    pub fn release_waiting(&mut self) -> Vec<TaskId> {
        self.release_waiting_below(i64::MAX)
    }

    /// The tasks waiting for a slot whose priority is below `priority` go back to the queue
    /// without using their attempt: a worker does not sit on lower-priority tasks while a
    /// higher one waits in the queue (`i64::MAX`: all of them).
    pub fn release_waiting_below(&mut self, priority: i64) -> Vec<TaskId> {
        let mut released = Vec::new();
        for ((id, _), phase) in &mut self.tasks {
            let below = match phase {
                Phase::Waiting(spec) => priority == i64::MAX || spec.priority() < priority,
                _ => false,
            };
            if below {
                *phase = Phase::Releasing;
                released.push(id.clone());
            }
        }
        released
    }

    /// Notes `id`'s container as running; returns the flag that kills it.
    fn track(
        &mut self,
        id: &TaskId,
        attempt: Attempt,
        line: Option<indicatif::ProgressBar>,
    ) -> Arc<AtomicBool> {
        let kill = Arc::new(AtomicBool::new(false));
        let run = Run {
            kill: kill.clone(),
            line,
        };
        self.tasks
            .insert((id.clone(), attempt), Phase::Running(run));
        kill
    }

    /// A container ended: its task leaves the running ones. `None` if it was not running here.
    /// `signed_by`: who signed the task, when this node checks signatures (for the result).
    pub fn exited(
        &mut self,
        exited: Exited,
        node_id: &str,
        signed_by: Option<SignedBy>,
    ) -> Option<TaskEnd> {
        let key = (exited.spec.id.clone(), exited.attempt);
        let reason = match self.tasks.remove(&key)? {
            Phase::Running(run) => {
                run.clear_line();
                None
            }
            Phase::Stopping { run, reason } => {
                run.clear_line();
                Some(reason)
            }
            other => {
                // Not a container of ours: leave the task as it was.
                self.tasks.insert(key, other);
                return None;
            }
        };
        Some(match (exited.outcome, reason) {
            (Ok(_), Some(StopReason::ClaimLost)) => TaskEnd::NotOurs,
            (Ok(exec), Some(StopReason::Release)) if exec.status == Status::Cancelled => {
                self.tasks.insert(key, Phase::Releasing);
                TaskEnd::Released
            }
            (Ok(exec), _) => {
                let mut result = build_result(&exited.spec, node_id, exited.attempt, exec);
                result.signed_by = signed_by;
                result.fit(task::MAX_FILE_BYTES as usize);
                TaskEnd::Report(Box::new(result))
            }
            (Err(infra), _) => {
                self.tasks.insert(key, Phase::Releasing);
                TaskEnd::CannotRun(infra)
            }
        })
    }

    /// `id`'s container could not start here for a reason of its own (docker answered): it goes
    /// back with the failure noted instead of a plain release.
    pub fn could_not_start(&mut self, id: &TaskId, attempt: Attempt, reason: String) {
        if let Some(phase) = self.tasks.get_mut(&(id.clone(), attempt)) {
            if matches!(phase, Phase::Releasing) {
                *phase = Phase::CouldNotStart(reason);
            }
        }
    }

    /// `id` was not started at all, because this node refuses what it needs (`reason`): it goes
    /// back with the failure noted, as a container that could not start does.
    pub fn refused(&mut self, id: &TaskId, attempt: Attempt, reason: String) {
        self.tasks
            .insert((id.clone(), attempt), Phase::CouldNotStart(reason));
    }

    /// `result` is in the spool: it waits to be recorded.
    pub fn finished(&mut self, result: TaskResult) {
        let key = (result.task_id.clone(), result.attempt());
        self.tasks.insert(key, Phase::Finished(Box::new(result)));
    }

    /// Shutdown after the grace period: kills every running container, for its task to be put
    /// back in the queue. Returns the ids of the tasks it kills.
    pub fn stop_for_shutdown(&mut self) -> Vec<TaskId> {
        self.stop_running(|_| true, StopReason::Release)
    }

    /// Kills every container (stopping or not) at once, keeping nothing of theirs.
    pub fn kill_all(&self) {
        for phase in self.tasks.values() {
            if let Phase::Running(run) | Phase::Stopping { run, .. } = phase {
                run.kill();
            }
        }
    }

    /// Forgets a container killed by [`kill_all`](HeldTasks::kill_all).
    pub fn forget(&mut self, exited: &Exited) {
        let key = (exited.spec.id.clone(), exited.attempt);
        if let Some(Phase::Running(_) | Phase::Stopping { .. }) = self.tasks.get(&key) {
            self.tasks.remove(&key);
        }
    }

    /// Takes in what a transition landed: recorded (or orphaned) results leave, releases are done,
    /// and tasks whose claim was lost are stopped, or (waiting for a slot) dropped: returns the
    /// ids of those dropped.
    pub fn settle(&mut self, applied: &Applied) -> Vec<TaskId> {
        let dropped: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|((id, _), phase)| {
                matches!(phase, Phase::Waiting(_)) && applied.lost_claims.contains(id)
            })
            .map(|((id, _), _)| id.clone())
            .collect();
        let done = |key: &(TaskId, Attempt)| {
            applied.recorded.contains(key)
                || applied.orphaned.contains(key)
                || applied.discarded.contains(key)
        };
        for (key, phase) in &mut self.tasks {
            if let Phase::Finished(result) = phase {
                if applied.awaiting.contains(key) {
                    *phase = Phase::Awaiting(result.clone());
                }
            }
        }
        self.tasks.retain(|key, phase| match phase {
            Phase::Finished(_) | Phase::Awaiting(_) => !done(key),
            Phase::Releasing | Phase::CouldNotStart(_) => false,
            Phase::Running(_) | Phase::Stopping { .. } => true,
            // A cancel reaches a task waiting here as it reaches a running one: nothing to report.
            Phase::Waiting(_) => !applied.lost_claims.contains(&key.0),
        });
        for id in &applied.lost_claims {
            self.stop_running(|task| task == id, StopReason::ClaimLost);
        }
        dropped
    }

    fn stop_running(&mut self, which: impl Fn(&str) -> bool, reason: StopReason) -> Vec<TaskId> {
        let mut stopped = Vec::new();
        for ((id, _), phase) in &mut self.tasks {
            *phase = match std::mem::replace(phase, Phase::Releasing) {
                Phase::Running(run) if which(id) => {
                    run.kill();
                    stopped.push(id.clone());
                    Phase::Stopping { run, reason }
                }
                other => other,
            };
        }
        stopped
    }

    /// Whether a result or a release waits to be pushed.
    pub fn owed_to_grid(&self) -> bool {
        self.tasks.values().any(|phase| {
            matches!(
                phase,
                Phase::Finished(_) | Phase::Releasing | Phase::CouldNotStart(_)
            )
        })
    }

    /// Results waiting to be recorded, and those awaiting a quorum (sent with every transition).
    pub fn results(&self) -> Vec<TaskResult> {
        self.tasks
            .values()
            .filter_map(|phase| match phase {
                Phase::Finished(result) | Phase::Awaiting(result) => {
                    Some(TaskResult::clone(result))
                }
                _ => None,
            })
            .collect()
    }

    /// (id, attempt) of tasks waiting to be put back in the queue.
    pub fn releases(&self) -> Vec<(TaskId, Attempt)> {
        self.keys_in(|phase| matches!(phase, Phase::Releasing))
    }

    /// (id, attempt, docker's message) of tasks that could not start here.
    pub fn start_failures(&self) -> Vec<(TaskId, Attempt, String)> {
        self.tasks
            .iter()
            .filter_map(|((id, attempt), phase)| match phase {
                Phase::CouldNotStart(why) => Some((id.clone(), *attempt, why.clone())),
                _ => None,
            })
            .collect()
    }

    /// (id, attempt) of tasks running and not being stopped.
    pub fn running(&self) -> Vec<(TaskId, Attempt)> {
        self.keys_in(|phase| matches!(phase, Phase::Running(_)))
    }

    /// (id, attempt) of the tasks whose leases are renewed: running, or waiting for a slot.
    pub fn leased(&self) -> Vec<(TaskId, Attempt)> {
        self.keys_in(|phase| matches!(phase, Phase::Running(_) | Phase::Waiting(_)))
    }

    /// Ids of tasks this node's claim should still hold on the grid: with a container here,
    /// waiting for a slot, or a result awaiting its quorum (an entry whose lease is renewed).
    /// One missing from `in_progress` was cancelled, taken over or settled.
    pub fn claimed(&self) -> impl Iterator<Item = &str> {
        self.tasks
            .iter()
            .filter(|(_, phase)| {
                matches!(
                    phase,
                    Phase::Running(_)
                        | Phase::Stopping { .. }
                        | Phase::Waiting(_)
                        | Phase::Awaiting(_)
                )
            })
            .map(|((id, _), _)| id.as_str())
    }

    /// Whether this node holds a claim on the grid that only its pushes keep alive: every phase
    /// does until a push lands it, a finished result too (its task stays in progress under this
    /// node's claim until recorded), so the leases of a worker holding only results are renewed
    /// (by the push that records them) out of turn before they run out.
    pub fn keeps_claims(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Whether one push settles everything held: only results (and, when `releases_too`,
    /// releases) wait to be pushed; nothing runs or waits for a slot.
    pub fn settled_by_one_push(&self, releases_too: bool) -> bool {
        self.tasks.values().all(|phase| match phase {
            Phase::Finished(_) => true,
            Phase::Releasing => releases_too,
            _ => false,
        })
    }

    /// Every task held, in any phase: a claim of this node on a task not among them runs nowhere.
    pub fn held(&self) -> Vec<String> {
        self.tasks.keys().map(|(id, _)| id.to_string()).collect()
    }

    /// Ids of tasks with a container here, running or being stopped.
    pub fn with_container(&self) -> impl Iterator<Item = &str> {
        self.tasks
            .iter()
            .filter(|(_, phase)| matches!(phase, Phase::Running(_) | Phase::Stopping { .. }))
            .map(|((id, _), _)| id.as_str())
    }

    /// How many containers run here (each takes a slot until it ends).
    pub fn containers(&self) -> usize {
        self.with_container().count()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn keys_in(&self, phase_matches: impl Fn(&Phase) -> bool) -> Vec<(TaskId, Attempt)> {
        self.tasks
            .iter()
            .filter(|(_, phase)| phase_matches(phase))
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// The result file of a task that ran here: the task as claimed, without its claim.
fn build_result(spec: &TaskSpec, node_id: &str, attempt: Attempt, exec: Execution) -> TaskResult {
    let mut task = spec.clone();
    task.claim = None;
    task.attempts = None;
    let duration = (exec.finished_at - exec.started_at)
        .num_milliseconds()
        .max(0) as u64;
    TaskResult {
        task_id: spec.id.clone(),
        node_id: node_id.to_string(),
        exit_code: exec.exit_code,
        stdout: exec.stdout.text(),
        stderr: exec.stderr.text(),
        timestamp: rfc3339(exec.finished_at),
        status: exec.status,
        started_at: Some(rfc3339(exec.started_at)),
        finished_at: Some(rfc3339(exec.finished_at)),
        duration_ms: Some(duration),
        recorded_attempt: Some(attempt),
        stdout_info: Some(exec.stdout.info),
        stderr_info: Some(exec.stderr.info),
        task: Some(task),
        late_results: Vec::new(),
        signed_by: None,
        quorum: None,
    }
}

#[cfg(test)]
#[path = "task_run_tests.rs"]
mod tests;

impl HeldTasks {
    /// Results of replicated tasks committed on the grid and waiting for their quorum.
    pub fn awaiting(&self) -> Vec<TaskResult> {
        self.tasks
            .values()
            .filter_map(|phase| match phase {
                Phase::Awaiting(result) => Some(TaskResult::clone(result)),
                _ => None,
            })
            .collect()
    }
}

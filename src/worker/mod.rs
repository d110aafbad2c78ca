//! The worker loop: the only place where the grid (git) and the executor (docker) meet.
//!
//! Poll cheaply; claim up to the free slots in one push; run each task in its own thread; spool
//! each result to disk; report results *and* claim the next tasks in one push; heartbeat only when
//! due; take back the tasks of dead nodes; on SIGTERM/SIGINT stop claiming, let tasks finish within
//! the grace period, then kill and release them, and mark the node stopped.

pub mod observe;
pub mod spool;

use crate::exec::docker::{self, DockerConfig, Execution, InfraError};
use crate::gitcmd;
use crate::grid::claim::{self, rfc3339};
use crate::grid::cycle::{self, Applied, Intent};
use crate::grid::ownership::{NodeIdInUse, Ownership};
use crate::grid::sync::RemoteRefused;
use crate::grid::{Grid, Identity, Outcome, Snapshot};
use crate::layout::State;
use crate::log::Log;
use crate::node::{NodeRecord, NodeState};
use crate::task::{self, Attempt, Status, TaskId, TaskResult, TaskSpec};
use anyhow::{Context, Result};
use chrono::Utc;
use gix::ObjectId;
use observe::Observer;
use spool::Spool;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Config {
    pub node_id: String,
    pub labels: Vec<String>,
    pub slots: usize,
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    pub lease: Duration,
    pub clock_skew: Duration,
    pub grace: Duration,
    pub once: bool,
    pub max_tasks: Option<u64>,
    pub until_empty: bool,
    pub docker: DockerConfig,
    /// This node's own folder in the state dir (lock, spool).
    pub node_dir: PathBuf,
    pub log: Log,
}

/// How the worker ended, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Ran what it was asked to (or was told to stop).
    Done { tasks: u64 },
    /// `--once` found nothing to claim.
    NothingToDo,
}

/// Counts SIGINT/SIGTERM: the first asks for a graceful stop, the second for an immediate one.
#[derive(Default)]
pub struct StopRequests(pub AtomicUsize);

impl StopRequests {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// The test hook that simulates a crash at the worst moment: after a result is spooled, before it
/// is pushed (`DGRID_FAILPOINT=after-spool`).
const FAILPOINT: &str = "DGRID_FAILPOINT";

/// In the node's folder of the state dir: the sessions of the last processes started from here.
const SESSION_FILE: &str = "sessions";

/// Adds `session` to the sessions noted in `path` before this process writes anything, so that
/// whatever record it pushes, a later process started from here knows it for this state dir's,
/// even if this one is killed at any instant. Returns the sessions noted before.
fn note_session(path: &std::path::Path, session: &str) -> Result<Vec<String>> {
    let before: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    // The record on the remote is the last writer's: a few sessions back is enough, unless that
    // many processes in a row were killed before their first write (then the lease runs out).
    let kept = before.iter().rev().take(8).rev().map(String::as_str);
    let text: String = kept.chain([session]).map(|s| format!("{s}\n")).collect();
    spool::write_durably(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(before)
}

struct Running {
    attempt: Attempt,
    /// The task's live line on a terminal; cleared when it finishes.
    line: Option<indicatif::ProgressBar>,
    kill: Arc<AtomicBool>,
    /// Why we are stopping it, if we are.
    stopping: Option<StopReason>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StopReason {
    /// Shutdown: the task goes back to the queue without using an attempt.
    Release,
    /// Our claim was taken over or the task removed: nothing to report.
    ClaimLost,
}

struct Finished {
    spec: TaskSpec,
    attempt: Attempt,
    outcome: Result<Execution, InfraError>,
}

pub struct Worker {
    grid: Grid,
    cfg: Config,
    identity: Identity,
    node: NodeRecord,
    spool: Spool,
    observer: Observer,
    running: HashMap<TaskId, Running>,
    pending: Vec<TaskResult>,
    releases: Vec<(TaskId, Attempt)>,
    tx: mpsc::Sender<Finished>,
    rx: mpsc::Receiver<Finished>,
    last_push: Option<Instant>,
    last_tip: Option<ObjectId>,
    queue_has_work: bool,
    reap_due: bool,
    infra_until: Option<Instant>,
    infra_backoff: Duration,
    started_tasks: u64,
    claimed_any: bool,
    stop_requests: Arc<StopRequests>,
    stop_since: Option<Instant>,
    /// Transitions that failed in a row (network trouble).
    remote_failures: u32,
    ownership: Ownership,
    _lock: std::fs::File,
}

impl Worker {
    pub fn new(grid: Grid, cfg: Config, stop_requests: Arc<StopRequests>) -> Result<Worker> {
        std::fs::create_dir_all(&cfg.node_dir)
            .with_context(|| format!("cannot create {}", cfg.node_dir.display()))?;
        let lock_path = cfg.node_dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            anyhow::bail!(
                "another worker is already running as node {:?} with this state dir ({}); give each worker its own --node-id",
                cfg.node_id,
                cfg.node_dir.display()
            );
        }
        let spool = Spool::open(&cfg.node_dir.join("spool"))?;
        let session = format!("{:016x}", fastrand::u64(..));
        let ownership = Ownership {
            previous_sessions: note_session(&cfg.node_dir.join(SESSION_FILE), &session)?,
            session,
            started: false,
            silence: cfg.lease + cfg.clock_skew,
        };
        let now = rfc3339(Utc::now());
        let node = NodeRecord {
            id: cfg.node_id.clone(),
            hostname: crate::node::hostname(),
            version: env!("CARGO_PKG_VERSION").into(),
            labels: cfg.labels.clone(),
            slots: cfg.slots as u32,
            cpus: cfg.docker.max_cpus,
            memory: cfg.docker.max_memory,
            docker_version: None,
            started_at: now.clone(),
            last_heartbeat: now,
            state: NodeState::Running,
            heartbeat_interval: cfg.heartbeat_interval.as_secs(),
            lease: Some(cfg.lease.as_secs()),
            clock_skew: Some(cfg.clock_skew.as_secs()),
            running: Vec::new(),
            completed: 0,
            failed: 0,
            problem: None,
            session: ownership.session.clone(),
        };
        let (tx, rx) = mpsc::channel();
        Ok(Worker {
            identity: Identity::node(&cfg.node_id),
            observer: Observer::new(cfg.lease, cfg.clock_skew),
            grid,
            cfg,
            node,
            spool,
            running: HashMap::new(),
            pending: Vec::new(),
            releases: Vec::new(),
            tx,
            rx,
            last_push: None,
            last_tip: None,
            queue_has_work: true,
            reap_due: false,
            infra_until: None,
            infra_backoff: Duration::ZERO,
            started_tasks: 0,
            claimed_any: false,
            stop_requests,
            stop_since: None,
            remote_failures: 0,
            ownership,
            _lock: lock,
        })
    }

    fn log(&self, message: &str) {
        self.cfg.log.info(&self.cfg.node_id, message);
    }

    fn warn(&self, message: &str) {
        self.cfg.log.warn(&self.cfg.node_id, message);
    }

    pub fn run(mut self) -> Result<Ending> {
        self.take_up_node_id()?;
        // Containers left by a crash of this node: nothing of theirs can be reported any more.
        docker::remove_node_containers(&self.cfg.docker, &self.cfg.node_id);
        self.check_docker();
        self.pending = self.spool.load(&self.grid.limits)?;
        if !self.pending.is_empty() {
            self.log(&format!(
                "pushing {} result(s) spooled before a restart",
                self.pending.len()
            ));
        }
        // Registers the node; claims too, unless a signal came during start-up.
        self.cycle(self.stop_requests.count() == 0, true)?;
        let mut idle_polls: u32 = 0;
        loop {
            self.collect_finished()?;
            self.handle_stop_requests();
            let stopping = self.stop_requests.count() > 0;
            let heartbeat_due = self
                .last_push
                .is_none_or(|t| t.elapsed() >= self.cfg.heartbeat_interval);
            let want_claim =
                !stopping && self.claim_budget() > 0 && self.queue_has_work && self.docker_usable();
            if !self.pending.is_empty()
                || !self.releases.is_empty()
                || want_claim
                || heartbeat_due
                || self.reap_due
            {
                match self.cycle(want_claim, heartbeat_due) {
                    Ok(()) => {
                        idle_polls = 0;
                        self.remote_failures = 0;
                    }
                    Err(e) => self.remote_trouble(e)?,
                }
            }
            if self.finished_work(stopping) {
                break;
            }
            // Wait for a task to finish, or poll the remote when the interval is up.
            let interval = self.cfg.poll_interval * 2u32.pow(idle_polls.min(2));
            match self.rx.recv_timeout(interval.min(self.time_to_heartbeat())) {
                Ok(finished) => {
                    self.finish(finished)?;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.poll()? {
                        idle_polls = 0;
                    } else {
                        idle_polls += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the worker holds a sender")
                }
            }
        }
        self.node.state = NodeState::Stopped;
        self.cycle(false, true)?;
        self.log("stopped");
        if self.cfg.once && !self.claimed_any {
            return Ok(Ending::NothingToDo);
        }
        Ok(Ending::Done {
            tasks: self.started_tasks,
        })
    }

    /// A failed transition: fatal if the remote refused on purpose (the running tasks are stopped
    /// and stay claimed, for another node to take back); otherwise the network or the remote is
    /// having trouble, so wait and try again, longer each time. Results stay in the spool meanwhile.
    fn remote_trouble(&mut self, error: anyhow::Error) -> Result<()> {
        if error.is::<RemoteRefused>() || error.is::<NodeIdInUse>() {
            self.warn(&format!("{error:#}; stopping"));
            self.abort_running();
            return Err(error);
        }
        self.remote_failures += 1;
        let wait =
            (self.cfg.poll_interval * self.remote_failures.min(30)).min(Duration::from_secs(300));
        self.warn(&format!("{error:#}; trying again in {}s", wait.as_secs()));
        std::thread::sleep(wait);
        Ok(())
    }

    /// Kills every running container and waits (a little) for their threads to report.
    fn abort_running(&mut self) {
        for run in self.running.values() {
            run.kill.store(true, Ordering::SeqCst);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.running.is_empty() && Instant::now() < deadline {
            if let Ok(finished) = self.rx.recv_timeout(Duration::from_millis(200)) {
                self.running.remove(&finished.spec.id);
            }
        }
    }

    fn time_to_heartbeat(&self) -> Duration {
        match self.last_push {
            Some(t) => self
                .cfg
                .heartbeat_interval
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        }
    }

    /// How many more tasks to claim now: free slots, within `--max-tasks` and `--once`.
    fn claim_budget(&self) -> usize {
        let free = self.cfg.slots.saturating_sub(self.running.len());
        if self.cfg.once && self.claimed_any {
            return 0;
        }
        match self.cfg.max_tasks {
            Some(max) => free.min(max.saturating_sub(self.started_tasks) as usize),
            None => free,
        }
    }

    fn finished_work(&self, stopping: bool) -> bool {
        let idle = self.running.is_empty() && self.pending.is_empty() && self.releases.is_empty();
        if !idle {
            return false;
        }
        if stopping {
            return true;
        }
        let budget_spent = self.cfg.max_tasks.is_some_and(|m| self.started_tasks >= m)
            || (self.cfg.once && self.claimed_any);
        let nothing_left = (self.cfg.until_empty || self.cfg.once) && !self.queue_has_work;
        budget_spent || nothing_left
    }

    /// Graceful stop, then (after the grace period or a second SIGINT) kill and release.
    fn handle_stop_requests(&mut self) {
        let requests = self.stop_requests.count();
        if requests == 0 {
            return;
        }
        let since = *self.stop_since.get_or_insert_with(Instant::now);
        if self.node.state == NodeState::Running {
            self.node.state = NodeState::Stopping;
            self.log(&format!(
                "stopping: no new tasks; {} running task(s) get {}s to finish",
                self.running.len(),
                self.cfg.grace.as_secs()
            ));
        }
        if requests >= 2 || since.elapsed() >= self.cfg.grace {
            for (id, run) in self
                .running
                .iter_mut()
                .filter(|(_, r)| r.stopping.is_none())
            {
                self.cfg.log.info(
                    &self.cfg.node_id,
                    &format!("killing {id} and putting it back in the queue"),
                );
                run.stopping = Some(StopReason::Release);
                run.kill.store(true, Ordering::SeqCst);
            }
        }
    }

    fn collect_finished(&mut self) -> Result<()> {
        while let Ok(finished) = self.rx.try_recv() {
            self.finish(finished)?;
        }
        Ok(())
    }

    fn finish(&mut self, finished: Finished) -> Result<()> {
        let id = finished.spec.id.clone();
        let Some(run) = self.running.remove(&id) else {
            return Ok(());
        };
        if let Some(line) = &run.line {
            line.finish_and_clear();
        }
        match (finished.outcome, run.stopping) {
            (Ok(_), Some(StopReason::ClaimLost)) => self.log(&format!(
                "stopped {id}: it is no longer ours (cancelled, or taken over)"
            )),
            (Ok(exec), Some(StopReason::Release)) if exec.status == Status::Cancelled => {
                self.releases.push((id, finished.attempt));
            }
            (Ok(exec), _) => {
                let mut result =
                    build_result(&finished.spec, &self.cfg.node_id, finished.attempt, exec);
                result.fit(task::MAX_FILE_BYTES as usize);
                self.spool.write(&result)?;
                if std::env::var(FAILPOINT).as_deref() == Ok("after-spool") {
                    self.log("failpoint after-spool: exiting before the push");
                    std::process::abort();
                }
                match result.status {
                    Status::Success => self.node.completed += 1,
                    _ => self.node.failed += 1,
                }
                self.log(&format!(
                    "finished {id} (attempt {}): {}{}",
                    finished.attempt,
                    result.status.name(),
                    result
                        .exit_code
                        .map(|c| format!(", exit code {c}"))
                        .unwrap_or_default()
                ));
                self.pending.push(result);
            }
            (Err(infra), _) => {
                self.warn(&format!(
                    "cannot run {id}: {infra}; putting it back in the queue"
                ));
                self.releases.push((id, finished.attempt));
                self.infra_failure(infra.0);
            }
        }
        Ok(())
    }

    /// Docker is not usable: stop claiming for a while (growing), keep heartbeating, say why.
    fn infra_failure(&mut self, why: String) {
        self.infra_backoff =
            (self.infra_backoff * 2).clamp(self.cfg.poll_interval, Duration::from_secs(300));
        self.infra_until = Some(Instant::now() + self.infra_backoff);
        self.warn(&format!(
            "not claiming for {}s: {why}",
            self.infra_backoff.as_secs()
        ));
        self.node.problem = Some(why);
    }

    fn check_docker(&mut self) {
        match docker::server_version(&self.cfg.docker) {
            Ok(version) => {
                self.node.docker_version = Some(version);
                self.node.problem = None;
                self.infra_until = None;
                self.infra_backoff = Duration::ZERO;
            }
            Err(e) => self.infra_failure(format!("docker is not usable: {e}")),
        }
    }

    fn docker_usable(&mut self) -> bool {
        match self.infra_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                self.check_docker();
                self.infra_until.is_none()
            }
        }
    }

    /// Checks that no other live worker uses this node id (before touching the node's containers),
    /// and carries the node's counters over a restart.
    fn take_up_node_id(&mut self) -> Result<()> {
        let tip = self.grid.fetch()?;
        let snapshot = Snapshot::read(&self.grid.repo, tip)?;
        self.ownership
            .check(&self.grid.repo, &snapshot, &self.cfg.node_id, Utc::now())?;
        if let Some(node) = snapshot.nodes.iter().find(|n| n.id == self.cfg.node_id) {
            if let Some(previous) = self
                .grid
                .repo
                .find_blob(node.blob)
                .ok()
                .and_then(|b| NodeRecord::parse(&b.data))
            {
                self.node.completed = previous.completed;
                self.node.failed = previous.failed;
            }
        }
        Ok(())
    }

    fn claim_request(&self, max: usize) -> claim::Request {
        claim::Request {
            node_id: self.cfg.node_id.clone(),
            max,
            lease: self.cfg.lease,
            labels: self.cfg.labels.clone(),
            allow_network: self.cfg.docker.allow_network,
        }
    }

    /// One transition: results, releases, lease renewals, reaping, claims and the heartbeat.
    fn cycle(&mut self, claim: bool, heartbeat: bool) -> Result<()> {
        let request = claim.then(|| self.claim_request(self.claim_budget()));
        let running: Vec<(TaskId, Attempt)> = self
            .running
            .iter()
            .filter(|(_, r)| r.stopping.is_none())
            .map(|(id, r)| (id.clone(), r.attempt))
            .collect();
        let held = self.held_ids();
        let now = Utc::now();
        self.node.last_heartbeat = rfc3339(now);
        self.node.running = running.iter().map(|(id, _)| id.to_string()).collect();
        let intent = Intent {
            node: self.node.clone(),
            results: &self.pending,
            releases: &self.releases,
            running: &running,
            held: &held,
            claim: request.as_ref(),
            heartbeat,
            ownership: &self.ownership,
            lease: self.cfg.lease,
            now,
        };
        let probe = self.claim_request(1);
        let grid = &self.grid;
        let observer = &mut self.observer;
        let mut queue_has_work = self.queue_has_work;
        let outcome = grid.transact(&self.identity, |snapshot| {
            observer.observe(&grid.repo, snapshot);
            queue_has_work = claim::any_claimable(&grid.repo, snapshot, &probe, &grid.limits);
            cycle::plan(&grid.repo, snapshot, &intent, &grid.limits, observer)
        })?;
        self.queue_has_work = queue_has_work;
        self.reap_due = false;
        let applied = match outcome {
            Outcome::Committed {
                commit,
                value,
                stats,
            } => {
                self.cfg.log.debug(
                    &self.cfg.node_id,
                    &format!(
                        "pushed in {} attempt(s), {} lost race(s)",
                        stats.pushes, stats.lost_races
                    ),
                );
                self.last_push = Some(Instant::now());
                self.ownership.started = true;
                // Our commit is the remote's tip now: the next poll sees nothing new unless someone pushed.
                self.last_tip = Some(commit);
                value
            }
            Outcome::Settled { value, .. } => value,
            Outcome::NotApplicable { .. } => Applied::default(),
        };
        if request
            .as_ref()
            .is_some_and(|r| applied.claimed.len() < r.max)
        {
            self.queue_has_work = false; // we took everything claimable
        }
        if !applied.unheld.is_empty() || !applied.reaped.is_empty() {
            self.queue_has_work = true; // tasks went back to the queue in this very commit
        }
        self.apply(applied, claim);
        Ok(())
    }

    fn apply(&mut self, applied: Applied, claimed_something_wanted: bool) {
        for (id, attempt) in &applied.recorded {
            self.spool.remove(id, *attempt);
        }
        for (id, attempt) in &applied.orphaned {
            self.warn(&format!(
                "{id} was removed from the grid; its result (attempt {attempt}) has nowhere to go"
            ));
            self.spool.remove(id, *attempt);
        }
        let settled = |r: &TaskResult| {
            let key = (r.task_id.clone(), r.attempt());
            applied.recorded.contains(&key) || applied.orphaned.contains(&key)
        };
        self.pending.retain(|r| !settled(r));
        self.releases.clear();
        for id in &applied.lost_claims {
            if let Some(run) = self.running.get_mut(id) {
                if run.stopping.is_none() {
                    run.stopping = Some(StopReason::ClaimLost);
                    run.kill.store(true, Ordering::SeqCst);
                }
            }
        }
        for (id, node) in &applied.reaped {
            if *node == self.cfg.node_id {
                self.log(&format!("took {id} back from this node's previous run"));
            } else {
                self.log(&format!("took {id} back from {node}: its lease expired"));
            }
        }
        for id in &applied.unheld {
            self.warn(&format!(
                "put {id} back in the queue: the push that claimed it seemed to fail, but the remote took it"
            ));
        }
        if claimed_something_wanted && !applied.claimed.is_empty() {
            self.claimed_any = true;
        }
        for spec in applied.claimed {
            self.start(spec);
        }
    }

    fn start(&mut self, spec: TaskSpec) {
        let attempt = spec.claim.as_ref().map_or(Attempt::FIRST, |c| c.attempt);
        self.log(&format!(
            "claimed {} (attempt {attempt}), running {}",
            spec.id, spec.image
        ));
        let kill = Arc::new(AtomicBool::new(false));
        let line = self.cfg.log.task_line(&spec.id, spec.timeout);
        self.running.insert(
            spec.id.clone(),
            Running {
                attempt,
                line,
                kill: kill.clone(),
                stopping: None,
            },
        );
        self.started_tasks += 1;
        let tx = self.tx.clone();
        let docker = self.cfg.docker.clone();
        let node_id = self.cfg.node_id.clone();
        std::thread::spawn(move || {
            let outcome = docker::run(&docker, &spec, &node_id, attempt, &kill);
            let _ = tx.send(Finished {
                spec,
                attempt,
                outcome,
            });
        });
    }

    /// A cheap look at the remote: `git ls-remote` transfers nothing when nothing changed. Returns
    /// whether anything did.
    fn poll(&mut self) -> Result<bool> {
        let out = gitcmd::run_remote(
            &self.grid.dir,
            &[
                "ls-remote",
                &self.grid.remote,
                crate::grid::sync::BRANCH_REF,
            ],
        )?;
        if !out.success {
            self.warn(&format!(
                "cannot reach {}: {}",
                self.grid.describe(),
                out.stderr.trim()
            ));
            return Ok(false);
        }
        let remote_tip = out
            .stdout
            .split_whitespace()
            .next()
            .and_then(|hex| ObjectId::from_hex(hex.as_bytes()).ok());
        let changed = remote_tip != self.last_tip;
        if changed {
            self.cfg
                .log
                .debug(&self.cfg.node_id, "the remote moved; fetching");
            let tip = self.grid.fetch()?;
            self.last_tip = tip;
            let snapshot = Snapshot::read(&self.grid.repo, tip)?;
            self.observer.observe(&self.grid.repo, &snapshot);
            let probe = self.claim_request(1);
            self.queue_has_work =
                claim::any_claimable(&self.grid.repo, &snapshot, &probe, &self.grid.limits);
            // Our running tasks may have been cancelled or taken over.
            self.reap_due |= self.running.keys().any(|id| {
                snapshot
                    .get(id)
                    .is_none_or(|t| t.state != State::InProgress)
            });
        }
        // Leases of other nodes run out without anything changing on the remote.
        if !self.reap_due {
            self.reap_due = self.anything_to_reap()?;
        }
        Ok(changed)
    }

    /// Every task this process holds: running, being stopped, or with a result or release to push.
    fn held_ids(&self) -> Vec<String> {
        self.running
            .keys()
            .map(TaskId::to_string)
            .chain(self.pending.iter().map(|r| r.task_id.to_string()))
            .chain(self.releases.iter().map(|(id, _)| id.to_string()))
            .collect()
    }

    /// Whether a transition would take a task back: another node's lease ran out, or a claim of
    /// this node is on a task this process does not hold (a push whose answer was lost).
    fn anything_to_reap(&mut self) -> Result<bool> {
        let in_progress = State::InProgress.dir();
        let dirs = [in_progress.as_str(), crate::layout::NODES_DIR];
        let snapshot = Snapshot::read_dirs(&self.grid.repo, self.last_tip, &dirs)?;
        let held = self.held_ids();
        for task in snapshot.in_state(State::InProgress) {
            if let Ok(spec) =
                crate::grid::snapshot::load_spec(&self.grid.repo, task, &self.grid.limits)
            {
                if let Some(claim) = &spec.claim {
                    if claim.node_id == self.cfg.node_id && !held.contains(&task.id) {
                        return Ok(true);
                    }
                    if claim.node_id != self.cfg.node_id
                        && crate::grid::cycle::ReapPolicy::may_reap(
                            &mut self.observer,
                            &snapshot,
                            task,
                            claim,
                        )
                    {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

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
    }
}

//! The worker loop: the only place where the grid (git) and the executor (docker) meet.
//!
//! Poll cheaply; claim up to the free slots in one push; run each task in its own thread; spool
//! each result to disk; report results *and* claim the next tasks in one push; heartbeat only when
//! due; take back the tasks of dead nodes; on SIGTERM/SIGINT stop claiming, let tasks finish within
//! the grace period, then kill and release them, and mark the node stopped.

mod budget;
pub mod clock;
pub mod docker_health;
mod exclusions;
pub mod observe;
pub mod pacing;
mod poll;
pub mod session;
pub mod spool;
pub mod task_run;
mod transition;

use crate::exec::docker::{self, DockerConfig};
use crate::grid::ownership::NodeIdInUse;
use crate::grid::sync::RemoteRefused;
use crate::grid::Grid;
use crate::grid::Identity;
use crate::log::Log;
use crate::node::{NodeRecord, NodeState};
use crate::task::Status;
use anyhow::Result;
use budget::Budget;
use clock::{Clock, SystemClock};
use docker_health::{DockerHealth, Verdict};
use exclusions::Exclusions;
use gix::ObjectId;
use observe::Observer;
use session::NodeSession;
use spool::Spool;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use task_run::{Exited, HeldTasks, TaskEnd};

pub struct Config {
    pub node_id: String,
    pub labels: Vec<String>,
    pub slots: usize,
    pub poll_interval: Duration,
    pub heartbeat_interval: Duration,
    pub lease: Duration,
    /// Pushes per minute for the whole grid (`docs/ARCHITECTURE.md#push-economy`).
    pub push_budget: PushBudget,
    /// Tasks claimed ahead at most, beyond the free slots (only with a push budget).
    pub prefetch: usize,
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

/// The grid's push budget and where it came from, for the log.
#[derive(Debug, Clone)]
pub struct PushBudget {
    /// Pushes per minute for the whole grid; 0 means no limit.
    pub per_minute: u32,
    pub why: String,
}

/// Docker refuses `--cpus` above the CPUs of its host ("Range of CPUs is from 0.01 to 2.00"), so
/// a task asking for more than the host has, on a node whose `--max-cpus` allows it, could never
/// start: the cap is lowered to what the host has, and such a task gets all of it.
fn clamp_to_host_cpus(cfg: &mut Config) {
    let host = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if cfg.docker.max_cpus > host {
        cfg.log.info(
            &cfg.node_id,
            &format!(
                "--max-cpus {} is more than this host's {host} CPU(s): tasks get at most {host}",
                cfg.docker.max_cpus
            ),
        );
        cfg.docker.max_cpus = host;
        cfg.docker.default_cpus = cfg.docker.default_cpus.min(host);
    }
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
pub struct StopRequests {
    count: AtomicUsize,
    /// When the first came: the grace period runs from then.
    first: std::sync::OnceLock<Instant>,
}

impl StopRequests {
    /// A signal came (called from the signal-handling thread).
    pub fn request(&self) {
        self.first.get_or_init(Instant::now);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether waiting for anything (the remote above all) must end now: a second request, or
    /// the grace period since the first is over.
    pub fn past_grace(&self, grace: Duration) -> bool {
        self.count() >= 2 || self.first.get().is_some_and(|t| t.elapsed() >= grace)
    }
}

/// The test hook that simulates a crash at the worst moment: after a result is spooled, before it
/// is pushed (`DGRID_FAILPOINT=after-spool`).
const FAILPOINT: &str = "DGRID_FAILPOINT";

/// What the worker last learnt of the remote, between transitions.
struct RemoteView {
    /// The remote's tip as of our last fetch or push.
    last_tip: Option<ObjectId>,
    /// Whether the queue had a task this node may claim.
    queue_has_work: bool,
    /// Whether a transition would take a task back or find one of ours gone: push even if idle.
    take_back_due: bool,
    /// Whether the queue had a task this node could claim but for its exclusions (tasks that
    /// failed to start here a moment ago): `--until-empty` waits for those to be decided.
    queue_waits: bool,
}

/// The shutdown asked for by signals.
struct Shutdown {
    requests: Arc<StopRequests>,
    /// When the first request was seen: the grace period runs from then.
    since: Option<Instant>,
}

pub struct Worker {
    grid: Grid,
    cfg: Config,
    identity: Identity,
    clock: Arc<dyn Clock>,
    session: NodeSession,
    /// This node's record, as the next push writes it.
    node: NodeRecord,
    spool: Spool,
    observer: Observer,
    docker: DockerHealth,
    exclusions: Exclusions,
    tasks: HeldTasks,
    exits_tx: mpsc::Sender<Exited>,
    exits: mpsc::Receiver<Exited>,
    view: RemoteView,
    last_push: Option<Instant>,
    budget: Budget,
    shutdown: Shutdown,
    /// Transitions that failed in a row (network trouble).
    remote_failures: u32,
}

impl Worker {
    pub fn new(grid: Grid, cfg: Config, stop_requests: Arc<StopRequests>) -> Result<Worker> {
        let clock = Arc::new(SystemClock);
        Worker::with_clock(grid, cfg, stop_requests, clock, &mut fastrand::Rng::new())
    }

    /// Like [`new`](Worker::new), with the clocks to go by and the randomness to draw the session from.
    pub fn with_clock(
        mut grid: Grid,
        cfg: Config,
        stop_requests: Arc<StopRequests>,
        clock: Arc<dyn Clock>,
        rng: &mut fastrand::Rng,
    ) -> Result<Worker> {
        let mut cfg = cfg;
        clamp_to_host_cpus(&mut cfg);
        let silence = cfg.lease + cfg.clock_skew;
        let session = NodeSession::open(&cfg.node_dir, &cfg.node_id, silence, rng)?;
        let spool = Spool::open(&cfg.node_dir.join("spool"))?;
        let node = session.fresh_record(&cfg, clock.now());
        let budget = Budget::new(&cfg);
        // Retrying an unreachable remote must not outlast the grace period of a stop.
        let (requests, grace) = (stop_requests.clone(), cfg.grace);
        grid.give_up_when(Arc::new(move || requests.past_grace(grace)));
        let (exits_tx, exits) = mpsc::channel();
        Ok(Worker {
            identity: Identity::node(&cfg.node_id),
            observer: Observer::new(cfg.lease, cfg.clock_skew, clock.clone()),
            docker: DockerHealth::new(cfg.poll_interval),
            exclusions: Exclusions::new(cfg.poll_interval),
            grid,
            cfg,
            clock,
            session,
            node,
            spool,
            tasks: HeldTasks::default(),
            exits_tx,
            exits,
            view: RemoteView {
                last_tip: None,
                queue_has_work: true,
                take_back_due: false,
                queue_waits: false,
            },
            last_push: None,
            budget,
            shutdown: Shutdown {
                requests: stop_requests,
                since: None,
            },
            remote_failures: 0,
        })
    }

    fn log(&self, message: &str) {
        self.cfg.log.info(&self.cfg.node_id, message);
    }

    fn warn(&self, message: &str) {
        self.cfg.log.warn(&self.cfg.node_id, message);
    }

    pub fn run(mut self) -> Result<Ending> {
        self.session
            .take_up(&self.grid, &mut self.node, self.clock.now())?;
        // Containers left by a crash of this node: nothing of theirs can be reported any more.
        docker::remove_node_containers(&self.cfg.docker, &self.cfg.node_id);
        self.check_docker();
        let spooled = self.spool.load(&self.grid.limits)?;
        if !spooled.is_empty() {
            self.log(&format!(
                "pushing {} result(s) spooled before a restart",
                spooled.len()
            ));
        }
        self.tasks = HeldTasks::from_spooled(spooled);
        // Registers the node; claims too, unless a signal came during start-up.
        self.cycle(self.shutdown.requests.count() == 0, true)?;
        let mut idle_polls: u32 = 0;
        loop {
            self.collect_exits()?;
            self.handle_stop_requests();
            let stopping = self.shutdown.requests.count() > 0;
            let heartbeat_due = self.last_push.is_none_or(|t| {
                self.clock.instant().saturating_duration_since(t) >= self.cfg.heartbeat_interval
            });
            self.retry_excluded();
            let want_claim = !stopping
                && self.claim_budget() > 0
                && self.view.queue_has_work
                && self.docker_usable();
            if self.tasks.owed_to_grid() || want_claim || heartbeat_due || self.view.take_back_due {
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
            if stopping
                && self.tasks.containers() == 0
                && self.shutdown.requests.past_grace(self.cfg.grace)
            {
                // The grace period is over and the remote did not take what is owed: results stay
                // in the spool, and a released task's claim is taken back by the next start.
                break;
            }
            // Wait for a task to finish, or poll the remote when the interval is up.
            let interval = self.cfg.poll_interval * 2u32.pow(idle_polls.min(2));
            match self.next_exit(interval.min(self.time_to_heartbeat())) {
                Ok(Some(exited)) => self.on_exit(exited)?,
                Ok(None) => {} // a stop request: the loop takes it in at once
                Err(mpsc::RecvTimeoutError::Timeout) => match self.poll() {
                    Ok(true) => idle_polls = 0,
                    Ok(false) => idle_polls += 1,
                    Err(e) => self.remote_trouble(e)?,
                },
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the worker holds a sender")
                }
            }
        }
        self.node.state = NodeState::Stopped;
        if let Err(e) = self.cycle(false, true) {
            if e.is::<RemoteRefused>() || e.is::<NodeIdInUse>() {
                return Err(e);
            }
            // Told to stop, and stopping within the grace period matters more than telling the
            // remote: the results are in the spool and go on the next start.
            self.warn(&format!(
                "{e:#}; stopping without writing the node's stopped record; {} result(s) stay in the spool for the next start",
                self.tasks.results().len()
            ));
        }
        self.log("stopped");
        if self.budget.found_nothing() {
            return Ok(Ending::NothingToDo);
        }
        Ok(Ending::Done {
            tasks: self.budget.tasks_started(),
        })
    }

    /// A failed transition: fatal if the remote refused on purpose (the running tasks are stopped
    /// and stay claimed, for another node to take back); otherwise the network or the remote is
    /// having trouble, so wait and try again, longer each time. Results stay in the spool meanwhile.
    fn remote_trouble(&mut self, error: anyhow::Error) -> Result<()> {
        if error.is::<RemoteRefused>() || error.is::<NodeIdInUse>() {
            let spooled = self.tasks.results().len();
            self.warn(&format!(
                "{error:#}; stopping ({spooled} result(s) stay in the spool for the next start)"
            ));
            self.abort_running();
            return Err(error);
        }
        self.remote_failures += 1;
        let requests = self.shutdown.requests.count();
        if requests > 0 {
            // Stopping: no long pause, the loop ends when the tasks are done or the grace is over.
            self.warn(&format!("{error:#}"));
            std::thread::sleep(Duration::from_millis(200));
            return Ok(());
        }
        let wait =
            (self.cfg.poll_interval * self.remote_failures.min(30)).min(Duration::from_secs(300));
        self.warn(&format!("{error:#}; trying again in {}s", wait.as_secs()));
        // A stop request ends the pause early: stopping must not wait for the remote.
        let until = Instant::now() + wait;
        while Instant::now() < until && self.shutdown.requests.count() == requests {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills every running container and waits (a little) for their threads to report.
    fn abort_running(&mut self) {
        self.tasks.kill_all();
        let deadline = self.clock.instant() + Duration::from_secs(30);
        while self.tasks.containers() > 0 && self.clock.instant() < deadline {
            if let Ok(exited) = self.exits.recv_timeout(Duration::from_millis(200)) {
                self.tasks.forget(&exited);
            }
        }
    }

    /// The next container to end within `wait`; `None` as soon as a new stop request comes, so
    /// that a long poll interval never delays a stop.
    fn next_exit(&self, wait: Duration) -> Result<Option<Exited>, mpsc::RecvTimeoutError> {
        let requests = self.shutdown.requests.count();
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(mpsc::RecvTimeoutError::Timeout);
            }
            match self
                .exits
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(exited) => return Ok(Some(exited)),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(e) => return Err(e),
            }
            if self.shutdown.requests.count() != requests {
                return Ok(None);
            }
        }
    }

    fn time_to_heartbeat(&self) -> Duration {
        match self.last_push {
            Some(t) => self
                .cfg
                .heartbeat_interval
                .saturating_sub(self.clock.instant().saturating_duration_since(t))
                .max(Duration::from_millis(100)),
            None => Duration::from_millis(100),
        }
    }

    /// How many more tasks to claim now.
    fn claim_budget(&self) -> usize {
        self.budget.claimable(self.tasks.containers())
    }

    /// Whether the loop is over: nothing held, and a stop was asked for or the budget is spent.
    /// `--until-empty` also waits for queued tasks it failed to start: they are tried again when
    /// their exclusion ends, until they run or fail as unrunnable.
    fn finished_work(&self, stopping: bool) -> bool {
        let work_left = self.view.queue_has_work || (self.cfg.until_empty && self.view.queue_waits);
        self.tasks.is_empty() && (stopping || self.budget.spent(work_left))
    }

    /// A task left alone after failing to start here may be claimed again once its exclusion
    /// ends; nothing on the remote changes to say so.
    fn retry_excluded(&mut self) {
        if self.view.queue_waits && !self.view.queue_has_work && self.exclusions.any() {
            let active = self.exclusions.active(self.clock.instant());
            self.view.queue_has_work = active.len() < self.exclusions.len();
        }
    }

    /// Graceful stop, then (after the grace period or a second SIGINT) kill and release.
    fn handle_stop_requests(&mut self) {
        let requests = self.shutdown.requests.count();
        if requests == 0 {
            return;
        }
        let now = self.clock.instant();
        let since = *self.shutdown.since.get_or_insert(now);
        if self.node.state == NodeState::Running {
            self.node.state = NodeState::Stopping;
            self.log(&format!(
                "stopping: no new tasks; {} running task(s) get {}s to finish",
                self.tasks.containers(),
                self.cfg.grace.as_secs()
            ));
        }
        if requests >= 2 || now.saturating_duration_since(since) >= self.cfg.grace {
            for id in self.tasks.stop_for_shutdown() {
                self.log(&format!("killing {id} and putting it back in the queue"));
            }
        }
    }

    fn collect_exits(&mut self) -> Result<()> {
        while let Ok(exited) = self.exits.try_recv() {
            self.on_exit(exited)?;
        }
        Ok(())
    }

    /// A task's container ended: spool its result, or note why there is none.
    fn on_exit(&mut self, exited: Exited) -> Result<()> {
        let (id, attempt) = (exited.spec.id.clone(), exited.attempt);
        let Some(end) = self.tasks.exited(exited, &self.cfg.node_id) else {
            return Ok(());
        };
        match end {
            TaskEnd::NotOurs => self.log(&format!(
                "stopped {id}: it is no longer ours (cancelled, or taken over)"
            )),
            TaskEnd::Released => {}
            TaskEnd::Report(result) => {
                self.spool.write(&result)?;
                if std::env::var(FAILPOINT).as_deref() == Ok("after-spool") {
                    self.log("failpoint after-spool: exiting before the push");
                    std::process::abort();
                }
                // A container ran: docker works, whatever the task did.
                self.docker.healthy();
                self.exclusions.forget(&id);
                match result.status {
                    Status::Success => self.node.completed += 1,
                    _ => self.node.failed += 1,
                }
                self.log(&format!(
                    "finished {id} (attempt {attempt}): {}{}",
                    result.status.name(),
                    result
                        .exit_code
                        .map(|c| format!(", exit code {c}"))
                        .unwrap_or_default()
                ));
                self.tasks.finished(*result);
            }
            TaskEnd::CannotRun(infra) => {
                if self.only_this_task_cannot_start(&infra.0) {
                    let pause = self.exclusions.failed(&id, self.clock.instant());
                    self.warn(&format!(
                        "cannot start {id} here: {infra}; putting it back with the failure noted, not claiming it here for {}s",
                        pause.as_secs()
                    ));
                    self.tasks.could_not_start(&id, attempt, infra.0);
                } else {
                    self.warn(&format!(
                        "cannot run {id}: {infra}; putting it back in the queue"
                    ));
                    self.infra_failure(infra.0);
                }
            }
        }
        Ok(())
    }

    /// Docker is not usable: stop claiming for a while (growing), keep heartbeating, say why.
    fn infra_failure(&mut self, why: String) {
        let pause = self.docker.failed(self.clock.instant(), why.clone());
        self.warn(&format!("not claiming for {}s: {why}", pause.as_secs()));
    }

    /// Whether a container that could not start failed for a reason of its own task (an image
    /// that cannot be had, resources the daemon refuses) rather than the node's: docker still
    /// answers, and its message is not one of a daemon that cannot run anything.
    fn only_this_task_cannot_start(&mut self, why: &str) -> bool {
        const NODE_WIDE: [&str; 5] = [
            "Cannot connect to the Docker daemon",
            "no space left on device",
            "permission denied while trying to connect",
            "cannot run ",
            "cannot create a pipe",
        ];
        if NODE_WIDE.iter().any(|sign| why.contains(sign)) {
            return false;
        }
        docker::server_version(&self.cfg.docker).is_ok()
    }

    fn check_docker(&mut self) {
        match docker::server_version(&self.cfg.docker) {
            Ok(version) => {
                self.node.docker_version = Some(version);
                self.docker.answered();
            }
            Err(e) => self.infra_failure(format!("docker is not usable: {e}")),
        }
    }

    fn docker_usable(&mut self) -> bool {
        match self.docker.verdict(self.clock.instant()) {
            Verdict::Usable => true,
            Verdict::Pausing => false,
            Verdict::LookAgain => {
                self.check_docker();
                self.docker.verdict(self.clock.instant()) == Verdict::Usable
            }
        }
    }
}

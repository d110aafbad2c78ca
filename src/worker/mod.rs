//! The worker loop: the only place where the grid (git) and the executor (docker) meet.
//!
//! Poll cheaply; claim up to the free slots in one push; run each task in its own thread; spool
//! each result to disk; report results *and* claim the next tasks in one push; heartbeat only when
//! due; take back the tasks of dead nodes; on SIGTERM/SIGINT stop claiming, let tasks finish within
//! the grace period, then kill and release them, and mark the node stopped.
//!
//! The worker is made of parts, each a private module that owns its fields:
//!
//! - `remote/`: `Remote`, what this process knows of the remote (its view,
//!   written only in `remote/view.rs`) and its counters (reads, pushes, the last push, failures),
//!   the pacing and the observer; one transition, the poll, the turn to push, trouble.
//! - `held/`: `Held`, the tasks held (one phase each), their containers' ends,
//!   docker's health and the exclusions; starting a claimed task.
//! - `state/`: `StateDir`, the node's folder in the state dir: session,
//!   spool, the never-started note, the reveal key of replicated tasks.
//! - `policy/`: the pure policies (pacing, budget, hourly window, observer, clocks).
//! - `stopping.rs`: stop requests, the grace period, the last push.
//!
//! Arrows go one way: the loop here uses every part; `remote/` reads `held/` and writes
//! `state/`; `held/` writes `state/`; `state/` and `policy/` use none of the others. The
//! `impl Worker` blocks in the parts' files are the orchestration that needs more than one part.

mod held;
mod policy;
mod remote;
mod state;
mod stopping;

use crate::exec::docker::{self, DockerConfig};
use crate::grid::{Grid, Identity, RateLimited};
use crate::log::Log;
use crate::node::NodeRecord;
use anyhow::Result;
use held::{Exited, Held};
pub use policy::clock::{Clock, SystemClock};
use policy::Budget;
use remote::Remote;
use state::StateDir;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use stopping::Shutdown;
pub use stopping::StopRequests;

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
    pub max_tasks_per_hour: Option<u32>,
    /// The operator's gate over queued tasks (`grid::policy::admission`), given to every claim.
    pub admission: Arc<crate::grid::Admission>,
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
    // The default cap is lowered silently: a warning about a value the user never set is noise.
    let chosen = cfg.docker.max_cpus != crate::settings::MAX_CPUS.fixed();
    if cfg.docker.max_cpus > host && chosen {
        cfg.log.info(
            &cfg.node_id,
            &format!(
                "--max-cpus {} is more than this host's {host} CPU(s): tasks get at most {host}",
                cfg.docker.max_cpus
            ),
        );
    }
    if cfg.docker.max_cpus > host {
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

/// The test hook that simulates a crash at the worst moment: after a result is spooled, before it
/// is pushed (`DGRID_FAILPOINT=after-spool`).
const FAILPOINT: &str = "DGRID_FAILPOINT";

/// A worker node: its parts own what they hold; the loop here and the `impl Worker` blocks in
/// the parts' files orchestrate them.
pub struct Worker {
    grid: Grid,
    cfg: Config,
    identity: Identity,
    clock: Arc<dyn Clock>,
    /// This node's record, as the next push writes it.
    node: NodeRecord,
    /// The node's folder in the state dir: session, spool, never-started note, reveal key.
    state: StateDir,
    /// The tasks held, their containers, docker's health and the exclusions.
    held: Held,
    /// What the worker knows of the remote, its counters and its pacing.
    remote: Remote,
    /// How many tasks to claim, and when the work is done.
    budget: Budget,
    shutdown: Shutdown,
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
        let state = StateDir::open(&cfg, rng)?;
        let node = state.fresh_record(&cfg, clock.now());
        let mut budget = Budget::new(&cfg);
        // `--max-tasks-per-hour` counts the starts of earlier processes from this state dir too.
        budget.restore_hourly(&state.hourly_starts(), clock.instant(), clock.now());
        remote::check_lease(cfg.lease, cfg.push_budget.per_minute)?;
        let remote = Remote::new(&cfg, clock.clone(), rng.u64(..));
        // Retrying an unreachable remote must not outlast the grace period of a stop.
        let (requests, grace) = (stop_requests.clone(), cfg.grace);
        grid.give_up_when(Arc::new(move || requests.past_grace(grace)));
        // A rate limit is waited out here, in `remote_trouble`, where a stop request ends the wait.
        grid.rate_limit_tries(1);
        Ok(Worker {
            identity: Identity::node(&cfg.node_id),
            held: Held::new(cfg.poll_interval),
            grid,
            cfg,
            clock,
            node,
            state,
            remote,
            budget,
            shutdown: Shutdown {
                requests: stop_requests,
                since: None,
            },
        })
    }

    fn log(&self, message: &str) {
        self.cfg.log.info(&self.cfg.node_id, message);
    }

    fn warn(&self, message: &str) {
        self.cfg.log.warn(&self.cfg.node_id, message);
    }

    pub fn run(mut self) -> Result<Ending> {
        self.start_up()?;
        let mut idle_polls: u32 = 0;
        loop {
            self.collect_exits()?;
            self.handle_stop_requests();
            let stopping = self.shutdown.requests.count() > 0;
            if !stopping && self.held.tasks().waiting() > 0 && self.docker_usable() {
                self.start_waiting();
            }
            let lease = self.cfg.lease;
            if let Some(line) = self.remote.spacing_warning(self.clock.instant(), lease) {
                self.warn(&line);
            }
            if let Some(line) = self.remote.foreign_warning(self.clock.instant()) {
                self.warn(&line);
            }
            let heartbeat_due = self
                .remote
                .heartbeat_due(self.clock.instant(), self.cfg.heartbeat_interval);
            self.retry_excluded();
            self.say_policy();
            let free = self.claim_budget();
            let ahead = self.claims_ahead();
            let may_claim = !stopping
                && self.remote.view().queue_has_work()
                && free + ahead > 0
                && self.docker_usable();
            let want_claim = may_claim && free > 0;
            let push_wanted = self.held.tasks().owed_to_grid()
                || want_claim
                || heartbeat_due
                || self.remote.view().push_due();
            if push_wanted && self.last_push_can_say_goodbye(stopping) {
                break; // the stopped record carries what is owed, in one push
            }
            let push_now = push_wanted
                && match self.may_push_now(stopping) {
                    Ok(go) => go,
                    Err(e) => {
                        self.remote_trouble(e)?;
                        false
                    }
                };
            if push_now {
                // With a budget, a push that goes claims ahead too, whatever triggered it.
                match self.cycle(may_claim, heartbeat_due) {
                    Ok(()) => {
                        idle_polls = 0;
                        self.remote.answered();
                    }
                    Err(e) => self.remote_trouble(e)?,
                }
            }
            if self.finished_work(stopping) {
                break;
            }
            if stopping
                && self.held.tasks().containers() == 0
                && self.shutdown.requests.past_grace(self.cfg.grace)
            {
                // The grace period is over and the remote did not take what is owed: results stay
                // in the spool, and a released task's claim is taken back by the next start.
                break;
            }
            // Wait for a task to finish, or poll the remote when the interval is up.
            let interval = self.cfg.poll_interval * 2u32.pow(idle_polls.min(2));
            let to_heartbeat = self
                .remote
                .time_to_heartbeat(self.clock.instant(), self.cfg.heartbeat_interval);
            let mut wait = interval.min(to_heartbeat);
            if push_wanted && !push_now {
                // Waiting for this node's turn to push (a push budget).
                wait = wait.min(self.time_to_turn().unwrap_or(wait));
            }
            let requests = self.shutdown.requests.count();
            let stop_asked = || self.shutdown.requests.count() != requests;
            match self.held.next_exit(wait, stop_asked) {
                Ok(Some(exited)) => self.take_exit(exited)?,
                Ok(None) => {} // a stop request: the loop takes it in at once
                // A look taken a moment ago (before a paced push) is not taken again.
                Err(mpsc::RecvTimeoutError::Timeout)
                    if self.remote.looked_just_now(self.clock.instant()) => {}
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
        self.say_goodbye()?;
        self.say_policy();
        self.log("stopped");
        if self.budget.found_nothing() {
            return Ok(Ending::NothingToDo);
        }
        Ok(Ending::Done {
            tasks: self.budget.tasks_started(),
        })
    }

    /// Before the loop: the node id taken up, docker looked at, the spool loaded, the grid
    /// joined, and the first push (registering the node, and claiming).
    fn start_up(&mut self) -> Result<()> {
        self.state
            .take_up(&self.grid, &mut self.node, self.clock.now())?;
        // Containers left by a crash of this node: nothing of theirs can be reported any more.
        docker::remove_node_containers(&self.cfg.docker, &self.cfg.node_id);
        self.check_docker();
        let spooled = self.state.spooled(&self.grid.limits)?;
        if !spooled.is_empty() {
            self.log(&format!(
                "pushing {} result(s) spooled before a restart",
                spooled.len()
            ));
        }
        self.held.take_spooled(spooled);
        if let Some(line) = self.remote.budget_line(&self.cfg.push_budget.why) {
            self.log(&line);
        }
        self.join_grid()?;
        // Registering is a push too: a newcomer to a busy grid waits its turn.
        self.wait_for_turn();
        // Registers the node; claims too, unless a signal came during start-up. A remote that
        // limits our rate is waited out; any other failure this early is the user's to see.
        loop {
            match self.cycle(self.shutdown.requests.count() == 0, true) {
                Ok(()) => break,
                // Told to stop meanwhile: the loop below stops as it always does (results
                // owed stay in the spool if the remote still will not take them).
                Err(e) if e.is::<RateLimited>() && self.shutdown.requests.count() > 0 => break,
                Err(e) if e.is::<RateLimited>() => self.remote_trouble(e)?,
                Err(e) => return Err(e),
            }
        }
        self.remote.answered();
        Ok(())
    }

    /// Takes in the containers that ended meanwhile.
    fn collect_exits(&mut self) -> Result<()> {
        while let Some(exited) = self.held.ended() {
            self.take_exit(exited)?;
        }
        Ok(())
    }

    /// A container ended: the held tasks take it in, and the pacing how long a task took.
    fn take_exit(&mut self, exited: Exited) -> Result<()> {
        if let Some(took) = self.on_exit(exited)? {
            self.remote.task_took(took);
        }
        Ok(())
    }

    /// Logs what the operator's policy held back since the last look: tasks left queued by the
    /// admission gate (once per file version and reason) and a full hourly window (once a spell).
    fn say_policy(&mut self) {
        let hourly = self.budget.tick(self.clock.instant(), self.clock.now());
        for line in self.cfg.admission.take_lines().into_iter().chain(hourly) {
            self.log(&line);
        }
    }

    /// How many more tasks to claim now.
    fn claim_budget(&self) -> usize {
        let tasks = self.held.tasks();
        self.budget.claimable(tasks.containers(), tasks.waiting())
    }

    /// Whether the loop is over: nothing held, and a stop was asked for or the budget is spent.
    /// `--until-empty` also waits for queued tasks it failed to start: they are tried again when
    /// their exclusion ends, until they run or fail as unrunnable.
    fn finished_work(&self, stopping: bool) -> bool {
        let work_left = self.remote.view().work_left(self.cfg.until_empty);
        self.held.tasks().is_empty() && (stopping || self.budget.spent(work_left))
    }

    /// A task left alone after failing to start here may be claimed again once its exclusion
    /// ends; nothing on the remote changes to say so.
    fn retry_excluded(&mut self) {
        let now = self.clock.instant();
        let held = &self.held;
        self.remote
            .recheck_exclusions(|| held.exclusions_ended(now));
    }
}

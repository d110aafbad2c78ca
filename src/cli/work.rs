//! `git dgrid work`: run a worker node.

use crate::config::GitConfig;
use crate::exec::docker::{memory_bytes, DockerConfig};
use crate::exit::No;
use crate::grid::location::GridArgs;
use crate::grid::Grid;
use crate::log::{Level, Log, LogFormat};
use crate::task;
use crate::worker::{self, Ending, StopRequests};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Run a worker: claim tasks, run them in Docker, push their results
///
/// Every setting can also come from an environment variable or git config dgrid.* (see git dgrid env).
/// Exit status: 0 done (or stopped by a signal), 1 --once found nothing to do, 2 error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// This node's id [git config dgrid.nodeId; default: the host name and a random suffix kept in the state dir]
    #[arg(long, value_name = "ID", env = "NODE_ID")]
    pub node_id: Option<String>,
    /// A label this node has (repeatable; DGRID_LABELS takes a comma-separated list) [git config dgrid.labels]
    #[arg(
        long = "label",
        value_name = "LABEL",
        env = "DGRID_LABELS",
        value_delimiter = ','
    )]
    pub labels: Vec<String>,
    /// Tasks run at the same time [git config dgrid.slots; default: 1]
    #[arg(long, value_name = "N", env = "DGRID_SLOTS")]
    pub slots: Option<usize>,
    /// Seconds between looks at the remote when idle, growing up to 4x while nothing changes [git config dgrid.pollInterval; default: 10]
    #[arg(long, value_name = "SECS", env = "PULL_INTERVAL")]
    pub poll_interval: Option<u64>,
    /// Seconds between heartbeat pushes when nothing else is pushed [git config dgrid.heartbeatInterval; default: 300]
    #[arg(long, value_name = "SECS", env = "DGRID_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Option<u64>,
    /// Seconds a claim lasts without a heartbeat [git config dgrid.lease; default: 3 heartbeat intervals]
    #[arg(long, value_name = "SECS", env = "DGRID_LEASE")]
    pub lease: Option<u64>,
    /// Seconds of clock difference tolerated before another node's lease counts as expired [git config dgrid.clockSkew; default: 60]
    #[arg(long, value_name = "SECS", env = "DGRID_CLOCK_SKEW")]
    pub clock_skew: Option<u64>,
    /// Seconds running tasks get to finish after SIGTERM/SIGINT before they are killed and released [git config dgrid.grace; default: 30]
    #[arg(long, value_name = "SECS", env = "DGRID_GRACE")]
    pub grace: Option<u64>,
    /// Claim at most one batch, run it, report, exit (for cron)
    #[arg(long, conflicts_with_all = ["until_empty", "max_tasks"])]
    pub once: bool,
    /// Exit after running this many tasks
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// Exit when the queue has nothing this node can run and its own tasks are reported
    #[arg(long)]
    pub until_empty: bool,
    /// Bytes of each output stream kept in the result; the rest is counted and hashed [git config dgrid.outputCap; default: 65536]
    #[arg(long, value_name = "BYTES", env = "DGRID_OUTPUT_CAP")]
    pub output_cap: Option<usize>,
    /// Let tasks that ask for "network": "bridge" have it [git config dgrid.allowNetwork]
    #[arg(long, env = "DGRID_ALLOW_NETWORK")]
    pub allow_network: bool,
    /// CPUs a container may use at most [git config dgrid.maxCpus; default: 4]
    #[arg(long, value_name = "N", env = "DGRID_MAX_CPUS")]
    pub max_cpus: Option<f64>,
    /// Memory a container may use at most, e.g. 4g [git config dgrid.maxMemory; default: 4g]
    #[arg(long, value_name = "SIZE", env = "DGRID_MAX_MEMORY")]
    pub max_memory: Option<String>,
    /// When docker pulls images: missing or never [git config dgrid.pull; default: missing]
    #[arg(long, value_name = "WHEN", env = "DGRID_PULL", value_parser = ["missing", "never"])]
    pub pull: Option<String>,
    /// The docker command [git config dgrid.docker; default: docker]
    #[arg(long, value_name = "PATH", env = "DGRID_DOCKER")]
    pub docker: Option<String>,
    /// Log lines as text, or as JSON objects for a supervisor [git config dgrid.logFormat; default: text]
    #[arg(long, value_name = "FORMAT", env = "DGRID_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// More detail in the log (each poll and push)
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Only warnings and errors in the log
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<()> {
    // First of all, so that a signal during start-up stops the worker the graceful way too.
    let stop = Arc::new(StopRequests::default());
    install_signal_handlers(stop.clone())?;
    let grid_args = args.grid.resolve()?;
    let state_dir = grid_args.state_dir()?;
    let grid = Grid::open_resolved(&grid_args)?;
    let config = GitConfig::read(&grid.dir)?;
    let node_id = match config.resolve_opt(args.node_id.clone(), "dgrid.nodeId")? {
        Some(id) => id,
        None => default_node_id(&state_dir)?,
    };
    task::check_id(&node_id).map_err(|why| anyhow::anyhow!("node id {node_id:?}: {why}"))?;
    let mut labels = args.labels.clone();
    if labels.is_empty() {
        labels = config
            .get_all("dgrid.labels")
            .iter()
            .flat_map(|l| l.split(','))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
    }
    for label in &labels {
        task::check_label(label).map_err(|why| anyhow::anyhow!("label: {why}"))?;
    }
    let slots: usize = config.resolve(args.slots, "dgrid.slots", 1)?;
    if slots == 0 {
        bail!("--slots must be at least 1");
    }
    let max_memory_text: String =
        config.resolve(args.max_memory.clone(), "dgrid.maxMemory", "4g".into())?;
    let max_memory = memory_bytes(&max_memory_text)
        .with_context(|| format!("max memory {max_memory_text:?}: expected e.g. 512m or 4g"))?;
    let max_cpus: f64 = config.resolve(args.max_cpus, "dgrid.maxCpus", 4.0)?;
    let pull: String = config.resolve(args.pull.clone(), "dgrid.pull", "missing".into())?;
    if !["missing", "never"].contains(&pull.as_str()) {
        bail!("pull {pull:?}: expected missing or never");
    }
    let heartbeat = Duration::from_secs(
        config
            .resolve(args.heartbeat_interval, "dgrid.heartbeatInterval", 300)?
            .max(1),
    );
    let lease = match config.resolve_opt(args.lease, "dgrid.lease")? {
        Some(secs) => Duration::from_secs(secs.max(1)),
        None => heartbeat * 3,
    };
    let log_format: String =
        config.resolve(args.log_format.clone(), "dgrid.logFormat", "text".into())?;
    let node_dir = std::path::absolute(state_dir.join("nodes").join(&node_id))
        .context("cannot make the state dir's path absolute")?;
    let docker = DockerConfig {
        docker: config.resolve(args.docker.clone(), "dgrid.docker", "docker".into())?,
        output_cap: config.resolve(args.output_cap, "dgrid.outputCap", 64 * 1024)?,
        allow_network: config.flag(args.allow_network, "dgrid.allowNetwork")?,
        max_cpus,
        default_cpus: max_cpus.min(1.0),
        max_memory,
        default_memory: max_memory.min(512 << 20),
        pull,
        node_dir: node_dir.to_string_lossy().into_owned(),
        ..DockerConfig::default()
    };
    let cfg = worker::Config {
        node_dir,
        node_id,
        labels,
        slots,
        poll_interval: Duration::from_secs(
            config
                .resolve(args.poll_interval, "dgrid.pollInterval", 10)?
                .max(1),
        ),
        heartbeat_interval: heartbeat,
        lease,
        clock_skew: Duration::from_secs(config.resolve(args.clock_skew, "dgrid.clockSkew", 60)?),
        grace: Duration::from_secs(config.resolve(args.grace, "dgrid.grace", 30)?),
        once: args.once,
        max_tasks: args.max_tasks,
        until_empty: args.until_empty,
        docker,
        log: Log::new(
            if log_format == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            },
            if args.quiet {
                Level::Warn
            } else if args.verbose {
                Level::Debug
            } else {
                Level::Info
            },
        ),
    };
    cfg.log.info(
        &cfg.node_id,
        &format!(
            "git-dgrid {} worker on {} ({} slot(s))",
            env!("CARGO_PKG_VERSION"),
            grid.describe(),
            cfg.slots
        ),
    );
    match worker::Worker::new(grid, cfg, stop)?.run()? {
        Ending::Done { .. } => Ok(()),
        Ending::NothingToDo => Err(No::said().into()),
    }
}

/// SIGTERM and SIGINT are counted; the worker reacts to the count.
fn install_signal_handlers(stop: Arc<StopRequests>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            stop.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    Ok(())
}

/// The host name and a random suffix, kept in the state dir so the node keeps its id.
fn default_node_id(state_dir: &Path) -> Result<String> {
    let path: PathBuf = state_dir.join("node-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if task::check_id(&id).is_ok() {
            return Ok(id);
        }
    }
    let id = format!(
        "{}-{:06x}",
        crate::node::hostname(),
        fastrand::u32(..0x100_0000)
    );
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    std::fs::write(&path, format!("{id}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(id)
}

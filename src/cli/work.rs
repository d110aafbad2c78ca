//! `git dgrid work`: run a worker node.

use crate::exec::docker::{memory_bytes, DockerConfig};
use crate::exit;
use crate::grid::location::{default_state_dir, GridArgs};
use crate::grid::Grid;
use crate::task;
use crate::worker::{self, Ending, StopRequests};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Run a worker: claim tasks, run them in Docker, push their results
///
/// Exit status: 0 done (or stopped by a signal), 1 --once found nothing to do, 2 error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// This node's id [default: git config dgrid.nodeId, else the host name and a random suffix kept in the state dir]
    #[arg(long, value_name = "ID", env = "NODE_ID")]
    pub node_id: Option<String>,
    /// A label this node has (repeatable); tasks that ask for labels need all of theirs here
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Tasks run at the same time
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub slots: usize,
    /// Seconds between looks at the remote when idle (grows up to 4x while nothing changes)
    #[arg(long, value_name = "SECS", env = "PULL_INTERVAL", default_value_t = 10)]
    pub poll_interval: u64,
    /// Seconds between heartbeat pushes when nothing else is pushed
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub heartbeat_interval: u64,
    /// Seconds a claim lasts without a heartbeat [default: 3 heartbeat intervals]
    #[arg(long, value_name = "SECS")]
    pub lease: Option<u64>,
    /// Seconds of clock difference tolerated before another node's lease counts as expired
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub clock_skew: u64,
    /// Seconds running tasks get to finish after SIGTERM/SIGINT before they are killed and released
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// Claim at most one batch, run it, report, exit (for cron)
    #[arg(long, conflicts_with_all = ["until_empty", "max_tasks"])]
    pub once: bool,
    /// Exit after running this many tasks
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// Exit when the queue has nothing this node can run and its own tasks are reported
    #[arg(long)]
    pub until_empty: bool,
    /// Bytes of each output stream kept in the result (the rest is counted and hashed)
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub output_cap: usize,
    /// Let tasks that ask for "network": "bridge" have it
    #[arg(long)]
    pub allow_network: bool,
    /// CPUs a container may use at most
    #[arg(long, value_name = "N", default_value_t = 4.0)]
    pub max_cpus: f64,
    /// Memory a container may use at most (e.g. 4g)
    #[arg(long, value_name = "SIZE", default_value = "4g")]
    pub max_memory: String,
    /// When docker pulls images: missing or never
    #[arg(long, value_name = "WHEN", default_value = "missing", value_parser = ["missing", "never"])]
    pub pull: String,
    /// The docker command
    #[arg(
        long,
        value_name = "PATH",
        env = "DGRID_DOCKER",
        default_value = "docker"
    )]
    pub docker: String,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<u8> {
    let state_dir = match &args.grid.state_dir {
        Some(d) => d.clone(),
        None => default_state_dir()?,
    };
    let grid = Grid::open(&args.grid)?;
    let node_id = match &args.node_id {
        Some(id) => id.clone(),
        None => match crate::gitcmd::config(&grid.dir, "dgrid.nodeId")? {
            Some(id) => id,
            None => default_node_id(&state_dir)?,
        },
    };
    task::check_id(&node_id).map_err(|why| anyhow::anyhow!("node id {node_id:?}: {why}"))?;
    for label in &args.labels {
        task::check_label(label).map_err(|why| anyhow::anyhow!("--label: {why}"))?;
    }
    if args.slots == 0 {
        bail!("--slots must be at least 1");
    }
    let max_memory = memory_bytes(&args.max_memory).with_context(|| {
        format!(
            "--max-memory {:?}: expected e.g. 512m or 4g",
            args.max_memory
        )
    })?;
    let heartbeat = Duration::from_secs(args.heartbeat_interval.max(1));
    let docker = DockerConfig {
        docker: args.docker.clone(),
        output_cap: args.output_cap,
        allow_network: args.allow_network,
        max_cpus: args.max_cpus,
        default_cpus: args.max_cpus.min(1.0),
        max_memory,
        default_memory: max_memory.min(512 << 20),
        pull: args.pull.clone(),
        ..DockerConfig::default()
    };
    let cfg = worker::Config {
        node_dir: state_dir.join("nodes").join(&node_id),
        node_id,
        labels: args.labels.clone(),
        slots: args.slots,
        poll_interval: Duration::from_secs(args.poll_interval.max(1)),
        heartbeat_interval: heartbeat,
        lease: args.lease.map(Duration::from_secs).unwrap_or(heartbeat * 3),
        clock_skew: Duration::from_secs(args.clock_skew),
        grace: Duration::from_secs(args.grace),
        once: args.once,
        max_tasks: args.max_tasks,
        until_empty: args.until_empty,
        docker,
    };
    let stop = Arc::new(StopRequests::default());
    install_signal_handlers(stop.clone())?;
    eprintln!(
        "git-dgrid worker {} on {} ({} slot(s))",
        cfg.node_id,
        grid.describe(),
        cfg.slots
    );
    match worker::Worker::new(grid, cfg, stop)?.run()? {
        Ending::Done { .. } => Ok(exit::OK),
        Ending::NothingToDo => Ok(exit::NO),
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

//! `git dgrid work`: run a worker node.

use crate::cli::grid_args::GridArgs;
use crate::config::GitConfig;
use crate::exec::docker::{memory_bytes, DockerConfig};
use crate::exec::registry::RegistryPolicy;
use crate::exit::No;
use crate::grid::Grid;
use crate::log::{Level, Log, LogFormat};
use crate::settings::default_push_budget;
use crate::settings::{
    ALLOWED_SIGNERS, ALLOW_IMAGES, ALLOW_NETWORK, ALLOW_REGISTRY, CLOCK_SKEW, CONTAINER_USER,
    DEFAULT_IMAGE, DOCKER, GRACE, HEARTBEAT_INTERVAL, IDENTITY, LABELS, LEASE, LEASE_HEARTBEATS,
    LOG_FORMAT, MAX_CPUS, MAX_MEMORY, MAX_TASKS_PER_HOUR, MAX_TASK_TIMEOUT, NODE_ID, OUTPUT_CAP,
    POLL_INTERVAL, PREFETCH, PULL, PUSH_BUDGET, RUNTIME, SLOTS, TRUST_GRID_SIGNERS, TRUST_ROOT,
};
use crate::task;
use crate::worker::{self, Ending, PushBudget, StopRequests};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[path = "work_policy.rs"]
mod policy;

/// Run a worker: claim tasks, run them in Docker, push their results
///
/// Every setting can also come from an environment variable or git config dgrid.* (see git dgrid env).
/// Exit status: 0 done (or stopped by a signal), 1 --once found nothing to do, 2 error.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_name = "ID", env = NODE_ID.key.env, help = NODE_ID.help())]
    pub node_id: Option<String>,
    #[arg(
        long = "label",
        value_name = "LABEL",
        env = LABELS.key.env,
        help = LABELS.help(),
        value_delimiter = ','
    )]
    pub labels: Vec<String>,
    #[arg(long, value_name = "N", env = SLOTS.key.env, help = SLOTS.help())]
    pub slots: Option<usize>,
    #[arg(long, value_name = "SECS", env = POLL_INTERVAL.key.env, help = POLL_INTERVAL.help())]
    pub poll_interval: Option<u64>,
    #[arg(long, value_name = "SECS", env = HEARTBEAT_INTERVAL.key.env, help = HEARTBEAT_INTERVAL.help())]
    pub heartbeat_interval: Option<u64>,
    #[arg(long, value_name = "SECS", env = LEASE.key.env, help = LEASE.help())]
    pub lease: Option<u64>,
    #[arg(long, value_name = "N", env = PUSH_BUDGET.key.env, help = PUSH_BUDGET.help())]
    pub push_budget: Option<u32>,
    #[arg(long, value_name = "N", env = PREFETCH.key.env, help = PREFETCH.help())]
    pub prefetch: Option<usize>,
    #[arg(long, value_name = "SECS", env = CLOCK_SKEW.key.env, help = CLOCK_SKEW.help())]
    pub clock_skew: Option<u64>,
    #[arg(long, value_name = "SECS", env = GRACE.key.env, help = GRACE.help())]
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
    #[arg(long, value_name = "BYTES", env = OUTPUT_CAP.key.env, help = OUTPUT_CAP.help())]
    pub output_cap: Option<usize>,
    #[arg(long, env = ALLOW_NETWORK.key.env, help = ALLOW_NETWORK.help())]
    pub allow_network: bool,
    #[arg(long, value_name = "N", env = MAX_CPUS.key.env, help = MAX_CPUS.help())]
    pub max_cpus: Option<f64>,
    #[arg(long, value_name = "SIZE", env = MAX_MEMORY.key.env, help = MAX_MEMORY.help())]
    pub max_memory: Option<String>,
    #[arg(long, value_name = "WHEN", env = PULL.key.env, help = PULL.help(), value_parser = ["missing", "never"])]
    pub pull: Option<String>,
    #[arg(long, value_name = "IMAGE", env = DEFAULT_IMAGE.key.env, help = DEFAULT_IMAGE.help())]
    pub default_image: Option<String>,
    #[arg(
        long = "allow-registry",
        value_name = "HOST[:PORT]",
        env = ALLOW_REGISTRY.key.env,
        help = ALLOW_REGISTRY.help(),
        value_delimiter = ','
    )]
    pub allow_registries: Vec<String>,
    #[arg(
        long = "allow-image",
        value_name = "PATTERN",
        env = ALLOW_IMAGES.key.env,
        help = ALLOW_IMAGES.help(),
        value_delimiter = ','
    )]
    pub allow_images: Vec<String>,
    #[arg(long, value_name = "SECS", env = MAX_TASK_TIMEOUT.key.env, help = MAX_TASK_TIMEOUT.help())]
    pub max_task_timeout: Option<u64>,
    #[arg(long, value_name = "N", env = MAX_TASKS_PER_HOUR.key.env, help = MAX_TASKS_PER_HOUR.help())]
    pub max_tasks_per_hour: Option<u32>,
    #[arg(long, value_name = "FILE", env = ALLOWED_SIGNERS.key.env, help = ALLOWED_SIGNERS.help())]
    pub allowed_signers: Option<String>,
    #[arg(long, env = TRUST_GRID_SIGNERS.key.env, help = TRUST_GRID_SIGNERS.help())]
    pub trust_grid_signers: bool,
    #[arg(long, value_name = "COMMIT", env = TRUST_ROOT.key.env, help = TRUST_ROOT.help())]
    pub trust_root: Option<String>,
    #[arg(long, value_name = "FILE", env = IDENTITY.key.env, help = IDENTITY.help())]
    pub identity: Option<String>,
    #[arg(long, value_name = "USER[:GROUP]", env = CONTAINER_USER.key.env, help = CONTAINER_USER.help())]
    pub container_user: Option<String>,
    #[arg(long, value_name = "NAME", env = RUNTIME.key.env, help = RUNTIME.help())]
    pub runtime: Option<String>,
    #[arg(long, value_name = "PATH", env = DOCKER.key.env, help = DOCKER.help())]
    pub docker: Option<String>,
    #[arg(long, value_name = "FORMAT", env = LOG_FORMAT.key.env, help = LOG_FORMAT.help(), value_parser = ["text", "json"])]
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
    // The flag or the environment says it before anything can go wrong; git config may below.
    if args.log_format.as_deref() == Some("json") {
        crate::log::set_process_format(LogFormat::Json);
    }
    let grid_args = args.grid.resolve()?;
    let state_dir = grid_args.state_dir()?;
    if grid_args.repo.is_none() {
        if let Err(e) = crate::repo::LocalRepo::current() {
            bail!(
                "{e:#}\nrun the worker in a clone of the grid, or name the grid: git dgrid work --repo URL"
            );
        }
    }
    let mut grid = Grid::open_resolved(&grid_args)?;
    if let Some(image) = &args.default_image {
        grid.limits.default_image = image.clone();
    }
    let config = crate::repo::command_config()?;
    // A handle of its own for the admission gate's look at the archive (it fetches).
    let gate_grid = Grid::open_resolved(&grid_args)?;
    let cfg = worker_config(&args, &config, &state_dir, &grid, gate_grid)?;
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

/// The worker's settings, each resolved from the table (flag > environment > git config >
/// default) and checked.
fn worker_config(
    args: &Args,
    config: &GitConfig,
    state_dir: &Path,
    grid: &Grid,
    gate_grid: Grid,
) -> Result<worker::Config> {
    let remote_url = grid.url();
    let remote_url = remote_url.as_deref();
    let secs = |s: u64| Duration::from_secs(s);
    let node_id = match NODE_ID.resolve_opt(args.node_id.clone(), config)? {
        Some(id) => id,
        None => default_node_id(state_dir)?,
    };
    task::check_id(&node_id).map_err(|why| anyhow::anyhow!("node id {node_id:?}: {why}"))?;
    let labels = LABELS.resolve_list(args.labels.clone(), config);
    for label in &labels {
        task::check_label(label).map_err(|why| anyhow::anyhow!("label: {why}"))?;
    }
    let slots = SLOTS.resolve(args.slots, config)?;
    if slots == 0 {
        bail!("--slots must be at least 1");
    }
    let max_memory_text: String = MAX_MEMORY.resolve(args.max_memory.clone(), config)?;
    let max_memory = memory_bytes(&max_memory_text)
        .with_context(|| format!("max memory {max_memory_text:?}: expected e.g. 512m or 4g"))?;
    if max_memory < task::MIN_MEMORY_BYTES {
        bail!("max memory {max_memory_text:?}: docker refuses less than 6m");
    }
    let max_cpus = MAX_CPUS.resolve(args.max_cpus, config)?;
    if max_cpus.is_nan() || max_cpus < task::MIN_CPUS {
        bail!(
            "max cpus {max_cpus}: docker refuses less than {}",
            task::MIN_CPUS
        );
    }
    let pull: String = PULL.resolve(args.pull.clone(), config)?;
    if !["missing", "never"].contains(&pull.as_str()) {
        bail!("pull {pull:?}: expected missing or never");
    }
    let registries =
        RegistryPolicy::parse(&ALLOW_REGISTRY.resolve_list(args.allow_registries.clone(), config))
            .map_err(|why| anyhow::anyhow!("allow registry: {why}"))?;
    let heartbeat = secs(
        HEARTBEAT_INTERVAL
            .resolve(args.heartbeat_interval, config)?
            .max(1),
    );
    let lease = match LEASE.resolve_opt(args.lease, config)? {
        Some(s) => secs(s.max(1)),
        None => heartbeat * LEASE_HEARTBEATS,
    };
    let push_budget = match PUSH_BUDGET.resolve_opt(args.push_budget, config)? {
        Some(n) => PushBudget {
            per_minute: n,
            why: "set".into(),
        },
        None => {
            let (per_minute, why) = default_push_budget(remote_url.unwrap_or(""));
            PushBudget { per_minute, why }
        }
    };
    let node_dir = std::path::absolute(state_dir.join("nodes").join(&node_id))
        .context("cannot make the state dir's path absolute")?;
    let mut policy = policy::resolve(args, config, max_cpus, max_memory, &grid.dir, &node_dir)?;
    policy.admission.archived = Some(std::sync::Arc::new(crate::grid::ArchiveGate::new(
        gate_grid,
    )));
    let log_format: String = LOG_FORMAT.resolve(args.log_format.clone(), config)?;
    let docker = DockerConfig {
        docker: DOCKER.resolve(args.docker.clone(), config)?,
        output_cap: OUTPUT_CAP.resolve(args.output_cap, config)?,
        allow_network: ALLOW_NETWORK.resolve_flag(args.allow_network, config)?,
        max_cpus,
        default_cpus: max_cpus.min(1.0),
        max_memory,
        default_memory: max_memory.min(512 << 20),
        pull,
        registries,
        node_dir: node_dir.to_string_lossy().into_owned(),
        user: policy.user,
        runtime: policy.runtime,
        secret_keys: policy.admission.keys.clone(),
        ..DockerConfig::default()
    };
    let format = match log_format.as_str() {
        "json" => LogFormat::Json,
        _ => LogFormat::Text,
    };
    crate::log::set_process_format(format);
    let level = match (args.quiet, args.verbose) {
        (true, _) => Level::Warn,
        (_, true) => Level::Debug,
        _ => Level::Info,
    };
    Ok(worker::Config {
        node_dir,
        node_id,
        labels,
        slots,
        poll_interval: secs(POLL_INTERVAL.resolve(args.poll_interval, config)?.max(1)),
        heartbeat_interval: heartbeat,
        lease,
        push_budget,
        prefetch: PREFETCH.resolve(args.prefetch, config)?,
        clock_skew: secs(CLOCK_SKEW.resolve(args.clock_skew, config)?),
        grace: secs(GRACE.resolve(args.grace, config)?),
        once: args.once,
        max_tasks: args.max_tasks,
        until_empty: args.until_empty,
        max_tasks_per_hour: policy.max_tasks_per_hour,
        admission: std::sync::Arc::new(policy.admission),
        docker,
        log: Log::new(format, level),
    })
}

/// SIGTERM and SIGINT are counted; the worker reacts to the count.
fn install_signal_handlers(stop: Arc<StopRequests>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install signal handlers")?;
    std::thread::spawn(move || {
        for _ in signals.forever() {
            stop.request();
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

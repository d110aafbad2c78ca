//! `git dgrid claim`: atomically move up to N queued tasks to in_progress for a node.

use crate::cli::grid_args::GridArgs;
use crate::exit::No;
use crate::grid::{plan_claim, ClaimRequest, Grid, Outcome};
use crate::odb::Identity;
use crate::settings::NODE_ID;
use crate::task;
use anyhow::{bail, Result};
use std::io::Write;
use std::time::Duration;

/// Claim queued tasks for a node (exit 0: claimed some, 1: nothing claimable, 2: error)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The node that will run the tasks [git config dgrid.nodeId]
    #[arg(long, value_name = "ID", env = NODE_ID.key.env)]
    pub node_id: Option<String>,
    /// Claim at most this many tasks, in one push
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub max: usize,
    /// Seconds until the claim expires unless renewed by a heartbeat
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub lease: u64,
    /// A label this node has (repeatable); tasks that ask for labels need all of theirs here
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Also claim tasks that ask for network access ("network": "bridge")
    #[arg(long)]
    pub allow_network: bool,
    /// Print each claimed task as a JSON object, one per line
    #[arg(long)]
    pub json: bool,
    /// Say on stderr how many pushes and lost races it took
    #[arg(short, long)]
    pub verbose: bool,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<()> {
    let grid = Grid::open(&args.grid.location())?;
    let config = crate::repo::command_config()?;
    let Some(node_id) = NODE_ID.resolve_opt(args.node_id.clone(), &config)? else {
        bail!("which node claims? give --node-id ID (or NODE_ID, or git config dgrid.nodeId)");
    };
    if let Err(why) = task::check_id(&node_id) {
        bail!("node id {node_id:?}: {why}");
    }
    for label in &args.labels {
        task::check_label(label).map_err(|why| anyhow::anyhow!("--label: {why}"))?;
    }
    let request = ClaimRequest {
        node_id: node_id.clone(),
        max: args.max,
        ahead: 0,
        lease: Duration::from_secs(args.lease),
        labels: args.labels.clone(),
        allow_network: args.allow_network,
        admission: Default::default(),
    };
    let identity = Identity::node(&node_id);
    let outcome = grid.transact(&identity, |snapshot| {
        plan_claim(
            &grid.repo,
            snapshot,
            &request,
            &grid.limits,
            chrono::Utc::now(),
        )
    })?;
    match outcome {
        Outcome::NotApplicable { stats } | Outcome::Settled { stats, .. } => {
            let mut message = "nothing to claim".to_string();
            if args.verbose {
                message += &format!(
                    "\nclaim: 0 tasks, {} push(es), {} lost race(s)",
                    stats.pushes, stats.lost_races
                );
            }
            Err(No::new(message).into())
        }
        Outcome::Committed {
            value: claimed,
            stats,
            ..
        } => {
            if args.verbose {
                eprintln!(
                    "claim: {} task(s), {} push(es), {} lost race(s)",
                    claimed.len(),
                    stats.pushes,
                    stats.lost_races
                );
            }
            let mut out = std::io::stdout().lock();
            for spec in &claimed {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(spec)?)?;
                } else {
                    writeln!(out, "{}", spec.id)?;
                }
            }
            Ok(out.flush()?)
        }
    }
}

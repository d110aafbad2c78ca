//! `git dgrid status`: the grid at a glance, as a table, JSON, or a static HTML dashboard.

use super::read::{self, ReadArgs};
use crate::dashboard::{history, html, table, StatusModel};
use crate::exit;
use crate::grid::Snapshot;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Show the grid: nodes and their liveness, counts, queue, running tasks, recent results
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the status as JSON (a stable, documented object; see the README)
    #[arg(long, conflicts_with_all = ["watch", "html"])]
    pub json: bool,
    /// Redraw every SECS seconds until interrupted
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "5")]
    pub watch: Option<u64>,
    /// Write a static dashboard (index.html and status.json) into DIR
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
    /// The dashboard's title
    #[arg(long, value_name = "TEXT", default_value = "git-dgrid")]
    pub title: String,
    /// Pretend it is this time (RFC 3339), for reproducible output
    #[arg(long, value_name = "TIME", hide = true)]
    pub now: Option<String>,
    #[command(flatten)]
    pub read: ReadArgs,
}

fn now(args: &Args) -> Result<DateTime<Utc>> {
    match &args.now {
        Some(t) => Ok(DateTime::parse_from_rfc3339(t)
            .context("--now: expected an RFC 3339 time")?
            .with_timezone(&Utc)),
        None => Ok(Utc::now()),
    }
}

pub fn run(args: Args) -> Result<u8> {
    loop {
        let source = read::open(&args.read)?;
        let now = now(&args)?;
        let snapshot = Snapshot::read(&source.repo, source.tip)?;
        let recent = history::recent_results(&source.repo, source.tip, 50)?;
        let model = StatusModel::build(&source.repo, &snapshot, &recent, now)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&model)?);
            return Ok(exit::OK);
        }
        if let Some(dir) = &args.html {
            let series = history::series(&source.repo, source.tip, now, 48)?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let page = html::render(&model, &series, &args.title, 60);
            std::fs::write(dir.join("index.html"), page)
                .with_context(|| format!("cannot write {}/index.html", dir.display()))?;
            let json = serde_json::to_string_pretty(&model)? + "\n";
            std::fs::write(dir.join("status.json"), json)
                .with_context(|| format!("cannot write {}/status.json", dir.display()))?;
            eprintln!("wrote {}/index.html and status.json", dir.display());
            return Ok(exit::OK);
        }
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let text = table::render(&model, &source.describe, color);
        match args.watch {
            None => {
                print!("{text}");
                return Ok(exit::OK);
            }
            Some(secs) => {
                print!("\x1b[2J\x1b[H{text}");
                std::thread::sleep(Duration::from_secs(secs.max(1)));
            }
        }
    }
}

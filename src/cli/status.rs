//! `git dgrid status`: the grid at a glance, as a table, JSON, or a static HTML dashboard.

use super::poll_pace::Pace;
use super::read::{self, Fetch, ReadArgs, ReadSource};
use crate::dashboard::{history, html, table, StatusModel};
use crate::grid::Snapshot;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use gix::ObjectId;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Show the grid: nodes and their liveness, counts, queue, running tasks, recent results
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the status as JSON (a stable, documented object; see the README)
    #[arg(long, conflicts_with_all = ["watch", "html"])]
    pub json: bool,
    /// Redraw every SECS seconds until interrupted
    #[arg(
        long,
        value_name = "SECS",
        num_args = 0..=1,
        default_missing_value = "5",
        conflicts_with = "html"
    )]
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

pub fn run(args: Args) -> Result<()> {
    if let Some(secs) = args.watch {
        return watch(&args, Duration::from_secs(secs.max(1)));
    }
    let (source, model, now) = read_model(&args)?;
    // One reading per process: its object cache (a decoded copy of every queued file of a large
    // queue, 100,000 allocations) is left for the process's exit to free at once; dropped, it was
    // ~4% of the command's CPU time.
    let source = std::mem::ManuallyDrop::new(source);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&model)?)?;
        return Ok(out.flush()?);
    }
    if let Some(dir) = &args.html {
        let series = history::series(&source.repo, source.tip, now, 48)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let page = html::render(&model, &series, &args.title, 60);
        std::fs::write(dir.join("index.html"), page)
            .with_context(|| format!("cannot write {}/index.html", dir.display()))?;
        let json = serde_json::to_string_pretty(&model)? + "\n";
        std::fs::write(dir.join("status.json"), json)
            .with_context(|| format!("cannot write {}/status.json", dir.display()))?;
        eprintln!("wrote {}/index.html and status.json", dir.display());
        return Ok(());
    }
    write!(
        out,
        "{}",
        table::render(&model, &source.describe, use_color())
    )?;
    Ok(out.flush()?)
}

fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The grid, freshly read (fetched unless told otherwise), and its status at the time given or now.
fn read_model(args: &Args) -> Result<(ReadSource, StatusModel, DateTime<Utc>)> {
    read_model_with(args, Fetch::Always)
}

fn read_model_with(args: &Args, fetch: Fetch) -> Result<(ReadSource, StatusModel, DateTime<Utc>)> {
    let source = read::open_with(&args.read, fetch)?;
    let now = now(args)?;
    let snapshot = Snapshot::read(&source.repo, source.tip)?;
    let recent = history::recent_results(&source.repo, source.tip, 50)?;
    let mut model = StatusModel::build(&source.repo, &snapshot, &recent, now)?;
    // One small blob in main's own tree: the archive's running totals; the archive itself is
    // never fetched for status.
    // A broken file (anyone with push access can write one) is named once and counted as
    // nothing archived: it never stops status.
    match crate::grid::archive_totals_on_main(&source.repo, source.tip) {
        Ok(totals) => model.add_archived(totals),
        Err(e) => crate::log::warning(&format!("ignoring the archived counts: {e:#}")),
    }
    Ok((source, model, now))
}

/// The table, the tip it was read at, and whether reading it fetched a new tip.
fn table_text(args: &Args, fetch: Fetch) -> Result<(String, Option<ObjectId>, bool)> {
    let (source, model, _) = read_model_with(args, fetch)?;
    let text = table::render(&model, &source.describe, use_color());
    Ok((text, source.tip, source.fetched))
}

/// Shows the table every `interval` until interrupted. Once the first table is shown, a refresh
/// that fails (the network, say) says so (on a terminal under the last table, which stays) and the
/// next refresh tries again, as `watch` does.
///
/// The table is redrawn every `interval` (ages and liveness change with time alone), but the
/// remote is asked only at the [`Pace`]: `ls-remote` first, a fetch only when the tip moved, less
/// often while nothing changes.
fn watch(args: &Args, interval: Duration) -> Result<()> {
    // On a terminal each table replaces the last; in a pipe or a file they follow one another.
    let terminal = std::io::stdout().is_terminal();
    let clear = if terminal { "\x1b[2J\x1b[H" } else { "\n" };
    let (mut last, mut tip, _) = table_text(args, Fetch::Always)?;
    let mut pace = Pace::new(interval);
    let mut next_look = Instant::now() + pace.wait();
    let mut out = std::io::stdout().lock();
    write!(out, "{clear}{last}")?;
    loop {
        // A reader that went away (`status --watch | head`) ends the loop here, quietly.
        out.flush()?;
        std::thread::sleep(interval);
        let time = Utc::now().format("%H:%M:%S");
        let looks = Instant::now() >= next_look;
        let fetch = if looks {
            Fetch::IfMoved(tip)
        } else {
            Fetch::Never
        };
        let read = table_text(args, fetch);
        if looks {
            pace.saw(matches!(read, Ok((_, _, true))));
            next_look = Instant::now() + pace.wait();
        }
        match read {
            Ok((text, at, _)) => {
                (last, tip) = (text, at);
                write!(out, "{clear}{last}")?;
            }
            Err(e) if terminal => write!(out, "{clear}{last}\n{time} could not refresh: {e:#}\n")?,
            Err(e) => write!(out, "\n{time} could not refresh: {e:#}\n")?,
        }
    }
}

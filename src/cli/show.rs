//! `git dgrid show ID` and `git dgrid logs ID`: one task, where it is, what it is, what it did.

use super::read::{self, ReadArgs};
use crate::exit::No;
use crate::gitcmd;
use crate::grid::{
    archive_totals_on_main, load_result, load_spec, ArchiveTotals, ArchiveView, ArchivedTask,
    Snapshot, TaskRef,
};
use crate::layout::{self, State};
use crate::text::{clean, clean_lines};
use anyhow::{Context, Result};
use std::io::{IsTerminal, Write};

/// Show a task: its state, spec, result and history (the commits that moved it)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The task id
    pub id: String,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Print a task's stdout and stderr as stored, with a note when they were cut
#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// The task id
    pub id: String,
    /// Only stdout
    #[arg(long, conflicts_with = "stderr")]
    pub stdout: bool,
    /// Only stderr
    #[arg(long)]
    pub stderr: bool,
    /// Print the output byte for byte even on a terminal (otherwise control characters other
    /// than newlines and tabs are shown as '?' there)
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Where a task was found: on `main`, or only in `dgrid-archive`.
enum Located {
    Main(TaskRef),
    Archived(ArchivedTask),
}

fn locate(source: &read::ReadSource, id: &str) -> Result<Option<Located>> {
    let snapshot = Snapshot::read(&source.repo, source.tip)?;
    if let Some(task) = snapshot.get(id) {
        return Ok(Some(Located::Main(task.clone())));
    }
    // Nothing archived as of this main (no dgrid-archive.json): no archive to fetch.
    let counted = archive_totals_on_main(&source.repo, source.tip).unwrap_or(ArchiveTotals {
        completed: 1,
        failed: 0,
    });
    if counted == ArchiveTotals::default() {
        return Ok(None);
    }
    let archive = ArchiveView::at(&source.repo, source.archive()?)?;
    Ok(archive.find(id)?.map(Located::Archived))
}

/// The state, the path, and the result (a finished task) of what [`locate`] found.
fn read_found(
    source: &read::ReadSource,
    found: &Located,
) -> Result<(State, String, Option<crate::task::TaskResult>)> {
    Ok(match found {
        Located::Main(task) if task.state.holds_results() => (
            task.state,
            task.path.clone(),
            Some(load_result(&source.repo, task, &source.limits)?),
        ),
        Located::Main(task) => (task.state, task.path.clone(), None),
        Located::Archived(f) => (
            f.state,
            format!("dgrid-archive:{} (was {})", f.file, f.line.path),
            Some(f.result(&source.limits)?),
        ),
    })
}

fn unknown(id: &str, describe: &str) -> anyhow::Error {
    No::new(format!("no task {id:?} on {}", clean(describe))).into()
}

pub fn run(args: Args) -> Result<()> {
    let source = read::open(&args.read)?;
    let Some(found) = locate(&source, &args.id)? else {
        return Err(unknown(&args.id, &source.describe));
    };
    let history = history(&source, &args.id)?;
    let (state, path, result) = read_found(&source, &found)?;
    let spec = match (&found, &result) {
        (_, Some(result)) => result.task.clone(),
        (Located::Main(task), None) => Some(load_spec(&source.repo, task, &source.limits)?),
        (Located::Archived(_), None) => None,
    };
    let archived = match &found {
        Located::Archived(f) => Some(f.file.clone()),
        Located::Main(_) => None,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let history: Vec<serde_json::Value> = history
            .iter()
            .map(|(commit, author, time, subject)| serde_json::json!({"commit": commit, "author": author, "time": time, "subject": subject}))
            .collect();
        let object = serde_json::json!({"id": args.id, "state": state.name(), "path": path, "archived": archived, "spec": spec, "result": result, "history": history});
        writeln!(out, "{}", serde_json::to_string_pretty(&object)?)?;
        return Ok(out.flush()?);
    }
    writeln!(
        out,
        "task   {}\nstate  {}\npath   {}",
        clean(&args.id),
        state,
        clean(&path)
    )?;
    if archived.is_some() {
        writeln!(
            out,
            "(archived: moved off main into the branch dgrid-archive)"
        )?;
    }
    if let Some(spec) = &spec {
        writeln!(
            out,
            "\nspec\n{}",
            indent(&serde_json::to_string_pretty(spec)?)
        )?;
    }
    if let Some(instances) = spec
        .as_ref()
        .map(|s| &s.instances)
        .filter(|i| !i.is_empty())
    {
        writeln!(out, "\ninstances")?;
        for line in instance_lines(instances) {
            writeln!(out, "  {}", clean(&line))?;
        }
    }
    if let Some(quorum) = result.as_ref().and_then(|r| r.quorum.as_ref()) {
        writeln!(out, "\nquorum {}", clean(&quorum_line(quorum)))?;
    }
    if let Some(result) = &result {
        let mut summary = result.clone();
        summary.stdout = format!(
            "({} bytes; git dgrid logs {})",
            result.stdout.len(),
            args.id
        );
        summary.stderr = format!(
            "({} bytes; git dgrid logs {})",
            result.stderr.len(),
            args.id
        );
        summary.task = None;
        writeln!(
            out,
            "\nresult\n{}",
            indent(&serde_json::to_string_pretty(&summary)?)
        )?;
    }
    writeln!(out, "\nhistory")?;
    for (commit, author, time, subject) in &history {
        writeln!(
            out,
            "  {} {} {}: {}",
            &commit[..commit.len().min(10)],
            clean(time),
            clean(author),
            clean(subject)
        )?;
    }
    // After `compact`, main starts at a root holding the old tree: the task's older commits are
    // not gone, they are on dgrid-archive, and an empty-looking history must say so.
    if let Some(old_tip) = compacted_from(&source) {
        writeln!(
            out,
            "  (older history was compacted off main; it is kept on the branch dgrid-archive: \
             git log {} -- '*{}.json')",
            &old_tip[..old_tip.len().min(10)],
            clean(&args.id)
        )?;
    }
    Ok(out.flush()?)
}

/// The old tip the compaction that made main's root replaced, if main was compacted.
fn compacted_from(source: &read::ReadSource) -> Option<String> {
    let tip = source.tip?;
    let dir = source.repo.git_dir().to_path_buf();
    let format = format!(
        "--format=%(trailers:key={},valueonly)",
        crate::grid::COMPACTED_FROM_TRAILER
    );
    let out = gitcmd::output(&dir, &["log", "--max-parents=0", &format, &tip.to_string()]).ok()?;
    out.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

pub fn run_logs(args: LogsArgs) -> Result<()> {
    let source = read::open(&args.read)?;
    let Some(found) = locate(&source, &args.id)? else {
        return Err(unknown(&args.id, &source.describe));
    };
    let (state, _, result) = read_found(&source, &found)?;
    let Some(result) = result else {
        return Err(No::new(format!(
            "{} is {}: it has no output yet",
            args.id,
            state.in_words()
        ))
        .into());
    };
    if matches!(found, Located::Archived(_)) {
        eprintln!(
            "({} is archived: read from the branch dgrid-archive)",
            args.id
        );
    }
    let streams = [
        ("stdout", &result.stdout, &result.stdout_info),
        ("stderr", &result.stderr, &result.stderr_info),
    ];
    // A task's output is whatever its author made it print: on a terminal, its escapes could
    // rewrite the screen. Piped, it is passed on as stored.
    let terminal = std::io::stdout().is_terminal() && !args.raw;
    let mut out = std::io::stdout().lock();
    for (name, text, info) in streams {
        if (args.stdout && name != "stdout") || (args.stderr && name != "stderr") {
            continue;
        }
        let both = !(args.stdout || args.stderr);
        // Redirected (`logs ID > file`), each stream goes where the task wrote it: the file gets
        // the task's stdout alone, with no headers in it or on the screen. On a terminal both are
        // shown, each under its header.
        let mut err = std::io::stderr().lock();
        let to: &mut dyn Write = if both && !terminal && name == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if both && terminal {
            to.flush()?;
            eprintln!("==> {name} <==");
        }
        if terminal {
            write!(to, "{}", clean_lines(text))?;
        } else {
            write!(to, "{text}")?;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            writeln!(to)?;
        }
        to.flush()?;
        drop(err);
        // Each stream's note on stderr comes after the stream, as on a terminal.
        out.flush()?;
        if let Some(info) = info.as_ref().filter(|i| i.truncated) {
            eprintln!(
                "[{name} truncated: {} of {} bytes kept; sha256 of the whole stream {}]",
                text.len(),
                info.total_bytes,
                info.sha256
            );
        }
    }
    Ok(())
}

/// The commits that touched any place the task can be, newest first.
fn history(source: &read::ReadSource, id: &str) -> Result<Vec<(String, String, String, String)>> {
    let Some(tip) = source.tip else {
        return Ok(Vec::new());
    };
    let mut paths = Vec::new();
    for state in State::ALL {
        paths.push(layout::task_path(state, id));
        paths.push(format!("{}/{id}.json", state.dir()));
    }
    let mut args = vec![
        "log".to_string(),
        "--format=%H%x09%an%x09%aI%x09%s".into(),
        tip.to_string(),
        "--".into(),
    ];
    args.extend(paths);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dir = source.repo.git_dir().to_path_buf();
    let out = gitcmd::output(&dir, &args).context("cannot read the task's history")?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, '\t');
            Some((
                f.next()?.into(),
                f.next()?.into(),
                f.next()?.into(),
                f.next()?.into(),
            ))
        })
        .collect())
}

/// One line per instance entry of a replicated task: number, node, attempt, where it stands.
fn instance_lines(instances: &[crate::task::Instance]) -> Vec<String> {
    instances
        .iter()
        .map(|e| {
            let stands = match (&e.dropped, &e.commitment, e.sealed, &e.digest) {
                (Some(why), ..) => format!("dropped: {why}"),
                (None, None, ..) => "running".into(),
                (None, Some(_), false, _) => "committed".into(),
                (None, Some(_), true, None) => "sealed, to reveal".into(),
                (None, Some(_), true, Some(d)) if crate::quorum::reveal_matches(e) => {
                    format!("revealed {}", &d[..d.len().min(12)])
                }
                (None, Some(_), true, Some(_)) => "revealed, NOT matching its commitment".into(),
            };
            format!(
                "#{} round {} {} attempt {}: {stands}",
                e.instance, e.round, e.node_id, e.attempt
            )
        })
        .collect()
}

/// A result's quorum in one line: who agreed on what, who did not.
fn quorum_line(q: &crate::task::QuorumOutcome) -> String {
    let mut line = match &q.digest {
        Some(d) => format!(
            "{} of {} votes agree on {} ({} replicas): {}",
            q.agreeing.len(),
            q.votes.len(),
            &d[..d.len().min(12)],
            q.replicas,
            q.agreeing.join(" ")
        ),
        None => format!(
            "none: no digest won ({} votes, {} replicas asked)",
            q.votes.len(),
            q.replicas
        ),
    };
    if !q.dissenting.is_empty() {
        line.push_str(&format!("; dissenting: {}", q.dissenting.join(" ")));
    }
    if q.unchecked {
        line.push_str("; run alone by a trusted node, not drawn for a check");
    }
    line
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

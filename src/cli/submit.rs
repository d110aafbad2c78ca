//! `git dgrid submit`: validate tasks and push them to the queue in one commit.

use super::submit_secrets;
use crate::cli::grid_args::GridArgs;
use crate::exit::No;
use crate::fields;
use crate::grid::{new_task_id, plan_submit, refuse_archived, submit_on_branch, Grid, Outcome};
use crate::layout::{self, State};
use crate::odb::Identity;
use crate::problem::Problem;
use crate::repo::LocalRepo;
use crate::secrets::Recipient;
use crate::settings::SIGNING_KEY;
use crate::task::{self, Limits, TaskSpec};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde_json::{Map, Value};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

/// Submit tasks: from flags and a command, from JSON files, or JSON lines on stdin (-)
///
/// Examples:
///   git dgrid submit --image alpine:3 -- echo hello
///   git dgrid submit --image alpine:3 -- 'echo hello && uname -a'
///   git dgrid submit tasks.json more.json
///   generate-tasks | git dgrid submit -
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Task files (one JSON object each), or - to read JSON lines from stdin
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
    /// The command after --: one argument runs with sh -c, several run as an argv
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
    /// Container image for a task given by command
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Seconds the task may run
    #[arg(
        long,
        value_name = "SECS",
        default_value = "3600",
        allow_negative_numbers = true
    )]
    pub timeout: String,
    /// Task id [default: a unique, time-sortable one]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Environment variable for the task (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Higher runs first
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub priority: Option<String>,
    /// How many times the task may be tried when nodes die [default: 3]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_attempts: Option<String>,
    /// A label the running node must have (repeatable)
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// CPUs for the container
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub cpus: Option<String>,
    /// Memory for the container, e.g. 512m
    #[arg(long)]
    pub memory: Option<String>,
    /// Network for the container: none or bridge
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// Run only after this task completed (repeatable)
    #[arg(long = "depends-on", value_name = "ID")]
    pub depends_on: Vec<String>,
    /// Who submits [default: git config user.email]
    #[arg(long, value_name = "WHO")]
    pub submitted_by: Option<String>,
    /// Commit the tasks on a new local branch on top of the remote's main instead of pushing; prints the push command
    #[arg(long)]
    pub no_push: bool,
    /// Follow the tasks until they finish; exit 0 only if all succeeded
    #[arg(long, conflicts_with = "no_push")]
    pub wait: bool,
    /// Seconds between checks with --wait
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub poll_interval: u64,
    /// Print one JSON object per task
    #[arg(long)]
    pub json: bool,
    /// Sign each task with an SSH key (ssh-keygen -Y sign, namespace dgrid-task), so that workers with --allowed-signers run it
    #[arg(long)]
    pub sign: bool,
    #[arg(long, value_name = "FILE", env = SIGNING_KEY.key.env, help = SIGNING_KEY.help())]
    pub signing_key: Option<String>,
    #[command(flatten)]
    pub secret: super::submit_secrets::SecretArgs,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<()> {
    let local = LocalRepo::current().ok();
    let limits = match &local {
        Some(l) => l.limits()?,
        None => Limits::default(),
    };
    // The one identity rule of every person's command (`repo::person_identity`); outside a
    // clone, git's global identity.
    let identity = crate::repo::person_identity(
        &local
            .as_ref()
            .map_or_else(std::env::temp_dir, |l| l.dir.clone()),
    );
    let submitted_by = match &args.submitted_by {
        Some(s) => s.clone(),
        None => default_submitter(&identity),
    };
    let now = Utc::now();
    let mut problems: Vec<Problem> = Vec::new();
    let raw = gather(&args, &mut problems)?;
    let secrets = secrets_for(&args)?;
    let mut tasks = Vec::with_capacity(raw.len());
    for (seq, (source, mut object)) in raw.into_iter().enumerate() {
        if let Some((values, recipients)) = &secrets {
            submit_secrets::add_to(&mut object, values, recipients, args.secret.secrets_env)
                .with_context(|| source.clone())?;
        }
        if !object.contains_key("id") && !object.contains_key("task_id") {
            object.insert("id".into(), Value::String(new_task_id(now, seq)));
        }
        object
            .entry("created_at")
            .or_insert_with(|| Value::String(crate::time::rfc3339(now)));
        object
            .entry("submitted_by")
            .or_insert_with(|| Value::String(submitted_by.clone()));
        // Filled above: a submitted task always says when and by whom.
        match task::task_from_object(&source, object, &limits, task::Origin::Required) {
            Ok(spec) => {
                super::validate::report_warnings(&task::task_warnings(&source, &spec));
                tasks.push(spec)
            }
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        super::validate::report(&mut std::io::stdout().lock(), &problems, false)?;
        return Err(No::new(format!("nothing submitted: {} problem(s)", problems.len())).into());
    }
    if tasks.is_empty() {
        bail!(
            "no tasks given: pass --image IMAGE -- CMD, task files, or - for JSON lines on stdin"
        );
    }
    if args.sign {
        let key = super::sign::signing_key(args.signing_key.clone())?;
        super::sign::sign_all(&mut tasks, &key)?;
    }
    if args.no_push {
        return commit_on_branch(&args, &identity, &tasks);
    }
    let grid = Grid::open(&args.grid.location())?;
    let spinner = pushing_spinner(tasks.len(), &grid.describe());
    let result = grid.transact(&identity, |snapshot| {
        refuse_archived(&grid, snapshot, &tasks)?;
        plan_submit(snapshot, &tasks)
    });
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let Outcome::Committed { commit, .. } = super::refused(result, "nothing submitted")? else {
        bail!("nothing was submitted");
    };
    let mut out = std::io::stdout().lock();
    for t in &tasks {
        if args.json {
            let path = layout::task_path(State::Queue, &t.id);
            writeln!(
                out,
                "{}",
                serde_json::json!({"id": t.id, "state": "queue", "path": path, "commit": commit.to_string()})
            )?;
        } else {
            writeln!(out, "{}", t.id)?;
        }
    }
    out.flush()?;
    drop(out);
    if args.wait {
        let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
        return super::wait::follow(&grid, &ids, Duration::from_secs(args.poll_interval.max(1)));
    }
    Ok(())
}

/// `--secret`: the values and the recipients they are encrypted to, or `None` without secrets.
fn secrets_for(args: &Args) -> Result<Option<(submit_secrets::Values, Vec<Recipient>)>> {
    if args.secret.secrets.is_empty() {
        return Ok(None);
    }
    let stdin_taken = args.files.iter().any(|f| f == "-");
    let values = submit_secrets::read_values(&args.secret, stdin_taken)?;
    let grid = Grid::open(&args.grid.location())?;
    let recipients = submit_secrets::recipients(
        &grid,
        &args.secret.recipients,
        args.secret.trust_root.clone(),
    )?;
    Ok(Some((values, recipients)))
}

/// Every task given, as (name for messages, JSON object). Inputs that are not a task-sized JSON
/// object become problems; only what cannot be read at all is an error.
fn gather(args: &Args, problems: &mut Vec<Problem>) -> Result<Vec<(String, Map<String, Value>)>> {
    if !args.command.is_empty() {
        if !args.files.is_empty() {
            bail!("give either task files or a command after --, not both");
        }
        return Ok(vec![("command line".into(), from_flags(args)?)]);
    }
    if let Some(image) = &args.image {
        // `submit --image IMG echo hi` reads `echo hi` as task files: the newcomer meant a command.
        if !args.files.is_empty() {
            bail!(
                "put the command after --: git dgrid submit --image {image} -- {}",
                args.files.join(" ")
            );
        }
        bail!("--image needs a command: git dgrid submit --image IMAGE -- CMD ARGS...");
    }
    let mut out = Vec::new();
    for file in &args.files {
        if file == "-" {
            read_json_lines(std::io::stdin().lock(), &mut out, problems)?;
            continue;
        }
        let path = Path::new(file);
        let size = std::fs::metadata(path)
            .with_context(|| format!("{file}: cannot read"))?
            .len();
        // Checked before reading so a huge file is never read whole.
        if let Err(problem) = fields::check_size(file, size) {
            problems.push(problem);
            continue;
        }
        let bytes = std::fs::read(path).with_context(|| format!("{file}: cannot read"))?;
        match fields::read_object(file, &bytes) {
            Ok(object) => out.push((file.clone(), object)),
            Err(problem) => problems.push(problem),
        }
    }
    Ok(out)
}

/// Reads JSON lines, each at most the size of a task file, never holding a longer line in memory.
fn read_json_lines(
    mut input: impl BufRead,
    out: &mut Vec<(String, Map<String, Value>)>,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let max = task::MAX_FILE_BYTES;
    for n in 1.. {
        let mut line = Vec::new();
        let read = (&mut input)
            .take(max + 1)
            .read_until(b'\n', &mut line)
            .context("cannot read stdin")?;
        if read == 0 {
            break;
        }
        let name = format!("stdin line {n}");
        if line.last() != Some(&b'\n') && line.len() as u64 > max {
            problems.push(Problem::file(
                &name,
                format!("is longer than {max} bytes; a task is at most that"),
            ));
            skip_rest_of_line(&mut input)?;
            continue;
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        // Without its newline, a line of exactly the limit is a task file of exactly the limit.
        match fields::read_object(&name, line.trim_ascii_end()) {
            Ok(object) => out.push((name, object)),
            Err(problem) => problems.push(problem),
        }
    }
    Ok(())
}

fn skip_rest_of_line(input: &mut impl BufRead) -> Result<()> {
    loop {
        let buffer = input.fill_buf().context("cannot read stdin")?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            input.consume(end + 1);
            return Ok(());
        }
        let len = buffer.len();
        input.consume(len);
    }
}

fn from_flags(args: &Args) -> Result<Map<String, Value>> {
    let mut task = Map::new();
    if let Some(id) = &args.id {
        task.insert("id".into(), id.clone().into());
    }
    let image = args
        .image
        .clone()
        .context("a command needs --image IMAGE")?;
    task.insert("image".into(), image.into());
    let command = match args.command.as_slice() {
        [one] => Value::String(one.clone()),
        many => Value::Array(many.iter().cloned().map(Value::String).collect()),
    };
    task.insert("command".into(), command);
    task.insert("timeout".into(), number_or_text(&args.timeout));
    if !args.env.is_empty() {
        let mut env = Map::new();
        for pair in &args.env {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("--env {pair:?}: expected KEY=VALUE"))?;
            env.insert(k.to_string(), v.to_string().into());
        }
        task.insert("env".into(), env.into());
    }
    if let Some(p) = &args.priority {
        task.insert("priority".into(), number_or_text(p));
    }
    if let Some(m) = &args.max_attempts {
        task.insert("max_attempts".into(), number_or_text(m));
    }
    if !args.labels.is_empty() {
        task.insert("labels".into(), args.labels.clone().into());
    }
    if args.cpus.is_some() || args.memory.is_some() {
        let mut r = Map::new();
        if let Some(c) = &args.cpus {
            r.insert("cpus".into(), number_or_text(c));
        }
        if let Some(m) = &args.memory {
            r.insert("memory".into(), m.clone().into());
        }
        task.insert("resources".into(), r.into());
    }
    if let Some(n) = &args.network {
        task.insert("network".into(), n.clone().into());
    }
    if !args.depends_on.is_empty() {
        task.insert("depends_on".into(), args.depends_on.clone().into());
    }
    Ok(task)
}

/// A numeric flag as the JSON value it stands for: text, not a clap-parsed number, so that what
/// is not a number goes to the contract's check and is refused in the contract's words
/// (`"timeout": expected an integer from 1 to …, got "abc"`), like the same field in a file.
fn number_or_text(text: &str) -> Value {
    serde_json::from_str::<Value>(text.trim())
        .ok()
        .filter(Value::is_number)
        .unwrap_or_else(|| Value::String(text.to_string()))
}

fn default_submitter(identity: &Identity) -> String {
    if identity.email.trim().is_empty() {
        identity.name.clone()
    } else {
        identity.email.clone()
    }
}

/// `--no-push`: the submission as a commit on a new local branch on top of the chosen remote's
/// `main`, and the command that submits it (`grid::submit_on_branch`).
fn commit_on_branch(args: &Args, identity: &Identity, tasks: &[TaskSpec]) -> Result<()> {
    let resolved = args.grid.resolve()?;
    if resolved.repo.is_some() {
        bail!("--no-push commits on a branch of this clone, for you to push: use it in a clone of the grid, with --remote NAME, not --repo URL");
    }
    let grid = Grid::open_resolved(&resolved)?;
    let prepared = super::refused(
        submit_on_branch(&grid, identity, tasks, |snapshot| {
            refuse_archived(&grid, snapshot, tasks)
        }),
        "nothing committed",
    )?;
    let mut out = std::io::stdout().lock();
    for t in tasks {
        if args.json {
            let path = layout::task_path(State::Queue, &t.id);
            writeln!(
                out,
                "{}",
                serde_json::json!({"id": t.id, "state": "queue", "path": path,
                    "commit": prepared.commit.to_string(), "branch": prepared.branch})
            )?;
        } else {
            writeln!(out, "{}", t.id)?;
        }
    }
    out.flush()?;
    let remote = &grid.remote;
    let branch = &prepared.branch;
    eprintln!(
        "Committed {} task(s) on the new branch {branch}, on top of {remote}'s main; nothing was pushed.",
        tasks.len()
    );
    eprintln!("To submit them, push it to main (refused if main moved since; then run this submit again):");
    eprintln!("  git push {remote} {branch}:main");
    eprintln!("or push the branch and open a pull request into main:");
    eprintln!("  git push {remote} {branch}");
    Ok(())
}

/// On a terminal, a spinner while the tasks are checked against the grid and pushed.
fn pushing_spinner(count: usize, remote: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("pushing {count} task(s) to {remote}"));
    spinner.enable_steady_tick(Duration::from_millis(100));
    Some(spinner)
}

//! `git dgrid validate`: check task files against the contract.

use crate::exit::No;
use crate::gitcmd;
use crate::grid::{changed_at_tip, entries_at_commit, entries_from_disk};
use crate::odb;
use crate::problem::Problem;
use crate::repo::LocalRepo;
use crate::settings::ALLOWED_SIGNERS;
use crate::task::Limits;
use crate::validate::{self, Entry};
use anyhow::{bail, Context, Result};
use gix::ObjectId;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

/// Validate task files: the given files, those a revision range added or changed, or all of tasks/ and nodes/
///
/// Exit status: 0 all valid, 1 problems found, 2 usage or git error.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or folders to validate [default: tasks/ and nodes/ of the working tree, or of HEAD in a bare repository]
    #[arg(value_name = "PATH", conflicts_with = "rev")]
    pub paths: Vec<PathBuf>,
    /// Validate the task files added or changed by the commits in this range (e.g. origin/main..HEAD)
    #[arg(long, value_name = "RANGE")]
    pub rev: Option<String>,
    /// Print one JSON object per problem ({"file", "field", "message"}), one per line
    #[arg(long)]
    pub json: bool,
    #[arg(long, value_name = "FILE", env = ALLOWED_SIGNERS.key.env, help = ALLOWED_SIGNERS.help())]
    pub allowed_signers: Option<String>,
}

pub fn run(args: Args) -> Result<()> {
    let repo = LocalRepo::current().ok();
    let limits = match &repo {
        Some(r) => r.limits()?,
        None => Limits::default(),
    };
    let config = match &repo {
        Some(_) => crate::repo::command_config()?,
        None => crate::config::GitConfig::empty(),
    };
    let signers = allowed_signers(args.allowed_signers.clone(), &config)?;
    let (entries, scope) = if let Some(range) = &args.rev {
        let repo = repo.as_ref().context("--rev needs a git repository")?;
        let (entries, changed) = entries_in_range(repo, range)?;
        (entries, Some(changed))
    } else if !args.paths.is_empty() {
        let top = repo.as_ref().and_then(|r| r.work_tree.clone());
        (entries_from_disk(top.as_deref(), &args.paths)?, None)
    } else {
        let repo =
            (repo.as_ref()).context("not in a git repository: give the files to validate")?;
        (whole_grid(repo)?, None)
    };
    let mut problems = validate::check_entries(&entries, scope.as_ref(), &limits);
    if let Some(repo) = &repo {
        // An id the archive holds, queued again: as `submit` refuses it.
        let remote = config.get("dgrid.remote").unwrap_or("origin").to_string();
        let gix_repo = repo.open()?;
        problems.extend(crate::grid::archived_problems(
            &repo.dir,
            &gix_repo,
            &remote,
            &entries,
            scope.as_ref(),
        )?);
    }
    if let Some(signers) = &signers {
        problems.extend(validate::check_signatures(
            &entries,
            scope.as_ref(),
            &limits,
            signers,
            chrono::Utc::now(),
        ));
    }
    // Placeholders (`.gitkeep`) are not checked, so not counted.
    let is_data = |path: &str| {
        !matches!(
            crate::layout::classify(path),
            Ok(crate::layout::PathKind::Ignored)
        )
    };
    let checked = match &scope {
        Some(s) => s.iter().filter(|p| is_data(p)).count(),
        None => entries.iter().filter(|e| is_data(&e.path)).count(),
    };
    report(&mut std::io::stdout().lock(), &problems, args.json)?;
    // Warnings go to stderr in both forms: stdout (and --json) lists what makes a file invalid.
    let warnings = validate::check_warnings(&entries, scope.as_ref(), &limits);
    report_warnings(&warnings);
    let mut summary = format!("{checked} file(s) checked, {} problem(s)", problems.len());
    if !warnings.is_empty() {
        summary.push_str(&format!(", {} warning(s)", warnings.len()));
    }
    if problems.is_empty() {
        eprintln!("{summary}");
        Ok(())
    } else {
        Err(No::new(summary).into())
    }
}

/// The signers of `--allowed-signers` (or `DGRID_ALLOWED_SIGNERS`, or git config
/// `dgrid.allowedSignersFile`), read; `None` when none is set: signatures are not checked.
pub fn allowed_signers(
    given: Option<String>,
    config: &crate::config::GitConfig,
) -> Result<Option<crate::trust::AllowedSigners>> {
    let file: Option<String> = ALLOWED_SIGNERS.resolve_opt(given, config)?;
    file.filter(|f| !f.trim().is_empty())
        .map(|f| crate::grid::read_allowed_signers(std::path::Path::new(&f)))
        .transpose()
}

/// One line per problem, as text or as a JSON object.
pub fn report(out: &mut impl Write, problems: &[Problem], json: bool) -> Result<()> {
    for p in problems {
        if json {
            writeln!(out, "{}", serde_json::to_string(p)?)?;
        } else {
            writeln!(out, "{p}")?;
        }
    }
    Ok(out.flush()?)
}

/// Each warning on stderr, `warning: ` and the problem's line (a warning never fails a command).
pub fn report_warnings(warnings: &[Problem]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn whole_grid(repo: &LocalRepo) -> Result<Vec<Entry>> {
    if let Some(top) = &repo.work_tree {
        let roots: Vec<PathBuf> = ["tasks", "nodes"]
            .iter()
            .map(|d| top.join(d))
            .filter(|p| p.exists())
            .collect();
        if roots.is_empty() {
            bail!(
                "{} has no tasks/ or nodes/ folder: not a grid (git dgrid init lays one out)",
                top.display()
            );
        }
        return entries_from_disk(Some(top), &roots);
    }
    let head = gitcmd::output(&repo.dir, &["rev-parse", "--verify", "HEAD^{commit}"])
        .context("HEAD has no commit to validate")?;
    let gix_repo = repo.open()?;
    entries_at_commit(&gix_repo, odb::parse_oid(&head)?)
}

/// The entries at the range's tip and the paths its commits added or changed.
fn entries_in_range(repo: &LocalRepo, range: &str) -> Result<(Vec<Entry>, BTreeSet<String>)> {
    if range.starts_with('-') {
        bail!("--rev: {range:?} is not a revision range");
    }
    let tip_rev = match range.rsplit_once("..") {
        Some((_, tip)) => tip.trim_start_matches('.'),
        None => range,
    };
    let tip_rev = if tip_rev.is_empty() { "HEAD" } else { tip_rev };
    let tip = gitcmd::output(
        &repo.dir,
        &[
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{tip_rev}^{{commit}}"),
        ],
    )
    .with_context(|| format!("--rev {range}: cannot resolve {tip_rev:?}"))?;
    let commits = gitcmd::output(&repo.dir, &["rev-list", "--end-of-options", range])
        .with_context(|| format!("--rev {range}: not a valid revision range"))?;
    let commits: Vec<ObjectId> = commits.lines().map(odb::parse_oid).collect::<Result<_>>()?;
    let gix_repo = repo.open()?;
    changed_at_tip(&gix_repo, odb::parse_oid(&tip)?, &commits)
}

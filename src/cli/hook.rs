//! `git dgrid hook pre-push REMOTE URL`: what the installed hook runs. Reads git's
//! `<local ref> <local sha> <remote ref> <remote sha>` lines, validates the task files the pushed
//! commits add or change, refuses the push with every problem listed, then runs a chained hook.

use crate::exit::{self, No, PassOn};
use crate::gitcmd;
use crate::hooks;
use crate::repo::LocalRepo;
use anyhow::{bail, Context, Result};
use std::io::Read;

/// Run a git hook (used by the installed hook scripts)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The hook: pre-push
    pub hook: String,
    /// The arguments git passed to the hook
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    if args.hook != "pre-push" {
        bail!(
            "unknown hook {:?}: git-dgrid only provides pre-push",
            args.hook
        );
    }
    let remote = args
        .args
        .first()
        .cloned()
        .unwrap_or_else(|| "origin".into());
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .context("cannot read the pushed refs from git")?;
    let repo = LocalRepo::current()?;
    let limits = repo.limits()?;
    let gix_repo = repo.open()?;
    // A grid that sets dgrid.allowedSignersFile refuses pushes of unsigned or untrusted tasks.
    let config = crate::repo::command_config()?;
    let signers = super::validate::allowed_signers(None, &config)?;
    let mut problems = Vec::new();
    for line in String::from_utf8_lossy(&input).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_local_ref, local_sha, remote_ref, remote_sha] = fields[..] else {
            continue;
        };
        if local_sha.bytes().all(|b| b == b'0') {
            continue; // a deletion pushes no content
        }
        if remote_ref == "refs/heads/main" && !remote_sha.bytes().all(|b| b == b'0') {
            if let Some(why) = crate::grid::resurrection(&repo.dir, local_sha, remote_sha)? {
                eprintln!("git-dgrid: push refused: {why}");
                return Err(No::said().into());
            }
        }
        let commits = pushed_commits(&repo, &remote, local_sha, remote_sha)?;
        let tip = crate::odb::parse_oid(local_sha)?;
        let (entries, changed) = crate::grid::changed_at_tip(&gix_repo, tip, &commits)?;
        problems.extend(crate::validate::check_entries(
            &entries,
            Some(&changed),
            &limits,
        ));
        problems.extend(crate::grid::archived_problems(
            &repo.dir,
            &gix_repo,
            &remote,
            &entries,
            Some(&changed),
        )?);
        for w in crate::validate::check_warnings(&entries, Some(&changed), &limits) {
            eprintln!("git-dgrid: warning: {w}");
        }
        if let Some(signers) = &signers {
            problems.extend(crate::validate::check_signatures(
                &entries,
                Some(&changed),
                &limits,
                signers,
                chrono::Utc::now(),
            ));
        }
    }
    if !problems.is_empty() {
        eprintln!(
            "git-dgrid: push refused: {} problem(s) in task files:",
            problems.len()
        );
        for p in &problems {
            eprintln!("  {p}");
        }
        eprintln!("Fix them and push again (check with: git dgrid validate).");
        return Err(No::said().into());
    }
    run_chained(&repo, &args.args, &input)
}

/// The commits this push sends: those not on the remote as far as we know it.
fn pushed_commits(
    repo: &LocalRepo,
    remote: &str,
    local: &str,
    remote_sha: &str,
) -> Result<Vec<gix::ObjectId>> {
    let new_ref = remote_sha.bytes().all(|b| b == b'0');
    let known = !new_ref
        && gitcmd::run(
            &repo.dir,
            &["cat-file", "-e", &format!("{remote_sha}^{{commit}}")],
        )?
        .success;
    let listing = if known {
        gitcmd::output(&repo.dir, &["rev-list", local, &format!("^{remote_sha}")])?
    } else {
        // A new branch (or a remote tip we have not fetched): everything not on the remote's branches.
        gitcmd::output(
            &repo.dir,
            &["rev-list", local, "--not", &format!("--remotes={remote}")],
        )?
    };
    listing.lines().map(crate::odb::parse_oid).collect()
}

/// Runs the hook that was there before ours, with the same arguments and input.
/// Its status is the push's: git refuses the push unless it is 0.
fn run_chained(repo: &LocalRepo, args: &[String], input: &[u8]) -> Result<()> {
    let chained = hooks::chained_hook(&repo.hooks_dir()?);
    if !chained.exists() {
        return Ok(());
    }
    let output = duct::cmd(&chained, args)
        .stdin_bytes(input.to_vec())
        .unchecked()
        .run()
        .with_context(|| format!("cannot run the chained hook {}", chained.display()))?;
    match output.status.code() {
        Some(0) => Ok(()),
        code => Err(PassOn(code.map_or(exit::ERROR, |c| c.clamp(1, 255) as u8)).into()),
    }
}

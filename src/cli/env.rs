//! `git dgrid env`: the effective configuration and where each value comes from, secrets redacted.

use crate::config::GitConfig;
use crate::gitcmd;
use crate::settings::describe;
use crate::settings::{default_push_budget, Key, PUSH_BUDGET, REMOTE, REPO_URL, SETTINGS};
use anyhow::Result;
use std::io::Write;

/// Print the effective configuration and where each value comes from (secrets redacted)
#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let cwd = std::env::current_dir()?;
    writeln!(out, "git-dgrid {}", env!("CARGO_PKG_VERSION"))?;
    let git = gitcmd::require_git()?;
    let git_version = gitcmd::output(&cwd, &["--version"]).unwrap_or_default();
    writeln!(out, "git: {} ({git_version})", git.display())?;
    let docker = duct::cmd("docker", ["version", "--format", "{{.Server.Version}}"])
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run();
    match docker {
        Ok(docker) if docker.status.success() => writeln!(
            out,
            "docker: server {}",
            String::from_utf8_lossy(&docker.stdout).trim()
        )?,
        Ok(docker) => writeln!(
            out,
            "docker: not usable ({})",
            String::from_utf8_lossy(&docker.stderr)
                .lines()
                .last()
                .unwrap_or("")
                .trim()
        )?,
        Err(_) => writeln!(out, "docker: not installed")?,
    }
    match gitcmd::output_opt(&cwd, &["rev-parse", "--absolute-git-dir"])? {
        Some(dir) => writeln!(out, "repository: {dir}")?,
        None => writeln!(out, "repository: (not in a git repository)")?,
    }
    let config = crate::repo::command_config()?;
    writeln!(
        out,
        "\nprecedence: command-line flag > environment variable > git config > default\n"
    )?;
    let rows: Vec<(String, String, String)> = SETTINGS
        .iter()
        .map(|s| {
            let (mut value, source) = describe(*s, &config);
            if s.key().flag == PUSH_BUDGET.key.flag && source == "default" {
                if let Some(url) = remote_url(&cwd, &config) {
                    let (budget, why) = default_push_budget(&url);
                    value = format!("{value} = {budget} here ({why})");
                }
            }
            (row_name(s.key()), value, source)
        })
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .min(50);
    for (name, value, source) in rows {
        writeln!(out, "{name:w0$}  {value:w1$}  {source}")?;
    }
    Ok(out.flush()?)
}

/// The grid's URL as the worker would see it (`--repo`'s setting, else the clone's remote), for
/// the defaults worked out from it.
fn remote_url(cwd: &std::path::Path, config: &GitConfig) -> Option<String> {
    let from_env = |var: Option<&str>| {
        var.and_then(|v| std::env::var(v).ok())
            .filter(|v| !v.is_empty())
    };
    if let Some(url) = from_env(REPO_URL.key.env) {
        return Some(url);
    }
    if let Ok(Some(url)) = REPO_URL.resolve_opt::<String>(None, config) {
        return Some(url);
    }
    let remote: String = match from_env(REMOTE.key.env) {
        Some(remote) => remote,
        None => REMOTE.resolve(None, config).ok()?,
    };
    gitcmd::output_opt(cwd, &["remote", "get-url", &remote])
        .ok()
        .flatten()
}

/// `--remote (DGRID_REMOTE, dgrid.remote)`; a setting without a flag by its other names.
pub fn row_name(key: &Key) -> String {
    let sources: Vec<&str> = [key.env, key.git].into_iter().flatten().collect();
    match key.flag {
        Some(flag) => format!("{flag} ({})", sources.join(", ")),
        None => sources.join(", "),
    }
}

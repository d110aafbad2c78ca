//! `git dgrid env`: the effective configuration and where each value comes from, secrets redacted.

use crate::config::GitConfig;
use crate::gitcmd;
use crate::settings::describe;
use crate::settings::{
    default_push_budget, Key, NODE_ID, PUSH_BUDGET, REMOTE, REPO_URL, SETTINGS, STATE_DIR,
};
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
            // The state dir and node id as a worker here would use them, beside how defaults are
            // worked out: a newcomer asks "where is my state, who am I".
            if s.key().flag == STATE_DIR.key.flag && source == "default" {
                value = format!("{value} = {} here", state_dir());
            }
            if s.key().flag == NODE_ID.key.flag && source == "default" {
                value = format!("{value} = {} here", node_id(&config));
            }
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

/// The default state dir, resolved (only called when neither environment nor git config set it).
fn state_dir() -> String {
    match crate::grid::Location::default().state_dir() {
        Ok(dir) => dir.display().to_string(),
        Err(why) => format!("(none: {why:#})"),
    }
}

/// The node id a worker here would take: the one kept in the state dir, or what the first `work`
/// will choose. Only read: `env` creates nothing.
fn node_id(config: &GitConfig) -> String {
    let kept = match describe(&STATE_DIR, config) {
        (dir, source) if source != "default" => Some(std::path::PathBuf::from(dir)),
        _ => crate::grid::Location::default().state_dir().ok(),
    }
    .map(|dir| dir.join("node-id"));
    match kept.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        Some(id) if !id.trim().is_empty() => {
            format!("{} (kept in {})", id.trim(), kept.unwrap().display())
        }
        _ => format!(
            "(not chosen yet: the first `work` takes {}-XXXXXX)",
            crate::node::hostname()
        ),
    }
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

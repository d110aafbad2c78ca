//! Running the `git` binary. Fetch and push go through it (gix does not push), which also gives users
//! their credential helpers, SSH agents and `insteadOf` rules.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `git` must be on PATH; this is checked once, with a clear error.
pub fn require_git() -> Result<&'static Path> {
    static GIT: OnceLock<Option<PathBuf>> = OnceLock::new();
    match GIT.get_or_init(|| which::which("git").ok()) {
        Some(path) => Ok(path),
        None => bail!("git is not installed or not on PATH; git-dgrid needs the git command (https://git-scm.com/downloads)"),
    }
}

/// The output of a finished git command.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `git args...` in `dir`, never prompting for credentials, capturing both streams.
pub fn run(dir: &Path, args: &[&str]) -> Result<Output> {
    let git = require_git()?;
    let mut expression = duct::cmd(git, args)
        .dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    for (key, value) in token_helper_config() {
        expression = expression.env(key, value);
    }
    let output = expression
        .run()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    Ok(Output {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs git and returns its trimmed stdout, or an error carrying git's own message.
pub fn output(dir: &Path, args: &[&str]) -> Result<String> {
    let out = run(dir, args)?;
    if !out.success {
        bail!("git {} failed: {}", args.join(" "), out.stderr.trim());
    }
    Ok(out.stdout.trim_end().to_string())
}

/// Like [`output`], but `None` when git says no (e.g. an unset config key).
pub fn output_opt(dir: &Path, args: &[&str]) -> Result<Option<String>> {
    let out = run(dir, args)?;
    Ok(out.success.then(|| out.stdout.trim_end().to_string()))
}

pub fn config(dir: &Path, key: &str) -> Result<Option<String>> {
    output_opt(dir, &["config", "--get", key])
}

/// With `GIT_TOKEN` set (the seed's variable), git gets a credential helper *through the
/// environment* that answers with the token, itself read from the environment when git asks: the
/// token is never written into a URL, `.git/config`, a commit or a log. Helpers the user already
/// has are asked first.
fn token_helper_config() -> Vec<(String, String)> {
    if std::env::var_os("GIT_TOKEN").is_none_or(|t| t.is_empty()) {
        return Vec::new();
    }
    let base: usize = std::env::var("GIT_CONFIG_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let helper = r#"!f() { test "$1" = get || exit 0; echo "username=${GIT_USERNAME:-x-access-token}"; echo "password=$GIT_TOKEN"; }; f"#;
    vec![
        ("GIT_CONFIG_COUNT".into(), (base + 1).to_string()),
        (format!("GIT_CONFIG_KEY_{base}"), "credential.helper".into()),
        (format!("GIT_CONFIG_VALUE_{base}"), helper.into()),
    ]
}

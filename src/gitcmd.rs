//! Running the `git` binary. Fetch and push go through it (gix does not push), which also gives users
//! their credential helpers, SSH agents and `insteadOf` rules.

use anyhow::{bail, Context, Result};
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

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
    let output = expression(dir, args)?.run().with_context(|| {
        format!(
            "cannot run git {}",
            crate::text::redact_urls(&args.join(" "))
        )
    })?;
    Ok(Output::from(&output))
}

/// How long a git command that talks to a remote may take, unless `DGRID_GIT_TIMEOUT` (seconds)
/// says otherwise.
pub const DEFAULT_REMOTE_TIMEOUT: Duration =
    Duration::from_secs(crate::settings::GIT_TIMEOUT.fixed());

/// Like [`run`], for commands that talk to a remote (fetch, push, ls-remote). A remote that stops
/// answering must not wedge a worker: after the timeout, git and everything it started (ssh, a
/// remote helper, a local receive-pack) are killed, and the command fails with a message that says
/// so, which callers treat like an unreachable remote. A push stopped this way may still have
/// landed; the compare-and-swap protocol finds out on the next read.
pub fn run_remote(dir: &Path, args: &[&str]) -> Result<Output> {
    let timeout = crate::settings::GIT_TIMEOUT
        .key
        .env
        .and_then(|var| std::env::var(var).ok())
        .and_then(|s| s.parse().ok())
        .filter(|&secs| secs > 0)
        .map_or(DEFAULT_REMOTE_TIMEOUT, Duration::from_secs);
    // Without a terminal (a daemon, cron), git runs in a process group of its own, so that a
    // timeout stops its children too. On a terminal it stays in ours: ssh may need to ask the user
    // something, which a background group cannot do, and the user can press Ctrl-C.
    let own_group = !std::io::stdin().is_terminal();
    let mut expression = expression(dir, args)?;
    if own_group {
        expression = expression.before_spawn(|command| {
            command.process_group(0);
            Ok(())
        });
    }
    let handle = expression
        .start()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    if let Some(output) = handle.wait_timeout(timeout)? {
        return Ok(Output::from(output));
    }
    if own_group {
        for pid in handle.pids() {
            if let Ok(group) = libc::pid_t::try_from(pid) {
                // SAFETY: killpg only sends a signal. `group` is the group git was started in; the
                // system does not reuse a group's id while any process is left in it, and with none
                // left the call finds nothing.
                unsafe { libc::killpg(group, libc::SIGKILL) };
            }
        }
        let _ = handle.into_output(); // reap it
    } else {
        // Only git itself; whatever it started may hold its pipes open, so do not wait for them.
        let _ = handle.kill();
    }
    Ok(Output {
        success: false,
        stdout: String::new(),
        stderr: format!(
            "git {} gave no answer within {} s and was stopped (DGRID_GIT_TIMEOUT)",
            args.first().copied().unwrap_or(""),
            timeout.as_secs()
        ),
    })
}

/// `git args...` in `dir`: no prompts, both streams captured, the token helper when there is a token.
fn expression(dir: &Path, args: &[&str]) -> Result<duct::Expression> {
    Ok(without_stdout(dir, args)?.stdout_capture())
}

/// [`expression`] with stdout left to the caller (duct lets the innermost redirection win).
fn without_stdout(dir: &Path, args: &[&str]) -> Result<duct::Expression> {
    let git = require_git()?;
    let mut expression = duct::cmd(git, args)
        .dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stderr_capture()
        .unchecked();
    for (key, value) in token_helper_config() {
        expression = expression.env(key, value);
    }
    #[cfg(test)]
    for (key, value) in test_env::VARS {
        expression = expression.env(key, value);
    }
    Ok(expression)
}

/// The git environment of the unit tests (as jj's `TestEnvironment`, and the integration tests'
/// `Env`): no global or system config of the user running them, a fixed identity and time zone.
/// Every git the crate runs in a unit test gets it ([`without_stdout`]), and a test that runs git
/// itself starts it with [`test_env::git`], so the suite passes on a machine where git knows no
/// one (`env -i PATH=$PATH HOME=$(mktemp -d) cargo test`) and is not changed by one where it does.
#[cfg(test)]
pub(crate) mod test_env {
    pub(crate) const VARS: [(&str, &str); 8] = [
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_AUTHOR_NAME", "Unit Test"),
        ("GIT_AUTHOR_EMAIL", "unit@example.com"),
        ("GIT_COMMITTER_NAME", "Unit Test"),
        ("GIT_COMMITTER_EMAIL", "unit@example.com"),
        ("TZ", "UTC"),
        ("GIT_TERMINAL_PROMPT", "0"),
    ];

    /// `git` in `dir` with the unit tests' environment.
    pub(crate) fn git(dir: &std::path::Path) -> std::process::Command {
        let mut command = std::process::Command::new("git");
        command.current_dir(dir).envs(VARS);
        command
    }
}

/// Runs a local git command (never one that talks to a remote) and hands each line of its stdout
/// to `line` until that returns false; git is then stopped. For reads that usually end early,
/// such as the newest commits of a long history.
pub fn each_line(dir: &Path, args: &[&str], mut line: impl FnMut(&str) -> bool) -> Result<()> {
    use std::io::BufRead;
    let reader = without_stdout(dir, args)?
        .reader()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    let mut reader = std::io::BufReader::new(reader);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = reader
            .read_until(b'\n', &mut buffer)
            .with_context(|| format!("cannot read what git {} printed", args.join(" ")))?;
        if read == 0 || !line(String::from_utf8_lossy(&buffer).trim_end_matches('\n')) {
            // Dropping the reader stops git if it is still running.
            return Ok(());
        }
    }
}

impl From<&std::process::Output> for Output {
    fn from(output: &std::process::Output) -> Output {
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs git and returns its trimmed stdout, or an error carrying git's own message.
pub fn output(dir: &Path, args: &[&str]) -> Result<String> {
    let out = run(dir, args)?;
    if !out.success {
        // An argument can be a URL with a token in it (`git remote add origin URL`).
        bail!(
            "git {} failed: {}",
            crate::text::redact_urls(&args.join(" ")),
            crate::text::redact_urls(out.stderr.trim())
        );
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

/// Credentials taken out of a grid URL (`https://user:token@host/...`) by [`strip_credentials`]:
/// kept in this process's memory only and handed to git like `GIT_TOKEN`.
static URL_CREDENTIALS: OnceLock<(String, String)> = OnceLock::new();

/// Takes `user:secret@` out of an http(s) URL and keeps them for git's credential helper, so the URL
/// that git stores (the cache clone's `.git/config`) and that messages show carries no secret.
/// Other URLs, and a user name without a secret, come back unchanged.
pub fn strip_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return url.to_string();
    }
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let Some((user, secret)) = rest[..at].split_once(':') else {
        return url.to_string();
    };
    // The first grid URL of a process wins; a process works on one grid.
    let _ = URL_CREDENTIALS.set((percent_decode(user), percent_decode(secret)));
    format!("{scheme}://{}", &rest[at + 1..])
}

/// `%XX` escapes, as RFC 3986 allows in a URL's user information; anything malformed stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// With a token (`GIT_TOKEN`, the seed's variable, or one taken out of the grid URL), git gets a
/// credential helper *through the environment* that answers with the token, itself read from the
/// environment of git's child when git asks: the token is never written into a URL, `.git/config`, a
/// commit or a log. The helper list is reset first, so that no helper of the user's (`store`, say)
/// answers with other credentials or writes this token to disk when git approves it.
fn token_helper_config() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if let Some((user, secret)) = URL_CREDENTIALS.get() {
        vars.push(("GIT_USERNAME".into(), user.clone()));
        vars.push(("GIT_TOKEN".into(), secret.clone()));
    } else if std::env::var_os("GIT_TOKEN").is_none_or(|t| t.is_empty()) {
        return vars;
    }
    let base: usize = std::env::var("GIT_CONFIG_COUNT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let helper = r#"!f() { test "$1" = get || exit 0; echo "username=${GIT_USERNAME:-x-access-token}"; echo "password=$GIT_TOKEN"; }; f"#;
    vars.extend([
        ("GIT_CONFIG_COUNT".into(), (base + 2).to_string()),
        (format!("GIT_CONFIG_KEY_{base}"), "credential.helper".into()),
        (format!("GIT_CONFIG_VALUE_{base}"), String::new()),
        (
            format!("GIT_CONFIG_KEY_{}", base + 1),
            "credential.helper".into(),
        ),
        (format!("GIT_CONFIG_VALUE_{}", base + 1), helper.into()),
    ]);
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        assert_eq!(
            strip_credentials("https://bot:ghp%2Fx@github.com:443/o/grid.git"),
            "https://github.com:443/o/grid.git"
        );
        assert_eq!(
            URL_CREDENTIALS.get(),
            Some(&("bot".to_string(), "ghp/x".to_string()))
        );
        for unchanged in [
            "ssh://git@github.com/o/grid.git",
            "git@github.com:o/grid.git",
            "https://bot@github.com/o/grid.git",
            "https://github.com/o/a@b.git",
            "/srv/grid.git",
        ] {
            assert_eq!(strip_credentials(unchanged), unchanged);
        }
    }
}

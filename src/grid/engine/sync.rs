//! Talking to the remote through the `git` binary: a minimal fetch of `main`, and a compare-and-swap
//! push whose every outcome is classified, because a rejected push treated as success is how the
//! Python predecessor ran tasks twice.

use crate::gitcmd;
use crate::grid::engine::rate_limit;
use anyhow::Result;
use gix::ObjectId;
use std::path::Path;

pub(crate) const BRANCH_REF: &str = "refs/heads/main";

message_error!(
    /// The remote refused on purpose (a hook declined, access denied): retrying will not help, so
    /// a worker stops instead of retrying forever.
    RemoteRefused
);

/// What became of a push or fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Done,
    /// Someone else moved `main` first: fetch, re-check the intent, try again.
    LostRace(String),
    /// The remote refused on purpose (a hook, a protected branch): retrying will not help.
    Declined(String),
    /// Authentication or authorization failed.
    Denied(String),
    /// The remote could not be reached, or answered with nonsense; worth a few retries.
    Unreachable(String),
    /// The remote has no `main` (fetch only).
    NoBranch,
    /// The remote limits our rate (HTTP 429, GitHub's secondary rate limit): slow down and try
    /// again, the same change is accepted later.
    RateLimited(String),
}

pub(crate) const LOST_RACE: [&str; 8] = [
    "stale info",
    "non-fast-forward",
    "fetch first",
    "failed to update ref",
    "failed to lock",
    "cannot lock ref",
    "incorrect old value",
    "reference already exists",
];

const DENIED: [&str; 9] = [
    "permission denied",
    "permission to ",
    "authentication failed",
    "access denied",
    "could not read username",
    "could not read password",
    "the requested url returned error: 403",
    "the requested url returned error: 401",
    "service not enabled",
];

/// Classifies `git push --porcelain` output for the update of `refs/heads/main`.
pub(crate) fn classify_push(success: bool, stdout: &str, stderr: &str) -> PushOutcome {
    let line = stdout.lines().find(|l| {
        let mut fields = l.split('\t');
        let flag = fields.next().unwrap_or("");
        flag.len() == 1
            && fields
                .next()
                .is_some_and(|spec| spec.ends_with(&format!(":{BRANCH_REF}")))
    });
    if let Some(line) = line {
        let flag = line.chars().next().unwrap_or('!');
        let summary = line.split('\t').nth(2).unwrap_or("").to_string();
        if flag != '!' {
            // ' ' fast-forward, '*' new ref, '+' forced, '=' already there (our own earlier push).
            return if success {
                PushOutcome::Done
            } else {
                other_failure(stderr)
            };
        }
        let lower = summary.to_lowercase();
        if LOST_RACE.iter().any(|s| lower.contains(s)) {
            return PushOutcome::LostRace(summary);
        }
        let why = if stderr.trim().is_empty() {
            summary
        } else {
            format!("{summary}\n{}", remote_messages(stderr))
        };
        let why = why.trim().to_string();
        // A hook that declines because we push too often: not a refusal of the change.
        if rate_limit::is_rate_limit(&why) {
            return PushOutcome::RateLimited(why);
        }
        return PushOutcome::Declined(why);
    }
    if success {
        // No line for main and no error: git had nothing to say, which cannot be trusted as success.
        return PushOutcome::Unreachable(format!(
            "git push printed no result for {BRANCH_REF}: {}",
            stderr.trim()
        ));
    }
    other_failure(stderr)
}

/// Whether a server that denies access said so in its own words, beyond git's "Please make sure
/// you have the correct access rights", which git also prints when ssh cannot connect at all:
/// gitolite's `FATAL: W any grid w1 DENIED by fallthru` (also behind `remote: `).
fn server_denied(stderr: &str) -> bool {
    stderr.lines().any(|line| {
        let line = line.trim_start();
        let line = line.strip_prefix("remote:").unwrap_or(line).trim_start();
        line.starts_with("FATAL:") && line.contains(" DENIED")
    })
}

/// Classifies a failed git command by its stderr.
pub(crate) fn other_failure(stderr: &str) -> PushOutcome {
    let lower = stderr.to_lowercase();
    let message = stderr.trim().to_string();
    if server_denied(stderr) {
        return PushOutcome::Denied(message);
    }
    // Before the denials: GitHub answers a secondary rate limit with a 403 and says why.
    if rate_limit::is_rate_limit(stderr) {
        return PushOutcome::RateLimited(message);
    }
    if lower.contains("couldn't find remote ref") {
        return PushOutcome::NoBranch;
    }
    if LOST_RACE.iter().any(|s| lower.contains(s)) {
        return PushOutcome::LostRace(message);
    }
    if DENIED.iter().any(|s| lower.contains(s)) {
        return PushOutcome::Denied(message);
    }
    if lower.contains("hook declined") || lower.contains("[remote rejected]") {
        return PushOutcome::Declined(message);
    }
    PushOutcome::Unreachable(message)
}

/// Whether git's message says the server answered with an HTTP server error (5xx: "The requested
/// URL returned error: 500", "RPC failed; HTTP 503"): trouble on its side that may pass.
pub(crate) fn is_server_error(message: &str) -> bool {
    let lower = message.to_lowercase();
    ["returned error: 5", "rpc failed; http 5"]
        .iter()
        .any(|sign| {
            lower.match_indices(sign).any(|(at, _)| {
                let rest = &lower.as_bytes()[at + sign.len()..];
                rest.len() >= 2 && rest[..2].iter().all(u8::is_ascii_digit)
            })
        })
}

/// The `remote:` lines of git's stderr: what the server's hooks said.
fn remote_messages(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("remote:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fetches `main` of `remote` into `tracking_ref`; `Done` also when nothing changed.
pub(crate) fn fetch(dir: &Path, remote: &str, tracking_ref: &str) -> Result<PushOutcome> {
    let refspec = format!("+{BRANCH_REF}:{tracking_ref}");
    let out = gitcmd::run_remote(
        dir,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--no-auto-gc",
            remote,
            &refspec,
        ],
    )?;
    Ok(if out.success {
        PushOutcome::Done
    } else {
        other_failure(&out.stderr)
    })
}

/// What the remote says its `main` is, without transferring anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteTip {
    /// The commit `main` points to; `None` when the remote has no `main` yet.
    At(Option<ObjectId>),
    /// The remote could not be asked; git's message.
    Unreachable(String),
}

/// Asks `remote` where its `main` is (`git ls-remote`: a round trip, no objects).
pub(crate) fn ls_remote(dir: &Path, remote: &str) -> Result<RemoteTip> {
    let out = gitcmd::run_remote(dir, &["ls-remote", remote, BRANCH_REF])?;
    if !out.success {
        return Ok(RemoteTip::Unreachable(out.stderr.trim().to_string()));
    }
    Ok(RemoteTip::At(parse_ls_remote(&out.stdout)))
}

/// The commit of the first line of `git ls-remote` output; `None` when there is none.
fn parse_ls_remote(stdout: &str) -> Option<ObjectId> {
    stdout
        .split_whitespace()
        .next()
        .and_then(|hex| ObjectId::from_hex(hex.as_bytes()).ok())
}

/// Pushes `commit` to `main` only if `main` is still `expected` (`None`: must not exist yet).
pub fn push_cas(
    dir: &Path,
    remote: &str,
    commit: ObjectId,
    expected: Option<ObjectId>,
) -> Result<PushOutcome> {
    let lease = format!(
        "--force-with-lease={BRANCH_REF}:{}",
        expected.map(|e| e.to_string()).unwrap_or_default()
    );
    let refspec = format!("{commit}:{BRANCH_REF}");
    // --no-verify: every transition validates what it writes; a user's pre-push hooks (LFS, linters)
    // are for their own pushes, not for ours.
    let out = gitcmd::run_remote(
        dir,
        &[
            "push",
            "--porcelain",
            "--no-verify",
            &lease,
            remote,
            &refspec,
        ],
    )?;
    Ok(classify_push(out.success, &out.stdout, &out.stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(flag: &str, summary: &str) -> String {
        format!("To /tmp/r.git\n{flag}\tabc:refs/heads/main\t{summary}\nDone\n")
    }

    #[test]
    fn ls_remote_output() {
        let hex = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            parse_ls_remote(&format!("{hex}\trefs/heads/main\n")),
            Some(ObjectId::from_hex(hex.as_bytes()).unwrap())
        );
        assert_eq!(parse_ls_remote(""), None);
    }

    #[test]
    fn push_outcomes() {
        assert_eq!(
            classify_push(true, &line(" ", "1..2"), ""),
            PushOutcome::Done
        );
        assert_eq!(
            classify_push(true, &line("*", "[new branch]"), ""),
            PushOutcome::Done
        );
        for reason in [
            "[rejected] (stale info)",
            "[rejected] (non-fast-forward)",
            "[rejected] (fetch first)",
            "[remote rejected] (failed to update ref)",
            "[remote rejected] (failed to lock)",
        ] {
            assert!(
                matches!(
                    classify_push(false, &line("!", reason), ""),
                    PushOutcome::LostRace(_)
                ),
                "{reason}"
            );
        }
        let declined = classify_push(
            false,
            &line("!", "[remote rejected] (pre-receive hook declined)"),
            "remote: no tasks on Fridays\n",
        );
        assert!(
            matches!(&declined, PushOutcome::Declined(m) if m.contains("no tasks on Fridays")),
            "{declined:?}"
        );
        assert!(matches!(
            classify_push(
                false,
                "",
                "fatal: remote error: access denied or repository not exported: /x"
            ),
            PushOutcome::Denied(_)
        ));
        assert!(matches!(
            classify_push(
                false,
                "",
                "remote: Permission to o/r.git denied to u.\nfatal: unable to access"
            ),
            PushOutcome::Denied(_)
        ));
        assert!(matches!(
            classify_push(
                false,
                "",
                "fatal: unable to connect to 127.0.0.1:\nConnection refused"
            ),
            PushOutcome::Unreachable(_)
        ));
        assert!(matches!(
            classify_push(true, "", ""),
            PushOutcome::Unreachable(_)
        ));
    }

    #[test]
    fn server_errors_are_told_apart() {
        for five in [
            "error: RPC failed; HTTP 500 curl 22 The requested URL returned error: 500\nfatal: expected flush after ref listing\n",
            "fatal: unable to access 'http://h/g/': The requested URL returned error: 503\n",
        ] {
            assert!(is_server_error(five), "{five}");
        }
        for other in [
            "fatal: unable to access 'http://h/g/': The requested URL returned error: 404\n",
            "The requested URL returned error: 429",
            "returned error: 5",
            "fatal: unable to connect to 127.0.0.1:\nConnection refused",
        ] {
            assert!(!is_server_error(other), "{other}");
        }
    }

    #[test]
    fn rate_limits_are_neither_declined_nor_denied() {
        let github = "remote: You have exceeded a secondary rate limit. Please wait a few minutes before you try again.\n";
        assert!(matches!(
            classify_push(false, &line("!", "[remote rejected] (pre-receive hook declined)"), github),
            PushOutcome::RateLimited(m) if m.contains("secondary rate limit")
        ));
        assert!(matches!(
            classify_push(false, "", "error: RPC failed; HTTP 429 curl 22 The requested URL returned error: 429\nfatal: the remote end hung up unexpectedly\n"),
            PushOutcome::RateLimited(_)
        ));
        // GitHub answers a secondary rate limit with a 403: still not a denial.
        assert!(matches!(
            other_failure(&format!("{github}fatal: unable to access 'https://github.com/o/r.git/': The requested URL returned error: 403\n")),
            PushOutcome::RateLimited(_)
        ));
        assert!(matches!(
            other_failure("remote: GitLab: 429 Too Many Requests\nfatal: Could not read from remote repository.\n"),
            PushOutcome::RateLimited(_)
        ));
    }

    /// git's closing words on an ssh remote, whatever went wrong.
    const GIT_SSH_TAIL: &str = "fatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";

    #[test]
    fn refusals_of_real_servers_are_final_and_connection_failures_are_not() {
        // As gitolite3 (3.6) and OpenSSH print them.
        for denied in [
            "FATAL: W any grid-ro w1 DENIED by fallthru\n(or you mis-spelled the reponame)\n",
            "FATAL: R any grid nobody DENIED by fallthru\n(or you mis-spelled the reponame)\n",
            "git@host: Permission denied (publickey).\n",
        ] {
            let stderr = format!("{denied}{GIT_SSH_TAIL}");
            assert!(
                matches!(other_failure(&stderr), PushOutcome::Denied(_)),
                "{stderr}"
            );
        }
        assert!(matches!(
            other_failure("fatal: unable to access 'https://h/g.git/': The requested URL returned error: 403\n"),
            PushOutcome::Denied(_)
        ));
        for unreachable in [
            "ssh: connect to host h port 22: Connection refused\r\n",
            "ssh: Could not resolve hostname h: Name or service not known\r\n",
            "Connection closed by 127.0.0.1 port 22\r\n",
            "",
        ] {
            let stderr = format!("{unreachable}{GIT_SSH_TAIL}");
            assert!(
                matches!(other_failure(&stderr), PushOutcome::Unreachable(_)),
                "{stderr}"
            );
        }
    }
}

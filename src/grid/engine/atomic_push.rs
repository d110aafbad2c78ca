//! Several refs moved in ONE `git push --atomic`, each with its own lease: either every ref moves or
//! none does. `archive` (main + dgrid-archive) and `compact` use it; the answer is classified with the
//! rules of [`crate::grid::engine::sync`] (lost race, rate limited, declined, denied, unreachable).

use crate::gitcmd;
use crate::grid::engine::rate_limit;
use crate::grid::engine::sync::{other_failure, PushOutcome, LOST_RACE};
use anyhow::Result;
use gix::ObjectId;
use std::path::Path;

/// One ref to move: to `new`, only if the remote's ref is still `expected` (`None`: must not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefUpdate {
    /// Full ref name, e.g. `refs/heads/dgrid-archive`.
    pub name: String,
    pub new: ObjectId,
    pub expected: Option<ObjectId>,
}

/// The `git push` arguments (after `push`) for `updates`: `--atomic --porcelain --no-verify`, one
/// `--force-with-lease=<ref>:<expected>` per ref (empty expected: the ref must not exist), refspecs.
pub(crate) fn push_args(remote: &str, updates: &[RefUpdate]) -> Vec<String> {
    let mut args: Vec<String> = ["push", "--atomic", "--porcelain", "--no-verify"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for u in updates {
        args.push(format!(
            "--force-with-lease={}:{}",
            u.name,
            u.expected.map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    args.push(remote.to_string());
    for u in updates {
        args.push(format!("{}:{}", u.new, u.name));
    }
    args
}

/// Pushes every update of `updates` in one atomic push; `Done` only when the remote reported every
/// ref as updated.
pub(crate) fn push_atomic(dir: &Path, remote: &str, updates: &[RefUpdate]) -> Result<PushOutcome> {
    let args = push_args(remote, updates);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = gitcmd::run_remote(dir, &args)?;
    let names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    Ok(classify_atomic(
        out.success,
        &out.stdout,
        &out.stderr,
        &names,
    ))
}

/// The porcelain line (flag, summary) for `name`, if git printed one.
fn line_for<'a>(stdout: &'a str, name: &str) -> Option<(char, &'a str)> {
    stdout.lines().find_map(|l| {
        let mut fields = l.split('\t');
        let flag = fields.next()?;
        let spec = fields.next()?;
        if flag.chars().count() != 1 || !spec.ends_with(&format!(":{name}")) {
            return None;
        }
        Some((flag.chars().next()?, fields.next().unwrap_or("")))
    })
}

/// Classifies the answer to an atomic push of the refs `names`. A ref refused only because another
/// one was ("atomic push failed", "atomic transaction failed") says nothing by itself: the outcome
/// is that of the ref that was refused for its own reason.
pub(crate) fn classify_atomic(
    success: bool,
    stdout: &str,
    stderr: &str,
    names: &[&str],
) -> PushOutcome {
    let lines: Vec<Option<(char, &str)>> = names.iter().map(|n| line_for(stdout, n)).collect();
    if lines.iter().all(|l| matches!(l, Some((f, _)) if *f != '!')) {
        return if success {
            PushOutcome::Done
        } else {
            other_failure(stderr)
        };
    }
    let own: Vec<&str> = lines
        .iter()
        .flatten()
        .filter(|(f, _)| *f == '!')
        .map(|(_, s)| *s)
        .filter(|s| !s.to_lowercase().contains("atomic"))
        .collect();
    if own.iter().any(|s| {
        let lower = s.to_lowercase();
        LOST_RACE.iter().any(|r| lower.contains(r))
    }) {
        return PushOutcome::LostRace(own.join("; "));
    }
    if lines.iter().all(Option::is_none) || own.is_empty() {
        if success {
            return PushOutcome::Unreachable(format!(
                "git push printed no result for {}: {}",
                names.join(", "),
                stderr.trim()
            ));
        }
        return other_failure(stderr);
    }
    let remote: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("remote:"))
        .collect();
    let why = format!("{}\n{}", own.join("; "), remote.join("\n"))
        .trim()
        .to_string();
    if rate_limit::is_rate_limit(&why) {
        return PushOutcome::RateLimited(why);
    }
    PushOutcome::Declined(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "refs/heads/main";
    const ARCHIVE: &str = "refs/heads/dgrid-archive";

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = crate::gitcmd::test_env::git(dir)
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn commit(dir: &Path, message: &str) -> ObjectId {
        git(dir, &["commit", "--allow-empty", "-q", "-m", message]);
        ObjectId::from_hex(git(dir, &["rev-parse", "HEAD"]).as_bytes()).unwrap()
    }

    fn remote_ref(remote: &Path, name: &str) -> Option<String> {
        let out = crate::gitcmd::test_env::git(remote)
            .args(["rev-parse", "--verify", "-q", name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    /// A bare remote with `main` at one commit, and a clone-like work repository beside it.
    fn setup() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::path::PathBuf,
        ObjectId,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote.git");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(
            tmp.path(),
            &["init", "-q", "--bare", remote.to_str().unwrap()],
        );
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["config", "user.name", "t"]);
        git(&work, &["config", "user.email", "t@example.com"]);
        let first = commit(&work, "first");
        git(
            &work,
            &[
                "push",
                "-q",
                remote.to_str().unwrap(),
                "HEAD:refs/heads/main",
            ],
        );
        (tmp, remote, work, first)
    }

    #[test]
    fn both_refs_move_together() {
        let (_tmp, remote, work, first) = setup();
        let main2 = commit(&work, "main 2");
        let arch = commit(&work, "archive 1");
        let updates = [
            RefUpdate {
                name: MAIN.into(),
                new: main2,
                expected: Some(first),
            },
            RefUpdate {
                name: ARCHIVE.into(),
                new: arch,
                expected: None,
            },
        ];
        let outcome = push_atomic(&work, remote.to_str().unwrap(), &updates).unwrap();
        assert_eq!(outcome, PushOutcome::Done);
        assert_eq!(remote_ref(&remote, MAIN), Some(main2.to_string()));
        assert_eq!(remote_ref(&remote, ARCHIVE), Some(arch.to_string()));
    }

    #[test]
    fn a_stale_lease_on_one_ref_refuses_both() {
        let (_tmp, remote, work, first) = setup();
        let url = remote.to_str().unwrap();
        // Someone else moved main after we read it.
        let theirs = commit(&work, "theirs");
        git(&work, &["push", "-q", url, &format!("{theirs}:{MAIN}")]);
        let ours = commit(&work, "ours");
        let arch = commit(&work, "archive");
        let updates = [
            RefUpdate {
                name: MAIN.into(),
                new: ours,
                expected: Some(first),
            },
            RefUpdate {
                name: ARCHIVE.into(),
                new: arch,
                expected: None,
            },
        ];
        let outcome = push_atomic(&work, url, &updates).unwrap();
        assert!(matches!(outcome, PushOutcome::LostRace(_)), "{outcome:?}");
        assert_eq!(remote_ref(&remote, MAIN), Some(theirs.to_string()));
        assert_eq!(remote_ref(&remote, ARCHIVE), None, "archive must not move");

        // The archive's lease says "must not exist", but it does: refused, main untouched.
        let arch0 = commit(&work, "archive 0");
        git(&work, &["push", "-q", url, &format!("{arch0}:{ARCHIVE}")]);
        let updates = [
            RefUpdate {
                name: MAIN.into(),
                new: ours,
                expected: Some(theirs),
            },
            RefUpdate {
                name: ARCHIVE.into(),
                new: arch,
                expected: None,
            },
        ];
        let outcome = push_atomic(&work, url, &updates).unwrap();
        assert!(matches!(outcome, PushOutcome::LostRace(_)), "{outcome:?}");
        assert_eq!(remote_ref(&remote, MAIN), Some(theirs.to_string()));
        assert_eq!(remote_ref(&remote, ARCHIVE), Some(arch0.to_string()));
    }

    #[test]
    fn collateral_refusals_defer_to_the_real_reason() {
        let out = "To r\n!\ta:refs/heads/main\t[rejected] (stale info)\n!\tb:refs/heads/dgrid-archive\t[rejected] (atomic push failed)\nDone\n";
        assert!(matches!(
            classify_atomic(false, out, "", &[MAIN, ARCHIVE]),
            PushOutcome::LostRace(_)
        ));
        let out = "To r\n!\ta:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n!\tb:refs/heads/dgrid-archive\t[remote rejected] (atomic transaction failed)\nDone\n";
        assert!(matches!(
            classify_atomic(false, out, "remote: no\n", &[MAIN, ARCHIVE]),
            PushOutcome::Declined(m) if m.contains("remote: no")
        ));
        let ok =
            "To r\n \ta:refs/heads/main\t1..2\n*\tb:refs/heads/dgrid-archive\t[new branch]\nDone\n";
        assert_eq!(
            classify_atomic(true, ok, "", &[MAIN, ARCHIVE]),
            PushOutcome::Done
        );
        // One ref unreported: not trusted as success.
        let half = "To r\n \ta:refs/heads/main\t1..2\nDone\n";
        assert!(matches!(
            classify_atomic(true, half, "", &[MAIN, ARCHIVE]),
            PushOutcome::Unreachable(_)
        ));
    }
}

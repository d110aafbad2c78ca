//! The one way the tests push files as a hostile collaborator with push access would: with plain
//! git, around the pre-push hook (`core.hooksPath=/dev/null`), so nothing git-dgrid checks stands
//! in the way. Every attempt starts from a fresh fetch of the remote's `main` (the clone's work
//! tree reset to it, untracked files removed): a push that loses the race to a worker is made
//! again on the new tip, after a jittered pause that grows with every loss in a row.

use crate::common::Env;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// What a pushed file holds.
pub enum Content {
    Bytes(Vec<u8>),
    /// A symbolic link to this target.
    Symlink(String),
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content::Bytes(text.as_bytes().to_vec())
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content::Bytes(text.into_bytes())
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Content {
        Content::Bytes(bytes)
    }
}

/// One commit of files to push around the hook, and how.
pub struct AroundHook<'a> {
    env: &'a Env,
    clone: &'a Path,
    subject: String,
    author: Option<String>,
    tries: u32,
}

/// What a landed push took.
#[derive(Debug, Clone, Copy)]
pub struct Landed {
    /// Pushes made, one of them landed (none when the files were there already).
    pub attempts: u32,
}

/// The first pause after a lost race, and the longest.
const PAUSE_BASE: Duration = Duration::from_millis(100);
const PAUSE_CAP: Duration = Duration::from_secs(2);

impl<'a> AroundHook<'a> {
    /// A commit "hostile files" from `clone`, by the environment's author, tried up to 30 times.
    pub fn new(env: &'a Env, clone: &'a Path) -> AroundHook<'a> {
        AroundHook {
            env,
            clone,
            subject: "hostile files".into(),
            author: None,
            tries: 30,
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> AroundHook<'a> {
        self.subject = subject.into();
        self
    }

    pub fn author(mut self, name: impl Into<String>) -> AroundHook<'a> {
        self.author = Some(name.into());
        self
    }

    /// How many pushes to make before giving up (each lost race is one).
    pub fn tries(mut self, tries: u32) -> AroundHook<'a> {
        self.tries = tries.max(1);
        self
    }

    /// Pushes `files` (path, content) as one commit on top of the remote's main, or says why
    /// it could not.
    pub fn push<C: Into<Content>>(
        &self,
        files: impl IntoIterator<Item = (String, C)>,
    ) -> Result<Landed, String> {
        let files: Vec<(String, Content)> = files.into_iter().map(|(p, c)| (p, c.into())).collect();
        let mut last = String::new();
        // Commits whose push failed: git can report a failure for a push the remote took (an
        // answer lost on the way back), and its commit is then in the remote's history.
        let mut pushed: Vec<String> = Vec::new();
        for attempt in 1..=self.tries {
            for args in [
                &["fetch", "--quiet", "origin", "main"][..],
                &["reset", "--quiet", "--hard", "origin/main"],
                &["clean", "--quiet", "-fdx"],
            ] {
                let out = self.git(args);
                if !out.status.success() {
                    return Err(format!("git {args:?}: {}", stderr(&out)));
                }
            }
            let landed_before = pushed.iter().any(|commit| {
                self.git(&["merge-base", "--is-ancestor", commit, "origin/main"])
                    .status
                    .success()
            });
            if landed_before {
                return Ok(Landed {
                    attempts: attempt - 1,
                });
            }
            for (path, content) in &files {
                write(&self.clone.join(path), content);
            }
            let out = self.git(&["add", "-A"]);
            if !out.status.success() {
                return Err(format!("git add: {}", stderr(&out)));
            }
            // Files already there as they are (the soak forges the same result twice): nothing
            // to push, and nothing to commit.
            if self.git(&["diff", "--cached", "--quiet"]).status.success() {
                return Ok(Landed {
                    attempts: attempt - 1,
                });
            }
            let out = self.git(&["commit", "--quiet", "-m", &self.subject]);
            if !out.status.success() {
                return Err(format!("git commit: {}", stderr(&out)));
            }
            let out = self.git(&[
                "-c",
                "core.hooksPath=/dev/null",
                "push",
                "--quiet",
                "origin",
                "HEAD:main",
            ]);
            if out.status.success() {
                return Ok(Landed { attempts: attempt });
            }
            // Most likely a lost race (a worker pushed since our fetch): again, on the new tip.
            last = stderr(&out);
            pushed.push(stdout(&self.git(&["rev-parse", "HEAD"])));
            let window = PAUSE_BASE
                .saturating_mul(1 << attempt.min(5))
                .min(PAUSE_CAP);
            std::thread::sleep(Duration::from_micros(fastrand::u64(
                ..=window.as_micros() as u64,
            )));
        }
        Err(format!(
            "no push landed in {} tries (the last: {last})",
            self.tries
        ))
    }

    fn git(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.cmd("git", self.clone);
        cmd.args(args);
        if let Some(author) = &self.author {
            cmd.env("GIT_AUTHOR_NAME", author);
        }
        cmd.output().expect("git runs")
    }
}

/// Pushes `files` around the hook from `clone`, retrying lost races; panics if none landed.
pub fn push_around_hook<C: Into<Content>>(
    env: &Env,
    clone: &Path,
    files: impl IntoIterator<Item = (String, C)>,
) {
    if let Err(why) = AroundHook::new(env, clone).push(files) {
        panic!("pushing around the hook: {why}");
    }
}

fn write(path: &Path, content: &Content) {
    std::fs::create_dir_all(path.parent().expect("a file in the clone")).unwrap();
    let _ = std::fs::remove_file(path);
    match content {
        Content::Bytes(bytes) => std::fs::write(path, bytes).unwrap(),
        Content::Symlink(target) => std::os::unix::fs::symlink(target, path).unwrap(),
    }
}

/// What git said: its errors, and what it prints on stdout (`nothing to commit`).
fn stderr(out: &Output) -> String {
    format!(
        "{} {}",
        String::from_utf8_lossy(&out.stderr).trim(),
        stdout(out)
    )
    .trim()
    .to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

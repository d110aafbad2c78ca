//! One identity rule for every person's command (`repo::person_identity`): the user's git
//! identity, else `git-dgrid <git-dgrid@localhost>`. On a machine where git knows no one, `init`
//! commits its layout (and a rerun finishes a layout an older run left uncommitted), and
//! `submit`, `cancel` and `init --bare` all commit as that one fallback.

use crate::common::{find_task, Env, TaskJson};
use std::path::Path;
use std::process::{Command, Output};

const FALLBACK: &str = "git-dgrid <git-dgrid@localhost>";

/// `program` in `dir` as a user git knows nothing about: no GIT_AUTHOR_*/GIT_COMMITTER_*, and
/// `user.useConfigOnly` so that git does not guess one from the host name either.
fn nobody(env: &Env, program: &str, dir: &Path) -> Command {
    std::fs::write(
        env.home.join(".gitconfig"),
        "[user]\n\tuseConfigOnly = true\n",
    )
    .unwrap();
    let mut cmd = env.cmd(program, dir);
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn dgrid(env: &Env, dir: &Path, args: &[&str]) -> Output {
    nobody(env, env!("CARGO_BIN_EXE_git-dgrid"), dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", crate::common::all_output(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn author(env: &Env, dir: &Path, rev: &str) -> String {
    env.git(dir, &["log", "-1", "--format=%an <%ae>", rev])
}

/// A fresh clone-like repository on branch main, made by a user with no identity.
fn fresh(env: &Env) -> std::path::PathBuf {
    let dir = env.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    env.git(&dir, &["init", "--quiet", "--initial-branch=main"]);
    dir
}

#[test]
fn init_without_a_git_identity_commits_the_layout() {
    let env = Env::new();
    let dir = fresh(&env);
    let first = ok(dgrid(&env, &dir, &["init", "--no-hooks"]));
    assert!(first.contains("Laid out the grid"), "{first}");
    assert_eq!(author(&env, &dir, "HEAD"), FALLBACK);
    let again = ok(dgrid(&env, &dir, &["init", "--no-hooks"]));
    assert!(again.contains("already here"), "{again}");
    assert_eq!(env.git(&dir, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(env.git(&dir, &["status", "--porcelain"]), "");
}

/// What an older `init` left where git knew no one: the layout on disk and staged, no commit.
/// The rerun commits it instead of saying "already here".
#[test]
fn a_half_done_layout_is_finished_not_called_already_here() {
    let env = Env::new();
    let dir = fresh(&env);
    let layout = [
        "tasks/queue",
        "tasks/in_progress",
        "tasks/completed",
        "tasks/failed",
        "nodes",
    ];
    for folder in layout {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        std::fs::write(dir.join(folder).join(".gitkeep"), "").unwrap();
    }
    env.git(&dir, &["add", "--", "tasks", "nodes"]);
    let out = ok(dgrid(&env, &dir, &["init", "--no-hooks"]));
    assert!(out.contains("Laid out the grid"), "{out}");
    let committed = env.git(&dir, &["ls-tree", "-r", "--name-only", "HEAD"]);
    assert_eq!(committed.lines().count(), layout.len(), "{committed}");
    assert_eq!(env.git(&dir, &["status", "--porcelain"]), "");
}

/// `init --bare`, `submit` and `cancel` with no git identity: one author for all, and the task's
/// `submitted_by` is that identity's address (not "anonymous", not $USER).
#[test]
fn every_command_commits_as_the_one_fallback() {
    let env = Env::new();
    let grid = env.path("g.git");
    ok(dgrid(
        &env,
        env.tmp.path(),
        &["init", "--bare", grid.to_str().unwrap()],
    ));
    assert_eq!(author(&env, &grid, "main"), FALLBACK);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let mut submit = nobody(&env, env!("CARGO_BIN_EXE_git-dgrid"), &clone);
    let mut child = submit
        .args(["submit", "-"])
        .env("USER", "someone-else")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = TaskJson::new("who").without("submitted_by").to_string();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{line}\n").as_bytes(),
    )
    .unwrap();
    ok(child.wait_with_output().unwrap());
    assert_eq!(author(&env, &grid, "main"), FALLBACK);
    let (_, task) = find_task(&env, &grid, "who").unwrap();
    assert_eq!(task["submitted_by"], "git-dgrid@localhost");
    ok(dgrid(&env, &clone, &["cancel", "who"]));
    assert_eq!(author(&env, &grid, "main"), FALLBACK);
}

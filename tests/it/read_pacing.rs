//! `submit --wait` reads within the remote's read budget: `ls-remote` to look, a fetch only when
//! the tip moved. git's own trace (`GIT_TRACE2`) counts the commands it ran.

use crate::common;
use crate::common::{wait_exit, Env};
use crate::worker_kit::*;
use std::io::Write;
use std::process::Stdio;

/// How many top-level `git <command>` runs the trace holds.
fn runs(trace: &std::path::Path, command: &str) -> usize {
    let needle = format!(" cmd_name {command} ({command})");
    std::fs::read_to_string(trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with(&needle))
        .count()
}

#[test]
fn submit_wait_fetches_only_when_the_tip_moves() {
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let other = env.clone(grid.to_str().unwrap(), "other");
    let id = unique("paced");
    let trace = env.path("trace2.log");
    let mut waiting = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .args(["submit", "--wait", "--poll-interval", "1", "-"])
        .env("GIT_TRACE2", &trace)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    waiting
        .stdin
        .take()
        .unwrap()
        .write_all(spec(&id, "true", 60).as_bytes())
        .unwrap();
    // Nothing moves for a while: the follower looks, and looks less often, but fetches nothing.
    assert!(common::wait_for(300, || runs(&trace, "ls-remote") >= 3));
    let fetches_while_idle = runs(&trace, "fetch");
    // The submit's own fetch, and the follower's first.
    assert!(fetches_while_idle <= 2, "{fetches_while_idle} fetches");
    env.dgrid_ok(&other, &["cancel", &id], 0);
    let status = wait_exit(&mut waiting, 300);
    assert_eq!(status.code(), Some(1), "the task failed (cancelled)");
    let fetches = runs(&trace, "fetch");
    assert!(
        fetches <= fetches_while_idle + 1,
        "one fetch for the one change: {fetches} in all"
    );
}

#[test]
fn status_watch_redraws_without_fetching_while_nothing_moves() {
    let env = Env::new();
    let (_grid, clone, _) = setup(&env);
    submit(&env, &clone, &[spec(&unique("watched"), "true", 60)]);
    let trace = env.path("trace2.log");
    let mut watching = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .args(["status", "--watch", "1"])
        .env("GIT_TRACE2", &trace)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let looked = common::wait_for(300, || runs(&trace, "ls-remote") >= 3);
    let fetches = runs(&trace, "fetch");
    watching.kill().unwrap();
    watching.wait().unwrap();
    assert!(looked, "status --watch asks the remote with ls-remote");
    assert_eq!(fetches, 1, "only the first table fetched");
}

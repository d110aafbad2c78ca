//! Under `--log-format json` every line a worker prints is one JSON object,
//! warnings about hostile files included (a result replacing an unreadable result file was
//! printed as a plain `warning:` line). Real Docker, a real remote, files pushed around the hook.

use crate::common;
use crate::common::{docker_ready, find_task, wait_exit, wait_for, wait_state, Env, TaskJson};
use std::process::Stdio;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn every_line_of_a_json_log_is_json_warnings_included() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let task = TaskJson::new("dup")
        .image("dgrid/busybox:latest")
        .command("sleep 4; echo ran")
        .timeout(60)
        .to_string();
    common::assert_success(&env.submit_lines(&clone, &[], &[task]));
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args([
        "work",
        "--node-id",
        "json",
        "--repo",
        grid.to_str().unwrap(),
    ])
    .arg("--state-dir")
    .arg(env.path("state"))
    .args([
        "--poll-interval",
        "1",
        "--until-empty",
        "--log-format",
        "json",
    ])
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // While the task runs: an unreadable result of its id, and a node record of the wrong
    // shape, pushed around the hook (again if the worker moved main meanwhile).
    assert!(wait_state(&env, &grid, "dup", "in_progress", 300));
    let pushed = wait_for(300, || {
        env.git(&clone, &["fetch", "--quiet", "origin"]);
        env.git(&clone, &["reset", "--quiet", "--hard", "origin/main"]);
        std::fs::write(clone.join("tasks/completed/dup.json"), "{not json").unwrap();
        std::fs::create_dir_all(clone.join("nodes")).unwrap();
        std::fs::write(clone.join("nodes/odd.json"), r#"{"id":"odd","slots":"x"}"#).unwrap();
        env.git(&clone, &["add", "-A"]);
        env.git(&clone, &["commit", "--quiet", "-m", "hostile files"]);
        env.cmd("git", &clone)
            .args(["push", "--quiet", "--no-verify", "origin", "main"])
            .status()
            .unwrap()
            .success()
    });
    assert!(pushed);
    let status = wait_exit(&mut child, 300);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");

    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect();
    let warned = |needle: &str| {
        lines
            .iter()
            .any(|l| l["level"] == "warn" && l["msg"].as_str().unwrap_or("").contains(needle))
    };
    assert!(warned("not a readable result file"), "{log}");
    assert!(warned("nodes/odd.json"), "{log}");
    let (state, result) = find_task(&env, &grid, "dup").unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("completed", &"success".into())
    );
}

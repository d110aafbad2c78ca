//! A node record with a field of the wrong type, pushed around the hook, was
//! dropped silently by every reader (status, the dashboard, the worker). Readers still skip it, but
//! say so once per version of the file, naming the file, the field and the reason.

use crate::common;
use crate::common::{docker_ready, wait_exit, Env, TaskJson};
use std::path::{Path, PathBuf};
use std::process::Stdio;

const BAD_NODE: &str = r#"{"id":"bad","slots":"two","started_at":"2026-01-01T00:00:00Z",
"last_heartbeat":"2026-01-01T00:00:00Z","state":"running"}"#;

/// A grid whose `nodes/bad.json` has `"slots": "two"`, pushed with plain git (no hook), and the
/// clone it was pushed from.
fn grid_with_bad_node(env: &Env) -> (PathBuf, PathBuf) {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    std::fs::create_dir_all(clone.join("nodes")).unwrap();
    std::fs::write(clone.join("nodes/bad.json"), BAD_NODE).unwrap();
    env.git(&clone, &["add", "nodes/bad.json"]);
    env.git(
        &clone,
        &[
            "commit",
            "--quiet",
            "-m",
            "a node record of the wrong shape",
        ],
    );
    env.git(
        &clone,
        &["push", "--quiet", "--no-verify", "origin", "main"],
    );
    (grid, clone)
}

const NAMED: &str = r#"nodes/bad.json: "slots": expected a whole number"#;

#[test]
fn status_names_a_bad_node_record_and_keeps_working() {
    let env = Env::new();
    let (_grid, clone) = grid_with_bad_node(&env);
    let out = env.dgrid(&clone, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(NAMED), "{stderr}");
    assert_eq!(
        stderr.matches("ignoring a node record").count(),
        1,
        "{stderr}"
    );
    let out = env.dgrid(&clone, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["nodes"], serde_json::json!([]));
    assert!(String::from_utf8_lossy(&out.stderr).contains(NAMED));
}

fn worker_log(env: &Env, grid: &Path) -> String {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args([
        "work",
        "--node-id",
        "reader",
        "--repo",
        grid.to_str().unwrap(),
    ])
    .arg("--state-dir")
    .arg(env.path("state"))
    .args(["--poll-interval", "1", "--until-empty"])
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = wait_exit(&mut child, 300);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    log
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_names_a_bad_node_record_once_not_on_every_look() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone) = grid_with_bad_node(&env);
    // A task this node refuses to start (its registry is the worker's loopback): each refusal
    // counts the grid's live nodes, so the worker reads every node record again and again until
    // the task is given up.
    let task = TaskJson::new("refused")
        .image("127.0.0.1:9/x:1")
        .command("true")
        .timeout(60)
        .to_string();
    common::assert_success(&env.submit_lines(&clone, &[], &[task]));
    let log = worker_log(&env, &grid);
    assert!(log.contains(NAMED), "{log}");
    assert_eq!(log.matches("ignoring a node record").count(), 1, "{log}");
    assert!(log.contains("gave refused up as unrunnable"), "{log}");
}

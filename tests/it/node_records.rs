//! A node record with a field of the wrong type, pushed around the hook, was
//! dropped silently by every reader (status, the dashboard, the worker). Readers still skip it, but
//! say so once per version of the file, naming the file, the field and the reason. A flood of
//! flat node records makes one push move them to their shards, not every push pay for them.

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

/// Bytes of objects the bare repository `grid` holds (loose and packed).
fn stored_bytes(env: &Env, grid: &Path) -> u64 {
    let counts = env.git(grid, &["count-objects", "-v"]);
    let kib = |key: &str| -> u64 {
        (counts.lines())
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (kib("size:") + kib("size-pack:")) * 1024
}

/// 30,000 valid flat node records, pushed with plain git around the hook (one fast-import
/// commit): a worker's first push moves them to their shards, and its later pushes store some
/// KiB each (~24 KiB of disk here; flat, every heartbeat rewrote the folder's tree, ~740 KiB).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_flood_of_flat_node_records_is_moved_once_and_pushes_stay_small() {
    if !docker_ready() {
        return;
    }
    const FLOOD: usize = 30_000;
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let tip = env.git(&clone, &["rev-parse", "HEAD"]);
    let mut stream = format!(
        "commit refs/heads/main\ncommitter x <x@example.com> 0 +0000\ndata 6\nflood\nfrom {tip}\n"
    );
    for i in 0..FLOOD {
        let record = serde_json::json!({
            "id": format!("flood-{i}"), "hostname": "h", "version": "0.0.0", "labels": [],
            "slots": 1, "cpus": 1.0, "memory": 1, "started_at": "2026-01-01T00:00:00Z",
            "last_heartbeat": "2026-01-01T00:00:00Z", "state": "stopped",
            "heartbeat_interval": 60, "running": [],
        })
        .to_string();
        let path = format!("nodes/flood-{i}.json");
        stream.push_str(&format!(
            "M 100644 inline {path}\ndata {}\n{record}\n",
            record.len()
        ));
    }
    let mut import = env
        .cmd("git", &clone)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), stream.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    env.git(
        &clone,
        &["push", "--quiet", "--no-verify", "origin", "main"],
    );
    let once = || {
        let out = env
            .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
            .args(["work", "--once", "--node-id", "w1", "--repo"])
            .arg(&grid)
            .arg("--state-dir")
            .arg(env.path("state"))
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.code().is_some_and(|c| c <= 1), "{log}");
        log
    };
    once();
    let listing = env.git(&grid, &["ls-tree", "--name-only", "main", "nodes/"]);
    assert!(
        !listing.contains(".json"),
        "no record is left flat: {}",
        &listing[..listing.len().min(300)]
    );
    let moved = env.git(&grid, &["ls-tree", "-r", "--name-only", "main", "nodes/"]);
    assert_eq!(
        moved.matches(".json").count(),
        FLOOD + 1,
        "every record, and w1's"
    );
    let commits = |rev: &str| env.git(&grid, &["rev-list", "--count", rev]);
    let (before, pushes_before) = (stored_bytes(&env, &grid), commits("main"));
    let log = once();
    let pushes: u64 =
        commits("main").parse::<u64>().unwrap() - pushes_before.parse::<u64>().unwrap();
    let stored = stored_bytes(&env, &grid) - before;
    assert!(pushes >= 1, "{log}");
    assert!(
        stored < pushes * (64 << 10),
        "{stored} bytes stored for {pushes} push(es): {log}"
    );
}

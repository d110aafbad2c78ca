//! A task names its image, so with `--pull missing` it chose a connection the
//! worker's docker daemon opened to the worker's own loopback. By default a worker refuses such a
//! registry before docker is asked anything; `--allow-registry HOST:PORT` lets it through. Real
//! Docker, a real remote, and a real TCP listener that records whether anything connected.

use crate::common;
use crate::common::{docker_ready, find_task, wait_exit, Env, TaskJson};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A listener on a free loopback port that counts the connections it gets (and drops them: a
/// pull from it fails, which is fine).
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, count)
}

fn grid_with_task(env: &Env, id: &str, image: &str) -> PathBuf {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let task = TaskJson::new(id)
        .image(image)
        .command("true")
        .timeout(60)
        .to_string();
    common::assert_success(&env.submit_lines(&clone, &[], &[task]));
    grid
}

/// Runs a worker with `--until-empty` until it exits; its log. It ends once the task is given
/// up as unrunnable (three failures on a one-node grid).
fn work_until_empty(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> String {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args(["work", "--node-id", node, "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path(&format!("state-{node}")))
        .args(["--poll-interval", "1", "--until-empty", "--pull", "missing"])
        .args(extra)
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = wait_exit(&mut child, 180);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    log
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_loopback_registry_is_never_contacted_and_the_task_ends_with_the_reason() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (port, connections) = counting_listener();
    let id = unique("loopback");
    let image = format!("127.0.0.1:{port}/x:1");
    let grid = grid_with_task(&env, &id, &image);
    let log = work_until_empty(&env, &grid, "policy", &[]);
    assert_eq!(connections.load(Ordering::SeqCst), 0, "{log}");
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"unrunnable".into()),
        "{result}"
    );
    let stderr = result["stderr"].as_str().unwrap_or_default();
    assert!(
        stderr.contains("a loopback address")
            && stderr.contains(&format!("--allow-registry 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        log.contains(&format!("not starting {id} here")),
        "the worker's log says why: {log}"
    );
    // No container was ever created for it (docker was not asked).
    let listed = Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=dgrid.task={id}"),
        ])
        .output()
        .unwrap();
    assert!(listed.stdout.is_empty());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn an_allowed_registry_is_contacted() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (port, connections) = counting_listener();
    let id = unique("allowed");
    let grid = grid_with_task(&env, &id, &format!("127.0.0.1:{port}/x:1"));
    let allowed = format!("127.0.0.1:{port}");
    let log = work_until_empty(&env, &grid, "allows", &["--allow-registry", &allowed]);
    // The daemon tried to pull from the listener; the pull failed, so the task is unrunnable
    // with docker's message, not the policy's.
    assert!(connections.load(Ordering::SeqCst) > 0, "{log}");
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(result["status"], "unrunnable", "{result}");
    let stderr = result["stderr"].as_str().unwrap_or_default();
    assert!(!stderr.contains("--allow-registry"), "{stderr}");
}

#[test]
fn a_malformed_allowed_registry_is_a_usage_error_naming_it() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--once", "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path("state"))
        .env("DGRID_ALLOW_REGISTRY", "ok.example:5000,bad/host")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("allow registry") && stderr.contains("\"bad/host\""),
        "{stderr}"
    );
}

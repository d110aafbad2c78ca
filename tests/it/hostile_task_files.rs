//! Hostile files pushed with plain git around the hook, against a real worker: an id in two places
//! (flat and sharded, or queued and finished) is never claimed, and a result file nobody can read
//! does not wedge the worker; a forged lease that never ends is taken back after the observer's; a
//! file no node will run ends in `failed/` as `invalid`, one this node's policy refuses stays queued.

use crate::common::{docker_ready, find_task, push_around_hook, wait_for, Env, TaskJson};
use git_dgrid::layout::{task_path, State};
use std::process::Stdio;

const IMAGE: &str = "dgrid/busybox:latest";

fn task(id: &str) -> String {
    TaskJson::file(id)
        .image(IMAGE)
        .command("echo ran")
        .to_string()
}

fn completed(id: &str) -> String {
    serde_json::json!({
        "task_id": id, "node_id": "elsewhere", "exit_code": 0, "stdout": "ran\n", "stderr": "",
        "timestamp": "2026-01-01T00:01:00Z", "status": "success",
    })
    .to_string()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn ids_in_two_places_are_never_claimed_and_an_unreadable_result_wedges_nothing() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    push_around_hook(
        &env,
        &clone,
        [
            // Flat and sharded in the queue.
            ("tasks/queue/twin.json".into(), task("twin")),
            (task_path(State::Queue, "twin"), task("twin")),
            // Queued, and completed with a valid result.
            (task_path(State::Queue, "done"), task("done")),
            (task_path(State::Completed, "done"), completed("done")),
            // Queued, and a completed file that is not JSON at all.
            (task_path(State::Queue, "broken"), task("broken")),
            ("tasks/completed/broken.json".into(), "{ not json".into()),
            // One good task, queued after the others.
            (task_path(State::Queue, "good"), task("good")),
        ],
    );
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--node-id", "w1", "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path("state-w1"))
        .args(["--poll-interval", "1", "--heartbeat-interval", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let good_done = wait_for(300, || {
        find_task(&env, &grid, "good").is_some_and(|(state, _)| state == "completed")
    });
    // A few more cycles: a worker that would claim the duplicates does so by now.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(good_done, "the good task ran: {log}");
    let subjects = env.git(&grid, &["log", "--format=%s", "main"]);
    for id in ["twin", "done", "broken"] {
        assert!(
            !subjects
                .lines()
                .any(|s| s.split([' ', ',']).any(|w| w == id)),
            "{id} was never claimed or written:\n{subjects}\n{log}"
        );
    }
    assert!(log.contains("another file"), "the skip is said: {log}");
}

/// A forged claim with a lease until the year 9999, by a node that never existed, parks nothing:
/// a worker with a short lease sees it unchanged for a lease, takes it back and runs it.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_forged_lease_until_9999_is_taken_back_after_the_observers_lease() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let forged = TaskJson::file("parked")
        .image(IMAGE)
        .command("echo ran")
        .claim("ghost", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z", 1)
        .to_string();
    push_around_hook(
        &env,
        &clone,
        [(task_path(State::InProgress, "parked"), forged)],
    );
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--node-id", "w1", "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path("state-w1"))
        .args(["--poll-interval", "1", "--heartbeat-interval", "1"])
        .args(["--lease", "3", "--clock-skew", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = wait_for(300, || {
        find_task(&env, &grid, "parked").is_some_and(|(state, _)| state == "completed")
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        done,
        "the forged claim was taken back and run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Resources docker refuses on any node (`cpus` 0.001, `memory` "1k"), pushed around the hook:
/// the worker fails the file as `invalid` with its problems in a push it makes anyway, and the
/// submitter reads them with `logs`; a task only this node's `--max-cpus` refuses stays queued.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_file_no_node_will_run_fails_as_invalid_and_a_policy_refusal_stays_queued() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let asking = |id: &str, resources: serde_json::Value| {
        TaskJson::file(id)
            .image(IMAGE)
            .command("echo ran")
            .set("resources", resources)
            .to_string()
    };
    push_around_hook(
        &env,
        &clone,
        [
            (
                task_path(State::Queue, "tiny"),
                asking("tiny", serde_json::json!({"cpus": 0.001, "memory": "1k"})),
            ),
            (
                task_path(State::Queue, "capped"),
                asking("capped", serde_json::json!({"cpus": 1.5})),
            ),
            (task_path(State::Queue, "good"), task("good")),
        ],
    );
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--node-id", "w1", "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path("state-w1"))
        .args(["--poll-interval", "1", "--until-empty", "--max-cpus", "1"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(find_task(&env, &grid, "good").unwrap().0, "completed");
    assert_eq!(find_task(&env, &grid, "capped").unwrap().0, "queue");
    let (state, result) = find_task(&env, &grid, "tiny").unwrap();
    assert_eq!(state, "failed", "{log}");
    assert_eq!(result["status"], "invalid", "{result}");
    assert!(log.contains("failed tiny as invalid"), "{log}");
    // The commit that failed it is one the worker made anyway (its claim, result or last record).
    let subjects = env.git(&grid, &["log", "--format=%s", "main"]);
    let failing = (subjects.lines())
        .find(|s| s.contains("invalid tiny"))
        .unwrap_or_else(|| panic!("{subjects}"));
    assert!(failing.ends_with(" by w1"), "{failing}");
    assert!(
        failing.split([' ', ',']).filter(|w| !w.is_empty()).count() > 4,
        "not a push of its own: {failing}"
    );
    // Redirected, `logs` writes the task's stderr to stderr.
    let out = env.dgrid(&clone, &["logs", "tiny"]);
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{told}");
    assert!(
        told.contains("\"resources.cpus\": expected a number from 0.01")
            && told.contains("\"resources.memory\""),
        "{told}"
    );
}

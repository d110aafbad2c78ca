//! How a worker stops and refuses: SIGTERM with a grace period, a dead Docker daemon, a remote that
//! goes away, and node ids that two workers want.

use crate::common;
use crate::common::{
    assert_success, docker_ready, find_task, wait_exit, wait_for, wait_state, Env,
};
use crate::worker_kit::*;
use std::process::Stdio;
use std::time::Duration;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn sigterm_lets_tasks_finish_then_kills_and_releases_them() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let quick = unique("quick");
    let long = unique("long");
    submit(
        &env,
        &clone,
        &[
            spec(&quick, "sleep 2; echo finished", 60),
            spec(&long, "sleep 600", 900),
        ],
    );
    // A grace a loaded machine cannot miss for a 2-s task (6 s could be).
    let mut w = worker(&env, &grid, "term", &["--slots", "2", "--grace", "30"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(300, || {
        find_task(&env, &grid, &quick).is_some_and(|(s, _)| s == "in_progress")
            && find_task(&env, &grid, &long).is_some_and(|(s, _)| s == "in_progress")
    }));
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert_eq!(
        find_task(&env, &grid, &quick).unwrap().0,
        "completed",
        "finished within the grace: {log}"
    );
    let (state, spec) = find_task(&env, &grid, &long).unwrap();
    assert_eq!(state, "queue", "released: {log}");
    assert!(
        spec.get("claim").is_none() && spec.get("attempts").is_none(),
        "no attempt used: {spec}"
    );
    assert!(containers_with_label(&format!("dgrid.task={long}")).is_empty());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_dead_docker_daemon_releases_the_task_and_the_worker_carries_on() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let socket = env.path("docker.sock");
    let proxy = DockerProxy::start(socket.clone());
    let host = format!("unix://{}", socket.display());
    let mut w = worker(&env, &grid, "flaky", &[])
        .env("DOCKER_HOST", &host)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker is up (it checked docker and registered), then the daemon goes away.
    assert!(node_registered(&env, &grid, "flaky", 300));
    proxy.cut();
    let id = unique("nodaemon");
    submit(&env, &clone, &[spec(&id, "echo hi", 60)]);
    // Claimed, failed to start, released without using an attempt; the node says why.
    assert!(wait_for(300, || {
        let node = env
            .cmd("git", &grid)
            .args([
                "show",
                &format!("main:{}", git_dgrid::layout::node_path("flaky")),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&node.stdout).contains("\"problem\"")
    }));
    let (state, spec) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "queue", "{spec}");
    assert!(spec.get("attempts").is_none(), "no attempt used: {spec}");
    assert!(w.try_wait().unwrap().is_none(), "the worker keeps running");
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(log.contains("Cannot connect to the Docker daemon"), "{log}");
    assert!(log.contains(&format!("cannot run {id}")), "{log}");
    // With a daemon again, the same task runs as attempt 1.
    let out = run_worker(&env, &grid, "flaky", &["--until-empty"]);
    assert_success(&out);
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (state.as_str(), &result["attempt"]),
        ("completed", &1.into())
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_rides_out_a_remote_that_goes_away() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (daemon, grid) = env.served_grid(true);
    let base = env.path("srv");
    let (port, url) = (daemon.port, daemon.url("g.git"));
    let mut w = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args([
            "work",
            "--node-id",
            "steadfast",
            "--repo",
            &url,
            "--poll-interval",
            "1",
            "--heartbeat-interval",
            "2",
        ])
        .arg("--state-dir")
        .arg(env.path("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "steadfast", 300));
    drop(daemon); // the server goes away for a while
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        w.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    let daemon = common::Daemon::start_on(&env, &base, true, Some(port));
    let clone = env.clone(&url, "c");
    let id = unique("after-outage");
    submit(&env, &clone, &[spec(&id, "echo back", 60)]);
    assert!(wait_state(&env, &grid, &id, "completed", 300));
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(
        log.contains("trying again") || log.contains("cannot reach"),
        "the outage was reported: {log}"
    );
    drop(daemon);
}

#[test]
fn two_workers_with_one_node_id_and_state_dir_refuse() {
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let mut first = worker(&env, &grid, "twin", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "twin", 300));
    let second = run_worker(&env, &grid, "twin", &["--once"]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr)
        .contains("another worker is already running as node \"twin\""));
    unsafe_kill(&first, "TERM");
    assert!(wait_exit(&mut first, 300).success());
}

/// One node id on two state dirs (a NODE_ID copied to a second machine): the second worker refuses
/// while the first is alive, and leaves its record alone; once the first stops, the id is free.
#[test]
fn a_node_id_in_use_elsewhere_is_refused() {
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let mut first = worker(&env, &grid, "copied", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "copied", 300));
    let session = node_session(&env, &grid, "copied");
    let second = worker_in(&env, &grid, "copied", "elsewhere", &["--once"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{log}");
    assert!(
        log.contains("node id \"copied\" is in use by another worker"),
        "{log}"
    );
    assert_eq!(node_session(&env, &grid, "copied"), session);
    unsafe_kill(&first, "TERM");
    assert!(wait_exit(&mut first, 300).success());
    let again = worker_in(&env, &grid, "copied", "elsewhere", &["--once"])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "nothing to do: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_ne!(node_session(&env, &grid, "copied"), session);
}

/// A worker silent for longer than its lease (SIGSTOP) whose node id another process took over
/// stops when it wakes up, instead of fighting over the id; the task ends once, elsewhere.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_whose_node_id_was_taken_over_stops() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("frozen");
    submit(&env, &clone, &[spec(&id, "sleep 6; echo done", 120)]);
    let timing = fast_lease("3");
    let mut frozen = worker(&env, &grid, "frozen", &timing)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 300));
    unsafe_kill(&frozen, "STOP");
    std::thread::sleep(Duration::from_secs(5));
    // The successor takes the id over once the record is older than its own lease (3 s): the
    // sleep above only grows on a loaded machine, and the frozen node cannot heartbeat.
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let successor = worker_in(&env, &grid, "frozen", "successor", &extra)
        .output()
        .unwrap();
    unsafe_kill(&frozen, "CONT");
    assert_success(&successor);
    let (status, log) = exit_and_log(&mut frozen, 300);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("took over node id \"frozen\""), "{log}");
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}");
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&2.into(), &"done\n".into())
    );
    assert!(result.get("late_results").is_none(), "{result}");
    assert!(containers_with_label(&format!("dgrid.task={id}")).is_empty());
}

/// One Ctrl-C on `git dgrid work`. The terminal sends SIGINT to the whole
/// process group and git forwards its own to its `git-dgrid` child, so the worker gets two at
/// once: that is one request, and the running task keeps its grace period. A second Ctrl-C later
/// still kills it and puts it back in the queue.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn one_ctrl_c_on_git_dgrid_work_keeps_the_grace_period_and_a_second_kills() {
    use std::os::unix::process::CommandExt;
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let long = unique("ctrl-c");
    submit(&env, &clone, &[spec(&long, "sleep 600", 900)]);
    let mut w = env
        .cmd("git", env.tmp.path())
        .args(["dgrid", "work", "--node-id", "ctrl-c", "--repo"])
        .arg(&grid)
        .arg("--state-dir")
        .arg(env.path("state-ctrl-c"))
        .args(["--poll-interval", "1", "--grace", "600"])
        .process_group(0)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = || find_task(&env, &grid, &long).is_some_and(|(s, _)| s == "in_progress");
    let container = || !containers_with_label(&format!("dgrid.task={long}")).is_empty();
    assert!(wait_for(120, || running() && container()));
    // What a Ctrl-C does: the terminal's SIGINT reaches `git-dgrid` (and git), and git forwards
    // its own to its child a moment later. (Sent to the group at the same instant, the two would
    // merge into one pending signal; the terminal and git are not that quick.)
    let git = w.id().to_string();
    let children = std::fs::read_to_string(format!("/proc/{git}/task/{git}/children")).unwrap();
    let dgrid = children
        .split_whitespace()
        .next()
        .expect("git runs git-dgrid")
        .to_string();
    let ctrl_c = || {
        for pid in [&dgrid, &git] {
            let status = std::process::Command::new("kill")
                .args(["-INT", pid])
                .status()
                .unwrap();
            assert!(status.success());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    ctrl_c();
    std::thread::sleep(Duration::from_secs(5));
    let alive = w.try_wait().unwrap().is_none();
    let (still_running, still_there) = (running(), container());
    if !(alive && still_running && still_there) {
        let _ = w.kill();
        let (_, log) = exit_and_log(&mut w, 60);
        panic!("one Ctrl-C leaves the running task its grace period (worker alive {alive}, task in progress {still_running}, container {still_there}): {log}");
    }
    ctrl_c();
    let (_, log) = exit_and_log(&mut w, 300);
    assert!(log.contains("stopping: no new tasks"), "{log}");
    assert!(log.contains(&format!("killing {long}")), "{log}");
    let (state, spec) = find_task(&env, &grid, &long).unwrap();
    assert_eq!(state, "queue", "released: {log}");
    assert!(spec.get("attempts").is_none(), "no attempt used: {spec}");
    assert!(!container());
}

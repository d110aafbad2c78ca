//! `git dgrid work` with real Docker and real git remotes: results, timeouts, output caps, push
//! economy, leases, late results, `submit --wait`, cancel and retry.

use crate::common::{
    docker_ready, find_task, pushes, wait_exit, wait_for, wait_state, Env, TaskJson,
};
use crate::worker_kit::*;
use git_dgrid::layout::node_path;
use sha2::{Digest, Sha256};
use std::process::Stdio;
use std::time::Duration;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn end_to_end_results() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("e2e");
    let id = |name: &str| format!("{p}-{name}");
    submit(
        &env,
        &clone,
        &[
            spec(&id("hello"), "echo hello", 60),
            spec(&id("exit3"), "echo bye >&2; exit 3", 60),
            spec(&id("slow"), "sleep 60", 2),
            spec(&id("big"), "head -c 10000000 /dev/zero | tr '\\0' x", 120),
            spec(&id("bytes"), "printf '\\377\\376abc'", 60),
            spec(&id("net"), "ls /sys/class/net; wget -q -T 2 -O- http://example.invalid/ && echo REACHED || echo UNREACHABLE", 60),
            TaskJson::new(&id("envs"))
                .image(IMAGE)
                .command("echo $GREETING $DOCKER_HOST")
                .set(
                    "env",
                    serde_json::json!({"GREETING": "hi", "DOCKER_HOST": "tcp://127.0.0.1:9"}),
                )
                .to_string(),
            spec(&id("env"), "env", 60),
        ],
    );
    let out = worker(&env, &grid, "e2e-node", &["--until-empty", "--slots", "2"])
        .env("GIT_TOKEN", "tok-s3cr3t-1234")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains('\x1b') && !log.contains(" running 0s of "),
        "no live lines in a pipe: {log}"
    );

    let (state, hello) = find_task(&env, &grid, &id("hello")).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(hello["status"], "success");
    assert_eq!(hello["exit_code"], 0);
    assert_eq!(hello["stdout"], "hello\n");
    assert_eq!(hello["node_id"], "e2e-node");
    assert_eq!(hello["attempt"], 1);
    assert_eq!(hello["task"]["id"], id("hello").as_str());
    for field in [
        "timestamp",
        "started_at",
        "finished_at",
        "duration_ms",
        "stdout_info",
        "stderr_info",
    ] {
        assert!(!hello[field].is_null(), "{field} missing: {hello}");
    }

    let (state, exit3) = find_task(&env, &grid, &id("exit3")).unwrap();
    assert_eq!(
        (state.as_str(), &exit3["status"], &exit3["exit_code"]),
        ("failed", &"failed".into(), &3.into())
    );
    assert_eq!(exit3["stderr"], "bye\n");

    let (state, slow) = find_task(&env, &grid, &id("slow")).unwrap();
    assert_eq!(
        (state.as_str(), &slow["status"]),
        ("failed", &"timeout".into())
    );
    assert!(slow["exit_code"].is_null());
    assert!(
        slow["duration_ms"].as_u64().unwrap() < 30_000,
        "killed at its timeout: {slow}"
    );
    assert!(
        containers_with_label(&format!("dgrid.task={}", id("slow"))).is_empty(),
        "container left behind"
    );

    let (state, big) = find_task(&env, &grid, &id("big")).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(big["stdout"].as_str().unwrap().len(), 65536);
    assert_eq!(big["stdout_info"]["total_bytes"], 10_000_000);
    assert_eq!(big["stdout_info"]["truncated"], true);
    let expected: String = Sha256::digest(vec![b'x'; 10_000_000])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(big["stdout_info"]["sha256"], expected.as_str());

    let (_, bytes) = find_task(&env, &grid, &id("bytes")).unwrap();
    assert_eq!(bytes["stdout"], "\u{fffd}\u{fffd}abc");
    assert_eq!(bytes["stdout_info"]["total_bytes"], 5);

    let (_, net) = find_task(&env, &grid, &id("net")).unwrap();
    assert_eq!(
        net["stdout"], "lo\nUNREACHABLE\n",
        "only loopback, no way out: {net}"
    );

    // A task's environment is the container's, never the docker CLI's.
    let (state, envs) = find_task(&env, &grid, &id("envs")).unwrap();
    assert_eq!(
        (state.as_str(), &envs["stdout"]),
        ("completed", &"hi tcp://127.0.0.1:9\n".into()),
        "{envs}"
    );

    // The token reaches neither the container, nor the logs, nor anything on disk.
    let (_, envdump) = find_task(&env, &grid, &id("env")).unwrap();
    assert!(!envdump["stdout"].as_str().unwrap().contains("tok-s3cr3t"));
    assert!(!log.contains("tok-s3cr3t"));
    let grep = std::process::Command::new("grep")
        .args(["-r", "tok-s3cr3t"])
        .arg(env.tmp.path())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "token on disk: {}",
        String::from_utf8_lossy(&grep.stdout)
    );

    // Every file the worker wrote passes validation, and the node says it stopped.
    let node: serde_json::Value = serde_json::from_str(
        &env.git(&grid, &["show", &format!("main:{}", node_path("e2e-node"))]),
    )
    .unwrap();
    assert_eq!(node["state"], "stopped");
    assert_eq!(node["completed"], 6);
    assert_eq!(node["failed"], 2);
    env.dgrid_ok(&grid, &["validate"], 0);
    assert!(containers_with_label("dgrid.node=e2e-node").is_empty());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn push_economy_of_a_steady_worker() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, log) = setup(&env);
    let p = unique("steady");
    submit(
        &env,
        &clone,
        &(0..30)
            .map(|i| spec(&format!("{p}-{i}"), "true", 60))
            .collect::<Vec<_>>(),
    );
    let before = pushes(&log);
    let out = run_worker(&env, &grid, "steady", &["--until-empty"]);
    assert!(out.status.success());
    let used = pushes(&log) - before;
    assert!(
        used <= 36,
        "{used} pushes for 30 tasks (at most 1.2 per task)"
    );
}

#[test]
fn an_idle_worker_pushes_only_its_heartbeats() {
    let env = Env::new();
    let (grid, _, log) = setup(&env);
    // No Docker needed: nothing to run.
    let mut w = worker(&env, &grid, "idle", &["--heartbeat-interval", "30"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
    let during = pushes(&log);
    unsafe_kill(&w, "TERM");
    assert!(wait_exit(&mut w, 300).success());
    assert!(
        (1..=3).contains(&during),
        "{during} pushes in 60 s with a 30 s heartbeat"
    );
    let node: serde_json::Value =
        serde_json::from_str(&env.git(&grid, &["show", &format!("main:{}", node_path("idle"))]))
            .unwrap();
    assert_eq!(node["state"], "stopped");
}

/// On a terminal (a pty from `script`), each running task has a live line: its id, the time it has
/// run and its timeout; the log lines print above them, each ended by a newline.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_on_a_terminal_shows_a_live_line_per_task() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("on-tty");
    submit(&env, &clone, &[spec(&id, "sleep 3", 120)]);
    let command = format!(
        "{} work --node-id tty --repo {} --state-dir {} --until-empty --poll-interval 1",
        env!("CARGO_BIN_EXE_git-dgrid"),
        grid.display(),
        env.path("state-tty").display()
    );
    let out = env.on_a_terminal(env.tmp.path(), &command);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("{id} running 1s of 2m 0s"))
            || shown.contains(&format!("{id} running 2s of 2m 0s")),
        "{shown}"
    );
    // Log lines, printed while a live line is drawn too, end with their newline.
    let line = |what: &str| {
        shown
            .split('\n')
            .find(|l| l.contains(what))
            .map(|l| l.trim_end_matches('\r').to_string())
    };
    for what in [
        format!("claimed {id} (attempt 1)"),
        format!("finished {id}"),
    ] {
        let found = line(&what).unwrap_or_else(|| panic!("{what}: {shown:?}"));
        assert!(
            found.ends_with(|c: char| c != ' '),
            "{found:?} in {shown:?}"
        );
    }
}

/// A healthy node's long task is never taken back: heartbeats renew its lease.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn leases_are_renewed_while_a_task_runs() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("long-lease");
    // The task outlasts the lease, so only renewals keep it; the lease is long enough that a
    // loaded machine cannot delay a heartbeat past it (3 s could).
    submit(&env, &clone, &[spec(&id, "sleep 45; echo finished", 120)]);
    let timing = fast_lease("30");
    let mut runner = worker(&env, &grid, "runner", &timing)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 300));
    // A second node watches the whole time; it must not take the task.
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let mut watcher = worker(&env, &grid, "watcher", &extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "completed", 300));
    unsafe_kill(&watcher, "TERM");
    unsafe_kill(&runner, "TERM");
    let (status, log) = exit_and_log(&mut watcher, 300);
    assert!(status.success() && wait_exit(&mut runner, 300).success());
    assert!(
        !log.contains("took"),
        "the watcher took a healthy node's task: {log}"
    );
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["node_id"], &result["attempt"]),
        (&"runner".into(), &1.into())
    );
}

/// A result that arrives after its task was taken over and finished elsewhere is kept as a late
/// result: never dropped, never a second file.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_late_result_is_recorded_once_beside_the_result() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("late");
    submit(&env, &clone, &[spec(&id, "echo first", 60)]);
    // The first node dies with its result spooled; another completes the task as attempt 2.
    // (Node ids are unique across tests: a worker removes the containers of its node id.)
    spool_then_die_and_rescue(&env, &grid, "slowpoke", "late-rescuer");
    // The first node comes back and pushes its spooled result: it is late.
    let out = run_worker(&env, &grid, "slowpoke", &["--once"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(
        (&result["node_id"], &result["attempt"]),
        (&"late-rescuer".into(), &2.into())
    );
    let late = result["late_results"].as_array().expect("late_results");
    assert_eq!(late.len(), 1);
    assert_eq!(
        (&late[0]["node_id"], &late[0]["attempt"], &late[0]["status"]),
        (&"slowpoke".into(), &1.into(), &"success".into())
    );
    let listing = env.git(&grid, &["ls-tree", "-r", "--name-only", "main", "tasks/"]);
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.ends_with(&format!("/{id}.json")))
            .count(),
        1
    );
    // Pushing it again (a second restart) changes nothing.
    let before = env.git(&grid, &["rev-parse", "main:tasks"]);
    let _ = run_worker(&env, &grid, "slowpoke", &["--once"]);
    assert_eq!(env.git(&grid, &["rev-parse", "main:tasks"]), before);
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn submit_wait_follows_tasks_to_their_end() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let mut w = worker(&env, &grid, "waiter", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ok = env.dgrid(
        &clone,
        &[
            "submit",
            "--wait",
            "--poll-interval",
            "1",
            "--image",
            IMAGE,
            "--",
            "echo fine",
        ],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = env.dgrid(
        &clone,
        &[
            "submit",
            "--wait",
            "--poll-interval",
            "1",
            "--image",
            IMAGE,
            "--",
            "exit 4",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a failed task makes --wait exit 1"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("failed 1"));
    unsafe_kill(&w, "TERM");
    assert!(wait_exit(&mut w, 300).success());
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn cancel_stops_a_running_task_and_retry_runs_it_again() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let running = unique("to-cancel");
    let queued = unique("never-run");
    submit(&env, &clone, &[spec(&running, "sleep 120", 300)]);
    let mut w = worker(&env, &grid, "canceller", &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &running, "in_progress", 300));
    submit(
        &env,
        &clone,
        &[spec(&queued, "echo hi", 60)
            .replace(r#""timeout""#, r#""labels":["nowhere"],"timeout""#)],
    );
    let out = env.dgrid_ok(
        &clone,
        &["cancel", &running, &queued, "--reason", "changed my mind"],
        0,
    );
    assert!(out.contains(&format!("cancelled {running}")));
    let (state, result) = find_task(&env, &grid, &running).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"cancelled".into())
    );
    assert_eq!(result["node_id"], "canceller");
    assert!(result["stderr"]
        .as_str()
        .unwrap()
        .contains("changed my mind"));
    assert_eq!(
        find_task(&env, &grid, &queued).unwrap().1["status"],
        "cancelled"
    );
    // The node stops the container on its next look, and records nothing more.
    let label = format!("dgrid.task={running}");
    assert!(
        wait_for(300, || containers_with_label(&label).is_empty()),
        "the container was stopped"
    );
    // Finished tasks cannot be cancelled; unknown ids are a clean no.
    assert_eq!(
        env.dgrid(&clone, &["cancel", &running]).status.code(),
        Some(1)
    );
    assert_eq!(
        env.dgrid(&clone, &["cancel", "no-such-task"]).status.code(),
        Some(1)
    );
    // Retry puts it back with fresh attempts, and it runs again.
    let short = unique("retried");
    submit(
        &env,
        &clone,
        &[spec(&short, "cat /proc/sys/kernel/random/uuid; exit 1", 60)],
    );
    assert!(wait_state(&env, &grid, &short, "failed", 300));
    let first = find_task(&env, &grid, &short).unwrap().1["stdout"].clone();
    env.dgrid_ok(&clone, &["retry", &short], 0);
    assert!(
        wait_for(300, || find_task(&env, &grid, &short)
            .is_some_and(|(s, r)| s == "failed" && r["stdout"] != first)),
        "ran again"
    );
    assert_eq!(
        find_task(&env, &grid, &short).unwrap().1["attempt"],
        1,
        "attempts start over"
    );
    assert_eq!(
        env.dgrid(&clone, &["retry", "no-such-task"]).status.code(),
        Some(1)
    );
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("stopped {running}: it is no longer ours")),
        "{log}"
    );
    let (state, result) = find_task(&env, &grid, &running).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"cancelled".into()),
        "nothing overwrote the cancellation"
    );
}

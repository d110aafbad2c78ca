//! The operator's policy on a real worker with real Docker: containers run as nobody (or the
//! operator's `--container-user`), tasks the node refuses (image, caps) stay queued and are named
//! once in the log, `--until-empty` is not kept alive by them, and `--max-tasks-per-hour` starts
//! no more than its window allows.

use crate::common::{docker_ready, find_task, wait_for, Env, TaskJson};
use crate::worker_kit::*;
use git_dgrid::layout::node_path;
use std::process::Stdio;
use std::time::Duration;

/// A wrapper around the real docker that writes a line with the arguments of each `docker run`.
fn docker_noting_runs(env: &Env) -> (std::path::PathBuf, std::path::PathBuf) {
    let runs = env.path("docker-runs.log");
    let wrapper = env.path("docker-noting-runs");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = run ] && echo \"$*\" >> {}\nexec docker \"$@\"\n",
        runs.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&wrapper, mode).unwrap();
    (wrapper, runs)
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn refused_tasks_stay_queued_named_once_and_containers_run_as_nobody() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("policy");
    let id = |name: &str| format!("{p}-{name}");
    submit(
        &env,
        &clone,
        &[
            spec(&id("whoami"), "id -u; id -g", 60),
            // Long enough that the worker polls several times while the refused tasks are queued.
            spec(&id("slow"), "sleep 4", 60),
            TaskJson::new(&id("image"))
                .image("other/image:1")
                .command("id -u")
                .to_string(),
            spec(&id("long"), "true", 600),
            TaskJson::new(&id("net"))
                .image(IMAGE)
                .command("true")
                .set("network", "bridge")
                .to_string(),
            TaskJson::new(&id("cpus"))
                .image(IMAGE)
                .command("true")
                .set("resources", serde_json::json!({"cpus": 1.5}))
                .to_string(),
        ],
    );
    let out = worker(
        &env,
        &grid,
        "policy-node",
        &[
            "--until-empty",
            "--allow-image",
            "dgrid/busybox:*",
            "--max-task-timeout",
            "120",
            "--max-cpus",
            "1",
        ],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "refused tasks do not keep --until-empty alive: {log}"
    );

    let (state, whoami) = find_task(&env, &grid, &id("whoami")).unwrap();
    assert_eq!(state, "completed", "{log}");
    assert_eq!(whoami["stdout"], "65534\n65534\n", "not root: {whoami}");
    assert_eq!(find_task(&env, &grid, &id("slow")).unwrap().0, "completed");

    for (name, reason, why) in [
        ("image", "image", "matches no --allow-image pattern"),
        ("long", "caps", "--max-task-timeout 120s"),
        ("net", "caps", "--allow-network"),
        ("cpus", "caps", "--max-cpus is 1"),
    ] {
        let (state, task) = find_task(&env, &grid, &id(name)).unwrap();
        assert_eq!(state, "queue", "{name} stays queued, unclaimed: {task}");
        assert!(task.get("claim").is_none_or(|c| c.is_null()), "{task}");
        let file = format!("/{}.json in the queue", id(name));
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&file)).collect();
        assert_eq!(lines.len(), 1, "named once, not once per poll: {log}");
        assert!(
            lines[0].contains(&format!("({reason})")) && lines[0].contains(why),
            "{name}: {}",
            lines[0]
        );
    }

    let node = env.git(
        &grid,
        &["show", &format!("main:{}", node_path("policy-node"))],
    );
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    assert_eq!(
        node["skipped"],
        serde_json::json!({"caps": 3, "image": 1}),
        "{node}"
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn the_operator_chooses_the_container_user_and_a_bad_one_stops_the_worker() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("user");
    let (wrapper, runs) = docker_noting_runs(&env);
    submit(&env, &clone, &[spec(&format!("{p}-id"), "id -u", 60)]);

    let out = run_worker(
        &env,
        &grid,
        "user-node",
        &["--once", "--container-user", "bad user"],
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("--container-user"), "{log}");

    for (flag, value) in [("--allow-image", "python:[3"), ("--runtime", "run sc")] {
        let out = run_worker(&env, &grid, "user-node", &["--once", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: a usage error");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(log.contains(flag) && log.contains(value), "{log}");
    }

    // docker's own runtime by name: the flag reaches docker run (an unknown one would fail there).
    let out = run_worker(
        &env,
        &grid,
        "user-node",
        &[
            "--until-empty",
            "--container-user",
            "1234:1234",
            "--runtime",
            "runc",
            "--docker",
            wrapper.to_str().unwrap(),
        ],
    );
    let runs = std::fs::read_to_string(&runs).unwrap();
    assert!(
        runs.contains("--user=1234:1234") && runs.contains("--runtime=runc"),
        "{runs}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (state, task) = find_task(&env, &grid, &format!("{p}-id")).unwrap();
    assert_eq!(
        (state.as_str(), &task["stdout"]),
        ("completed", &"1234\n".into())
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn max_tasks_per_hour_starts_three_of_ten_then_waits_and_says_so() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("hourly");
    let tasks: Vec<String> = (0..10)
        .map(|i| spec(&format!("{p}-{i}"), "echo hi", 60))
        .collect();
    submit(&env, &clone, &tasks);
    let (wrapper, runs) = docker_noting_runs(&env);

    let mut child = worker(
        &env,
        &grid,
        "hourly-node",
        &[
            "--slots",
            "2",
            "--max-tasks-per-hour",
            "3",
            "--docker",
            wrapper.to_str().unwrap(),
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let completed = || env.ids_in(&grid, "main", "completed").len();
    assert!(wait_for(300, || completed() >= 3), "3 tasks run");
    // Several polls more: nothing else is claimed or started.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(completed(), 3);
    assert_eq!(
        env.ids_in(&grid, "main", "in_progress"),
        Vec::<String>::new()
    );
    assert_eq!(env.ids_in(&grid, "main", "queue").len(), 7);
    let started = std::fs::read_to_string(&runs).unwrap_or_default();
    assert_eq!(started.lines().count(), 3, "docker run 3 times");
    unsafe_kill(&child, "TERM");
    let (status, log) = exit_and_log(&mut child, 300);
    assert!(status.success(), "{log}");
    assert_eq!(
        count(&log, "rate limit: 3 tasks in the last hour"),
        1,
        "said once: {log}"
    );
    assert!(log.contains("next start at ~"), "{log}");
}

/// `work --once` from cron (and any restart) respects `--max-tasks-per-hour`
/// across processes: the window is kept in the node's state dir, so a second run within the hour
/// starts nothing and ends at once, saying so.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn max_tasks_per_hour_holds_across_once_runs() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("hourly-cron");
    let tasks: Vec<String> = (0..3)
        .map(|i| spec(&format!("{p}-{i}"), "echo hi", 60))
        .collect();
    submit(&env, &clone, &tasks);
    let (wrapper, runs) = docker_noting_runs(&env);
    let args = [
        "--once",
        "--max-tasks-per-hour",
        "1",
        "--docker",
        wrapper.to_str().unwrap(),
    ];
    let first = run_worker(&env, &grid, "cron-node", &args);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    for _ in 0..2 {
        let again = run_worker(&env, &grid, "cron-node", &args);
        let log = String::from_utf8_lossy(&again.stderr);
        assert_eq!(again.status.code(), Some(1), "nothing to do: {log}");
        assert!(
            log.contains("rate limit: 1 tasks in the last hour"),
            "{log}"
        );
    }
    let started = std::fs::read_to_string(&runs).unwrap_or_default();
    assert_eq!(started.lines().count(), 1, "docker run once in three runs");
    assert_eq!(env.ids_in(&grid, "main", "completed").len(), 1);
    assert_eq!(env.ids_in(&grid, "main", "queue").len(), 2);
}

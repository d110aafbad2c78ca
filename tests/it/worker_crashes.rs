//! Workers killed at the worst moments (SIGKILL, lost push answers, restarts) lose nothing and run
//! nothing twice; many workers run many tasks exactly once.

use crate::common::{
    assert_success, docker_ready, find_task, pushes, wait_exit, wait_for, wait_state, Env, TaskJson,
};
use crate::worker_kit::*;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_killed_workers_task_is_taken_over_with_attempt_2() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("kill9");
    submit(&env, &clone, &[spec(&id, "sleep 4; echo done", 120)]);
    let timing = fast_lease("3");
    let mut a = worker(&env, &grid, "victim", &timing)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 300));
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    remove_containers("dgrid.node=victim"); // what the victim's restart would do
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let out = run_worker(&env, &grid, "rescuer", &extra);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("took {id} back from victim")),
        "{log}"
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}\n{log}");
    assert_eq!(result["attempt"], 2);
    assert_eq!(result["node_id"], "rescuer");
    assert_eq!(result["stdout"], "done\n");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_result_spooled_before_a_crash_is_pushed_on_restart() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("spool");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    let out = worker(&env, &grid, "crashy", &["--once"])
        .env("DGRID_FAILPOINT", "after-spool")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint aborts the worker");
    assert_eq!(
        find_task(&env, &grid, &id).unwrap().0,
        "in_progress",
        "the result was not pushed"
    );
    let out = run_worker(&env, &grid, "crashy", &["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "nothing new to claim: {log}");
    assert!(log.contains("pushing 1 result(s) spooled"), "{log}");
    assert!(
        !log.contains("claimed"),
        "the task was not run again: {log}"
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["stdout"], "once\n");
    assert!(result.get("late_results").is_none());
    let spool = env.path("state-crashy/nodes/crashy/spool");
    assert_eq!(
        std::fs::read_dir(spool).unwrap().count(),
        0,
        "spool emptied"
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn four_workers_run_a_hundred_tasks_exactly_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, log) = setup(&env);
    let p = unique("many");
    let ids: Vec<String> = (0..100).map(|i| format!("{p}-{i:03}")).collect();
    submit(
        &env,
        &clone,
        &ids.iter()
            .map(|id| spec(id, "echo ok", 60))
            .collect::<Vec<_>>(),
    );
    let starts = ContainerStarts::watch();
    let before = pushes(&log);
    let workers: Vec<Child> = (0..4)
        .map(|i| {
            worker(&env, &grid, &format!("w{i}"), &["--until-empty"])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(wait_exit(&mut w, 300).success());
    }
    let started = starts.stop(&p);
    for id in &ids {
        assert_eq!(
            started.get(id),
            Some(&1),
            "{id} started {:?} times",
            started.get(id)
        );
        let (state, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(
            (state.as_str(), &result["stdout"]),
            ("completed", &"ok\n".into())
        );
    }
    let used = pushes(&log) - before;
    assert!(used as f64 <= 1.2 * 100.0, "{used} pushes for 100 tasks");
}

/// The remote takes a claim but hangs before answering; git on the worker is stopped by
/// DGRID_GIT_TIMEOUT. The next read finds the claim commit in main's history: the claim stands
/// and the task runs, once.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_claim_whose_answer_was_lost_stands_and_runs_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    after_first_claim(&grid, "sleep 60");
    let mut w = worker(&env, &grid, "unanswered", &[])
        .env("DGRID_GIT_TIMEOUT", "3")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "unanswered", 300));
    let id = unique("unanswered");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    let done = wait_state(&env, &grid, &id, "completed", 300);
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(done && status.success(), "{log}");
    assert!(env.path("claimed-once").exists(), "the remote hung: {log}");
    assert!(!log.contains("put "), "{log}");
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&1.into(), &"once\n".into())
    );
}

/// The remote takes a claim, then goes away before answering and stays away until the worker gives
/// up on that transition. Back, the worker finds its own claim on a task it does not hold, puts
/// it back without using an attempt, and then runs it once.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_claim_that_landed_unknown_goes_back_and_runs_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let away = env.path("g.git.away");
    after_first_claim(
        &grid,
        &format!("mv \"$(pwd -P)\" {}; sleep 60", away.display()),
    );
    let mut w = worker(&env, &grid, "unaware", &[])
        .env("DGRID_GIT_TIMEOUT", "3")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "unaware", 300));
    let id = unique("unaware");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    assert!(wait_for(300, || away.exists()));
    std::thread::sleep(Duration::from_secs(8)); // the timeout, then fetches that fail
    std::fs::rename(&away, &grid).unwrap();
    let done = wait_state(&env, &grid, &id, "completed", 300);
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(done && status.success(), "{log}");
    assert!(
        log.contains(&format!("put {id} back in the queue")),
        "{log}"
    );
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&1.into(), &"once\n".into())
    );
}

/// A worker's restart removes the leftover containers of its own node folder in the state dir, and
/// never those of another worker sharing the node id (another grid, another state dir).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_restart_removes_only_the_containers_of_its_own_state_dir() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let start = |state: &str| -> String {
        let node_dir = env.path(state).join("nodes/sharer");
        let out = std::process::Command::new("docker")
            .args(["run", "--detach", "--label=dgrid.node=sharer"])
            .arg(format!("--label=dgrid.node-dir={}", node_dir.display()))
            .args(["--entrypoint=sh", IMAGE, "-c", "sleep 120"])
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let alive = |id: &str| {
        let out = std::process::Command::new("docker")
            .args(["ps", "--quiet", "--no-trunc", "--filter"])
            .arg(format!("id={id}"))
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    let ours = start("state-sharer");
    let theirs = start("elsewhere");
    let out = run_worker(&env, &grid, "sharer", &["--once"]);
    let theirs_survived = alive(&theirs);
    let ours_survived = alive(&ours);
    for id in [&ours, &theirs] {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", id])
            .output();
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ours_survived, "the leftover of this state dir is removed");
    assert!(
        theirs_survived,
        "another state dir's container is left alone"
    );
}

/// Three workers, one of them killed (SIGKILL) at a random instant and started again every 0.3 to
/// 1.5 s for 20 s, while they run a queue: in the end every task has exactly one result file, all
/// completed, nothing is left queued, in progress or in a spool, the tree validates, and every
/// restart was accepted under its own node id.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn workers_killed_at_random_instants_lose_nothing() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("chaos");
    let ids: Vec<String> = (0..30).map(|i| format!("{p}-{i:02}")).collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            TaskJson::new(id)
                .image(IMAGE)
                .command("echo ok")
                .set("max_attempts", 50)
                .to_string()
        })
        .collect();
    submit(&env, &clone, &lines);
    let nodes = ["chaos-a", "chaos-b", "chaos-c"];
    let timing = fast_lease("3");
    let logs: Vec<PathBuf> = nodes
        .iter()
        .map(|n| env.path(&format!("{n}.log")))
        .collect();
    let spawn = |i: usize| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logs[i])
            .unwrap();
        worker(&env, &grid, nodes[i], &timing)
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = (0..nodes.len()).map(spawn).collect();
    // The instants of the kills and who is killed: replayable from the printed seed.
    let seed: u64 = match std::env::var("DGRID_TEST_SEED") {
        Ok(s) => s.trim().parse().expect("DGRID_TEST_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("chaos seed: {seed} (replay with DGRID_TEST_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = |n: u32| rng.u32(0..n);
    let chaos_until = std::time::Instant::now() + Duration::from_secs(20);
    let mut kills = 0;
    while std::time::Instant::now() < chaos_until {
        std::thread::sleep(Duration::from_millis(300 + u64::from(next(1200))));
        let i = next(nodes.len() as u32) as usize;
        let _ = workers[i].kill();
        let _ = workers[i].wait();
        kills += 1;
        workers[i] = spawn(i);
    }
    std::thread::sleep(Duration::from_secs(1)); // the last one started is up and listening
    let all_done = wait_for(300, || {
        env.ids_in(&grid, "main", "completed").len() == ids.len()
    });
    for w in &workers {
        unsafe_kill(w, "TERM");
    }
    let statuses: Vec<_> = workers.iter_mut().map(|w| wait_exit(w, 300)).collect();
    let log: String = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    assert!(
        all_done,
        "not all tasks completed after {kills} kills:\n{log}"
    );
    assert!(kills >= 10, "{kills} kills");
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}\n{log}");
    assert!(!log.contains("is in use by another worker"), "{log}");
    assert_eq!(env.ids_in(&grid, "main", "completed"), ids);
    for state in ["queue", "in_progress", "failed"] {
        assert!(env.ids_in(&grid, "main", state).is_empty(), "{state}");
    }
    for id in &ids {
        let (_, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(result["stdout"], "ok\n", "{result}");
    }
    env.dgrid_ok(&grid, &["validate"], 0);
    for node in nodes {
        let spool = env.path(&format!("state-{node}/nodes/{node}/spool"));
        let left: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{node}'s spool still holds {left:?}");
    }
}

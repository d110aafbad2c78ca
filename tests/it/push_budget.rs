//! The push budget (`--push-budget`): workers that share nothing but the repository
//! keep the whole grid within its pushes per minute, batching results and claiming ahead, and
//! still run every task exactly once. The remote records the time of every accepted push
//! (registration and goodbye included); a `--docker` wrapper logs every `docker run`.
//!
//! These two tests are long by nature (a budget of 6 per minute is slow on purpose): about 2.5
//! and 1.5 minutes at most.

use crate::common;
use crate::common::{docker_ready, most_in_a_minute, time_pushes, Env};
use crate::worker_kit::*;
use std::path::PathBuf;
use std::process::Child;

/// A `--docker` that logs each `docker run` (its arguments: the container's name holds the task
/// id) and then runs the real docker.
fn counting_docker(env: &Env) -> (PathBuf, PathBuf) {
    let log = env.path("docker-runs.log");
    let script = env.path("counting-docker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = run ] && echo \"$*\" >> {}\nexec docker \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, log)
}

/// How long a grid may take before the test calls it hung: minutes, so that a loaded machine
/// (a load of 7-9 on two cores missed the 90 s the twenty-push grid once had) is no failure.
const HANG_SECS: u64 = 900;

/// Runs `workers` workers over `tasks` tasks of `command`, each with `extra` flags, and checks
/// what the budget promises: all done (within [`HANG_SECS`], a hang detector only: how fast is a
/// benchmark's business, and a loaded machine is slow), at most `most` accepted pushes in any
/// 60-s window, every task run exactly once and completed.
#[allow(clippy::too_many_arguments)]
fn budgeted_grid(
    name: &str,
    workers: usize,
    tasks: usize,
    command: &str,
    extra: &[&str],
    most: usize,
) {
    let within = HANG_SECS;
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique(name);
    let ids: Vec<String> = (0..tasks).map(|i| format!("{p}-{i:03}")).collect();
    let lines: Vec<String> = ids.iter().map(|id| spec(id, command, 120)).collect();
    submit(&env, &clone, &lines);
    // From here on, the workers' pushes only.
    let push_times = time_pushes(&grid);
    let (docker, runs) = counting_docker(&env);
    let docker = docker.to_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let mut children: Vec<(String, PathBuf, Child)> = (0..workers)
        .map(|w| {
            let node = format!("{p}-w{w}");
            let log = env.path(&format!("{node}.log"));
            let mut args = vec!["--until-empty", "--docker", &docker];
            args.extend_from_slice(extra);
            let child = worker(&env, &grid, &node, &args)
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            (node, log, child)
        })
        .collect();
    let logs = |children: &[(String, PathBuf, Child)]| {
        children
            .iter()
            .map(|(node, log, _)| {
                format!(
                    "--- {node}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect::<String>()
    };
    let deadline = started + std::time::Duration::from_secs(within);
    let mut statuses = vec![None; children.len()];
    while statuses.iter().any(Option::is_none) && std::time::Instant::now() < deadline {
        for (i, (_, _, child)) in children.iter_mut().enumerate() {
            if statuses[i].is_none() {
                statuses[i] = child.try_wait().unwrap();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if statuses.iter().any(Option::is_none) {
        for (_, _, child) in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "{tasks} tasks not done within {within} s:\n{}",
            logs(&children)
        );
    }
    for (i, status) in statuses.iter().enumerate() {
        assert!(
            status.is_some_and(|s| s.success()),
            "{} failed:\n{}",
            children[i].0,
            logs(&children)
        );
    }
    let logs = logs(&children);
    let took = started.elapsed();
    assert!(
        took.as_secs() <= within,
        "{tasks} tasks took {took:?}, more than {within} s:\n{logs}"
    );

    let (in_a_minute, times) = most_in_a_minute(&push_times);
    let first = times.first().copied().unwrap_or_default();
    let offsets: Vec<String> = times.iter().map(|t| format!("{:.1}", t - first)).collect();
    assert!(
        in_a_minute <= most,
        "{in_a_minute} pushes in one 60-s window (at most {most}); pushes at {offsets:?}\n{logs}"
    );

    let runs = std::fs::read_to_string(&runs).unwrap_or_default();
    for id in &ids {
        let ran = runs
            .lines()
            .filter(|l| l.contains(&format!("-{id}-")))
            .count();
        assert_eq!(ran, 1, "{id} ran {ran} times\n{logs}");
    }
    assert_eq!(runs.lines().count(), tasks, "{runs}");
    let completed = env.ids_in(&grid, "main", "completed");
    assert_eq!(
        completed.len(),
        tasks,
        "all completed: {completed:?}\n{logs}"
    );
    // Shown with --nocapture: how the workers spaced their pushes and filled their slots.
    eprintln!("{logs}");
    eprintln!(
        "{name}: {tasks} tasks in {took:?}, {} pushes ({:.1} tasks per push), at most {in_a_minute} in a minute: {offsets:?}",
        times.len(),
        tasks as f64 / times.len().max(1) as f64
    );
}

/// Two workers with two slots over 40 tasks of 3 s at GitHub's 6 pushes per minute.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn two_workers_stay_within_six_pushes_a_minute() {
    if !docker_ready() {
        return;
    }
    budgeted_grid(
        "pb6",
        2,
        40,
        "sleep 3",
        &[
            "--slots",
            "2",
            "--push-budget",
            "6",
            "--heartbeat-interval",
            "30",
            "--lease",
            "120",
        ],
        7,
    );
}

/// Four workers with one slot over 80 tasks of 1 s at 20 pushes per minute.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn four_workers_stay_within_twenty_pushes_a_minute() {
    if !docker_ready() {
        return;
    }
    budgeted_grid(
        "pb20",
        4,
        80,
        "sleep 1",
        &[
            "--push-budget",
            "20",
            "--heartbeat-interval",
            "30",
            "--lease",
            "120",
        ],
        21,
    );
}

/// `git dgrid env` shows the budget worked out for the clone's remote, and where it came from.
#[test]
fn env_shows_the_push_budget_of_the_remote() {
    let env = Env::new();
    let clone = env.path("clone");
    std::fs::create_dir_all(&clone).unwrap();
    env.git(&clone, &["init", "-q"]);
    let line = |env: &Env| {
        let out = env.dgrid(&clone, &["env"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("--push-budget "))
            .unwrap_or_default()
            .to_string()
    };
    env.git(
        &clone,
        &["remote", "add", "origin", "git@github.com:o/grid.git"],
    );
    let hosted = line(&env);
    assert!(
        hosted.contains("= 6 here (the remote is on github.com)") && hosted.ends_with("default"),
        "{hosted}"
    );
    env.git(&clone, &["remote", "set-url", "origin", "/srv/grid.git"]);
    let local = line(&env);
    assert!(local.contains("= 0 here (no limit"), "{local}");
    env.git(&clone, &["config", "dgrid.pushBudget", "20"]);
    let set = line(&env);
    assert!(
        set.contains(" 20 ") && set.ends_with("git config dgrid.pushBudget"),
        "{set}"
    );
}

/// A lease that would not outlast a few push spacings is refused before anything is pushed.
#[test]
fn a_lease_too_short_for_the_budget_is_refused() {
    let env = Env::new();
    let (grid, _clone, log) = setup(&env);
    let before = common::pushes(&log);
    let out = worker(
        &env,
        &grid,
        "hasty",
        &["--push-budget", "6", "--lease", "30"],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--lease 30s is too short for --push-budget 6")
            && stderr.contains("at least 4 of those (40s)"),
        "{stderr}"
    );
    assert_eq!(common::pushes(&log), before, "nothing pushed");
}

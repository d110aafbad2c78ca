//! git-dgrid against dulwich's smart-HTTP server (`scripts/dulwich-server.sh`), a server that
//! answers `ok refs/heads/main` to a push whose expected old value went stale without moving the
//! ref, and 500 to a fetch that wants a commit which stopped being a tip meanwhile. A push counts
//! as landed only once the remote's main is seen to hold it: claim racers claim every task once,
//! and workers, one of them killed, run every task and lose no result.

use crate::common::{
    docker_ready, dulwich_ready, find_task, wait_exit, wait_for, DulwichServer, Env,
};
use crate::worker_kit::*;
use std::path::Path;
use std::process::Child;

/// 12 `claim` processes race over 48 tasks (dulwich serves one request at a time): each claimed once, by the node that reported it,
/// and main holds one commit per claim (`engine::race` checks all of it).
#[test]
#[cfg_attr(
    not(have_dulwich),
    ignore = "needs python3's dulwich (pip install dulwich)"
)]
fn twelve_claimers_race_over_dulwich() {
    if !dulwich_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let server = DulwichServer::start(&env, &grid);
    crate::engine::race(&env, &server.url(), &grid, 12, 48);
}

/// Four workers over 40 tasks through dulwich's server, one of them killed (SIGKILL) once it has
/// claimed: every task completes with its one result, only the tasks the killed worker held are
/// started again, and nothing is left in progress or in a survivor's spool.
#[test]
#[cfg_attr(
    not(all(have_docker, have_dulwich)),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root) and python3's dulwich (pip install dulwich)"
)]
fn four_workers_one_killed_over_dulwich_run_every_task_once() {
    if !docker_ready() || !dulwich_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let server = DulwichServer::start(&env, &grid);
    let url = server.url();
    let p = unique("dulwich");
    let ids: Vec<String> = (0..40).map(|i| format!("{p}-{i:02}")).collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| spec(id, "sleep 1; echo ok", 120))
        .collect();
    submit(&env, &clone, &lines);
    let starts = ContainerStarts::watch();
    // Leases long enough for a loaded machine: a live worker is never taken for dead.
    let timing = [
        "--heartbeat-interval",
        "5",
        "--lease",
        "30",
        "--clock-skew",
        "0",
    ];
    let nodes = ["dw-0", "dw-1", "dw-2", "dw-3"];
    let mut workers: Vec<Child> = nodes
        .iter()
        .map(|n| {
            worker(&env, Path::new(&url), n, &timing)
                .stderr(std::fs::File::create(env.path(&format!("{n}.log"))).unwrap())
                .spawn()
                .unwrap()
        })
        .collect();
    let victim = nodes[0];
    assert!(
        wait_for(300, || !held_by(&env, &grid, victim).is_empty()),
        "{victim} never claimed"
    );
    workers[0].kill().unwrap(); // SIGKILL
    workers[0].wait().unwrap();
    let held_at_kill = held_by(&env, &grid, victim);
    let all_done = wait_for(600, || {
        env.ids_in(&grid, "main", "completed").len() == ids.len()
    });
    for w in &workers[1..] {
        unsafe_kill(w, "TERM");
    }
    for w in &mut workers[1..] {
        assert!(wait_exit(w, 120).success());
    }
    let started = starts.stop(&p);
    let log: String = nodes
        .iter()
        .map(|n| std::fs::read_to_string(env.path(&format!("{n}.log"))).unwrap_or_default())
        .collect();
    assert!(all_done, "not every task completed:\n{log}");
    for id in &ids {
        let (state, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(
            (state.as_str(), &result["stdout"]),
            ("completed", &"ok\n".into()),
            "{id}"
        );
        let times = started.get(id).copied().unwrap_or(0);
        if held_at_kill.contains(id) {
            assert!(
                (1..=2).contains(&times),
                "{id} (held by {victim}) started {times} times"
            );
        } else {
            assert_eq!(times, 1, "{id} started {times} times\n{log}");
        }
    }
    for state in ["queue", "in_progress", "failed"] {
        assert!(env.ids_in(&grid, "main", state).is_empty(), "{state}");
    }
    for node in &nodes[1..] {
        let spool = env.path(&format!("state-{node}/nodes/{node}/spool"));
        let left: Vec<_> = std::fs::read_dir(&spool)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{node}'s spool still holds {left:?}");
    }
}

/// The ids in progress on `grid`'s main under a claim of `node`.
fn held_by(env: &Env, grid: &Path, node: &str) -> Vec<String> {
    env.ids_in(grid, "main", "in_progress")
        .into_iter()
        .map(|f| {
            f.trim_end_matches(".json")
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .filter(|id| find_task(env, grid, id).is_some_and(|(_, t)| t["claim"]["node_id"] == node))
        .collect()
}

//! A worker killed with SIGKILL while it holds a task claimed ahead (never started) and started
//! again from the same state dir puts that task back without using an attempt: with
//! `max_attempts: 1` the task still runs, once. The task that was running when the worker died
//! may have run, so its attempt counts, as before.

use crate::common::{docker_ready, find_task, wait_for, Env, TaskJson};
use crate::worker_kit::*;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_task_claimed_ahead_by_a_killed_worker_goes_back_without_using_its_attempt() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("killed-ahead");
    let ids: Vec<String> = (0..3).map(|i| format!("{p}-{i}")).collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            TaskJson::new(id)
                .image(IMAGE)
                .command("sleep 6")
                .timeout(120)
                .set("max_attempts", 1)
                .to_string()
        })
        .collect();
    submit(&env, &clone, &lines);
    let node = "killed-ahead-node";
    let args = [
        "--slots",
        "1",
        "--push-budget",
        "60",
        "--heartbeat-interval",
        "5",
        "--lease",
        "60",
        "--clock-skew",
        "0",
    ];
    let log = env.path("first.log");
    let mut first = worker(&env, &grid, node, &args)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let text = |path: &std::path::Path| std::fs::read_to_string(path).unwrap_or_default();
    let ahead = |text: &str| {
        text.lines()
            .find(|l| l.contains(" (attempt 1) ahead"))
            .and_then(|l| ids.iter().find(|id| l.contains(&format!("claimed {id} "))))
            .cloned()
    };
    assert!(
        wait_for(300, || ahead(&text(&log)).is_some()),
        "{}",
        text(&log)
    );
    let waiting = ahead(&text(&log)).unwrap();
    // Killed at once, the task still waiting for the slot: no shutdown puts it back.
    unsafe_kill(&first, "KILL");
    first.wait().unwrap();
    let first_log = text(&log);
    assert!(
        !first_log.contains(&format!("starting {waiting}")),
        "it never started: {first_log}"
    );
    let (state, spec) = find_task(&env, &grid, &waiting).unwrap();
    assert_eq!(state, "in_progress", "claimed, on the grid: {spec}");

    let log = env.path("second.log");
    let second = worker(&env, &grid, node, &args)
        .arg("--until-empty")
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    let second_log = text(&log);
    remove_containers(&format!("dgrid.node={node}"));
    assert!(second.success(), "{second_log}");
    assert!(
        second_log.contains(&format!(
            "put {waiting} back in the queue without using an attempt"
        )),
        "{second_log}"
    );
    let (state, result) = find_task(&env, &grid, &waiting).unwrap();
    assert_eq!(
        state, "completed",
        "ran after all, its one attempt unused: {result}"
    );
    assert_eq!(result["exit_code"], 0, "{result}");
}

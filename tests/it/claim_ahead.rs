//! Claim-ahead under a push budget: a task claimed ahead waits in the worker without
//! a container, a cancel reaches it as it reaches a running one, and on shutdown it goes back to
//! the queue without using an attempt.

use crate::common::{docker_ready, find_task, wait_exit, wait_for, Env};
use crate::worker_kit::*;

/// The id named by the first log line that says `what`, once there is one.
fn logged(log: &std::path::Path, what: &str, not: &[&str]) -> Option<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split(what)
                .next()?
                .split_whitespace()
                .last()
                .map(str::to_string)
        })
        .find(|id| !not.contains(&id.as_str()))
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_task_claimed_ahead_is_cancelled_in_place_and_released_on_shutdown() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("ahead");
    let ids: Vec<String> = (0..4).map(|i| format!("{p}-{i}")).collect();
    let lines: Vec<String> = ids.iter().map(|id| spec(id, "sleep 60", 120)).collect();
    submit(&env, &clone, &lines);
    let log = env.path("worker.log");
    // One slot, 60 pushes a minute (a push a second at most): the first push claims one task to
    // run and one ahead (no duration seen yet: one per slot).
    let mut w = worker(
        &env,
        &grid,
        "ahead-node",
        &[
            "--slots",
            "1",
            "--push-budget",
            "60",
            "--heartbeat-interval",
            "10",
            "--lease",
            "60",
            "--grace",
            "1",
        ],
    )
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    let ahead = " (attempt 1) ahead";
    assert!(
        wait_for(300, || logged(&log, ahead, &[]).is_some()),
        "{}",
        text()
    );
    let waiting = logged(&log, ahead, &[]).unwrap();
    let (state, _) = find_task(&env, &grid, &waiting).unwrap();
    assert_eq!(state, "in_progress", "claimed, on the grid");
    assert!(
        containers_with_label(&format!("dgrid.task={waiting}")).is_empty(),
        "but no container: it waits for the slot"
    );

    // A cancel reaches it where it waits.
    assert!(env.dgrid(&clone, &["cancel", &waiting]).status.success());
    let dropped = format!("dropped {waiting}, claimed ahead");
    assert!(wait_for(300, || text().contains(&dropped)), "{}", text());
    // The next push claims another ahead; a shutdown puts it back without using an attempt.
    assert!(
        wait_for(300, || logged(&log, ahead, &[&waiting]).is_some()),
        "{}",
        text()
    );
    let second = logged(&log, ahead, &[&waiting]).unwrap();
    unsafe_kill(&w, "TERM");
    let status = wait_exit(&mut w, 300);
    let text = text();
    assert!(status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "putting {second} back in the queue: claimed ahead"
        )),
        "{text}"
    );
    let (state, spec) = find_task(&env, &grid, &second).unwrap();
    assert_eq!(state, "queue", "released: {text}");
    assert!(
        spec.get("claim").is_none() && spec.get("attempts").is_none(),
        "no attempt used: {spec}"
    );
    let (state, result) = find_task(&env, &grid, &waiting).unwrap();
    assert_eq!(state, "failed", "{result}");
    assert_eq!(result["status"], "cancelled", "{result}");
    for id in [&waiting, &second] {
        assert!(
            !text.contains(&format!("running {id}")) && !text.contains(&format!("starting {id}")),
            "{id} never ran: {text}"
        );
    }
}

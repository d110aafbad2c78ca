//! A task whose result was archived, queued again with plain git around the hook (a replay of
//! a signed task, say): workers never run it (issue 22, item 6), as `submit` refuses the id.

use crate::common::{docker_ready, find_task, push_around_hook, Env};
use crate::worker_kit::*;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn an_archived_task_queued_again_by_plain_git_never_runs() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("replayed");
    let task = spec(&id, "echo once", 60);
    submit(&env, &clone, std::slice::from_ref(&task));
    let out = run_worker(&env, &grid, "replay-node", &["--until-empty"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.dgrid_ok(&clone, &["archive", "--keep", "0"], 0);
    assert!(find_task(&env, &grid, &id).is_none(), "archived off main");
    // The same file, queued again around the hook.
    env.git(&clone, &["pull", "--quiet", "--ff-only"]);
    push_around_hook(&env, &clone, [(format!("tasks/queue/{id}.json"), task)]);
    let out = run_worker(&env, &grid, "replay-node", &["--until-empty"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        find_task(&env, &grid, &id).map(|t| t.0).as_deref(),
        Some("queue"),
        "never run again: {log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.contains("(archived)")),
        "{log}"
    );
}

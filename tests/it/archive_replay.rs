//! A task whose result was archived, queued again with plain git around the hook (a replay of
//! a signed task, say): the hook refuses it, `validate` names it, and workers never run it,
//! as `submit` refuses the id.

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
    // The same file, queued again: the hook refuses it...
    env.git(&clone, &["pull", "--quiet", "--ff-only"]);
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    let path = format!("tasks/queue/{id}.json");
    std::fs::write(clone.join(&path), &task).unwrap();
    env.git(&clone, &["add", &path]);
    env.git(&clone, &["commit", "--quiet", "-m", "again"]);
    let pushed = env
        .cmd("git", &clone)
        .args(["push", "origin", "HEAD:main"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&pushed.stderr);
    assert!(!pushed.status.success(), "the hook lets it through: {said}");
    assert!(said.contains("is archived in dgrid-archive"), "{said}");
    // ...validate names it...
    let out = env.dgrid(&clone, &["validate"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&path) && text.contains("is archived in dgrid-archive"),
        "{text}"
    );
    env.git(&clone, &["reset", "--quiet", "--hard", "origin/main"]);
    // ...and pushed around the hook, workers leave it queued.
    push_around_hook(&env, &clone, [(path, task)]);
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

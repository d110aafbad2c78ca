//! Adaptive replication (`"replicas": "adaptive"`) with real workers: a node earns solo
//! runs after ten valid results; one planted invalid result (a docker wrapper that lies once)
//! resets it and sends its unchecked solo results back to be checked.

use crate::common::{docker_ready, wait_for, Env, TaskJson};
use crate::quorum_kit::*;
use crate::worker_kit::{setup, submit, unique, IMAGE};
use serde_json::Value;
use std::path::Path;

fn adaptive(id: &str) -> TaskJson {
    replicated(id, 0, 0).set("replicas", "adaptive")
}

/// The commits of `main` that `filter` (git's --diff-filter: A added, D deleted) `id`'s file in
/// `tasks/<state>/`, newest first.
fn commits_touching(env: &Env, grid: &Path, filter: &str, state: &str, id: &str) -> Vec<String> {
    let spec = format!(":(glob)tasks/{state}/**/{id}.json");
    let out = env.git(
        grid,
        &[
            "log",
            &format!("--diff-filter={filter}"),
            "--format=%H",
            "main",
            "--",
            &spec,
        ],
    );
    out.lines().map(str::to_string).collect()
}

/// The ids of the results that `commit` adds to `completed/` with `node` among the agreeing.
fn settled_with(env: &Env, grid: &Path, commit: &str, node: &str) -> Vec<String> {
    let added = env.git(
        grid,
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-only",
            "-r",
            "--diff-filter=A",
            commit,
            "--",
            "tasks/completed",
        ],
    );
    added
        .lines()
        .filter_map(|path| {
            let result: Value =
                serde_json::from_str(&env.git(grid, &["show", &format!("{commit}:{path}")]))
                    .ok()?;
            let agreeing = result["quorum"]["agreeing"].as_array()?;
            agreeing
                .iter()
                .any(|n| n == node)
                .then(|| result["task_id"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn adaptive_solo_after_ten_valid_then_reset() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("adapt");
    // a: trusted later, lies once (only for the planted task); b: honest, never labelled `solo`;
    // c: honest, labelled `solo`, started last to check a's solo results.
    let (a, b, c) = (format!("{p}-a"), format!("{p}-b"), format!("{p}-c"));
    let marker = "PLANTED";
    let mut workers = Workers::new(&env, &grid);
    let mut a_args = timing(LEASE);
    a_args.extend(
        [
            "--docker",
            &lies_once_docker(&env, marker),
            "--label",
            "solo",
        ]
        .map(String::from),
    );
    workers.start(&a, &a_args);
    workers.start(&b, &timing(LEASE));

    // 1. Ten adaptive tasks: neither node is trusted yet, so each runs on both.
    let first: Vec<String> = (0..10).map(|i| format!("{p}-e{i}")).collect();
    let tasks: Vec<String> = first.iter().map(|id| adaptive(id).to_string()).collect();
    submit(&env, &clone, &tasks);
    assert!(
        all_settled(&env, &grid, &first, 600),
        "the first ten settled: {}",
        workers.logs()
    );
    for id in &first {
        let (state, result) = task(&env, &grid, id).unwrap();
        assert_eq!(state, "completed", "{result}{}", workers.logs());
        assert_eq!(
            voters(&result),
            sorted(vec![a.clone(), b.clone()]),
            "{result}"
        );
        assert!(result["quorum"]["unchecked"] != true, "{result}");
    }
    assert_eq!(
        reputation(&env, &grid, &a),
        (10, 0, 10),
        "{}",
        workers.logs()
    );
    assert_eq!(
        reputation(&env, &grid, &b),
        (10, 0, 10),
        "{}",
        workers.logs()
    );

    // 2. Adaptive tasks only `a` may run (label `solo`): it is trusted, so each has one instance.
    // A few are drawn for a check (probability 1/consecutive_valid); with no other `solo` node
    // running, those wait in progress for their checking instance.
    let solo: Vec<String> = (0..4).map(|i| format!("{p}-s{i}")).collect();
    let tasks: Vec<String> = solo
        .iter()
        .map(|id| adaptive(id).set("labels", vec!["solo"]).to_string())
        .collect();
    submit(&env, &clone, &tasks);
    let solo_done = |id: &String| match task(&env, &grid, id) {
        Some((s, r)) if s == "completed" => r["quorum"]["unchecked"] == true,
        Some((s, t)) if s == "in_progress" => {
            t["instances_wanted"] == 2 && t["instances"].as_array().is_some_and(|e| !e.is_empty())
        }
        _ => false,
    };
    assert!(
        wait_for(300, || solo.iter().all(solo_done)),
        "the solo tasks ran alone: {:?}{}",
        solo.iter()
            .map(|id| task(&env, &grid, id))
            .collect::<Vec<_>>(),
        workers.logs()
    );
    let mut unchecked = Vec::new();
    for id in &solo {
        let (state, t) = task(&env, &grid, id).unwrap();
        if state == "completed" {
            assert_eq!(voters(&t), vec![a.clone()], "run alone by a: {t}");
            assert_eq!(t["quorum"]["unchecked"], true, "{t}");
            unchecked.push(id.clone());
        } else {
            // Drawn: its first instance was a's alone.
            assert_eq!(t["instances"][0]["node_id"], a.as_str(), "{t}");
        }
    }
    assert!(
        !unchecked.is_empty(),
        "at least one of four solo runs not drawn (each is at 1/10): {:?}",
        solo.iter()
            .map(|id| task(&env, &grid, id))
            .collect::<Vec<_>>()
    );
    let (_, invalid, cv) = reputation(&env, &grid, &a);
    assert_eq!(invalid, 0);
    assert!(cv >= 10, "{cv}");

    // 3. The planted task: a lies, b and c tell the truth. a is reset, and its unchecked solo
    // results go back in progress to be checked (by c, the other `solo` node).
    let planted = format!("{p}-planted");
    let spec = TaskJson::new(&planted)
        .image(IMAGE)
        .command(format!("echo {HONEST}-{planted}; : {marker}"))
        .timeout(120)
        .set("replicas", 3);
    submit(&env, &clone, &[spec.to_string()]);
    workers.start(
        &c,
        &[timing(LEASE), vec!["--label".into(), "solo".into()]].concat(),
    );
    let mut all = solo.clone();
    all.push(planted.clone());
    let checked = |id: &String| {
        task(&env, &grid, id)
            .is_some_and(|(s, r)| s == "completed" && r["quorum"]["unchecked"] != true)
    };
    assert!(
        wait_for(300, || all.iter().all(checked)),
        "planted settled and every solo result checked: {:?}{}",
        all.iter()
            .map(|id| task(&env, &grid, id))
            .collect::<Vec<_>>(),
        workers.logs()
    );
    workers.stop_all();
    let logs = workers.logs();
    let (_, result) = task(&env, &grid, &planted).unwrap();
    assert_eq!(result["stdout"], honest_stdout(&planted), "{result}{logs}");
    assert_eq!(
        quorum_list(&result, "dissenting"),
        vec![a.clone()],
        "{result}"
    );
    let settled = commits_touching(&env, &grid, "A", "completed", &planted);
    let at = settled
        .first()
        .expect("the commit that settled the planted task");
    let (_, invalid, cv) = reputation_at(&env, &grid, at, &a);
    // The push that settles it may settle a checked solo task too (a loaded machine batches
    // results): each a agreed with counts again after the reset, in the same commit.
    let agreed_in_same_commit = settled_with(&env, &grid, at, &a)
        .iter()
        .filter(|id| **id != planted)
        .count() as u64;
    assert_eq!(invalid, 1, "a reset by the planted result{logs}");
    assert!(
        cv <= agreed_in_same_commit,
        "a reset by the planted result: consecutive_valid {cv}, results a agreed with in that \
         commit besides it {agreed_in_same_commit}{logs}"
    );
    for id in &unchecked {
        let (_, r): (String, Value) = task(&env, &grid, id).unwrap();
        assert_eq!(
            voters(&r),
            sorted(vec![a.clone(), c.clone()]),
            "re-checked: {r}{logs}"
        );
        assert_eq!(copies(&env, &grid, id), 1, "{id}");
        assert!(
            !commits_touching(&env, &grid, "D", "completed", id).is_empty(),
            "{id} went back from completed/ to be checked{logs}"
        );
    }
    let (_, invalid, cv) = reputation(&env, &grid, &a);
    assert_eq!(invalid, 1, "{logs}");
    assert!(cv < 10, "a earns its trust again from 0: {cv}{logs}");
}

//! `git dgrid compact` against real bare remotes: a worker (real Docker) running 30 tasks while
//! main is compacted three times under its feet; the old history on dgrid-archive, dropped by
//! `--drop-history`; the resurrection guard of the pre-push hook for a stale clone.

use crate::common::{assert_success, docker_ready, wait_exit, wait_for, Env, TaskJson};
use crate::worker_kit::*;
use std::path::Path;
use std::process::Stdio;

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `init --bare` refuses non-fast-forward pushes; a maintainer allows them to compact.
fn allow_force(env: &Env, grid: &Path) {
    env.git(grid, &["config", "receive.denyNonFastForwards", "false"]);
}

fn roots(env: &Env, grid: &Path, rev: &str) -> Vec<String> {
    env.git(grid, &["rev-list", "--max-parents=0", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `compact` in `clone` and returns the old tip it names.
fn compact(env: &Env, clone: &Path, args: &[&str]) -> String {
    let mut all = vec!["compact"];
    all.extend(args);
    let out = env.dgrid_ok(clone, &all, 0);
    let line = out.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

fn is_ancestor(env: &Env, grid: &Path, a: &str, b: &str) -> bool {
    env.cmd("git", grid)
        .args(["merge-base", "--is-ancestor", a, b])
        .status()
        .unwrap()
        .success()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn thirty_tasks_complete_once_while_main_is_compacted_three_times() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    allow_force(&env, &grid);
    let (docker, runs) = docker_wrapper(&env);
    let p = unique("cmp");
    let ids: Vec<String> = (0..30).map(|i| format!("{p}-{i}")).collect();
    submit(
        &env,
        &clone,
        &ids.iter()
            .map(|id| spec(id, "sleep 0.5", 60))
            .collect::<Vec<_>>(),
    );
    let mut w = worker(
        &env,
        &grid,
        "cw",
        &[
            "--until-empty",
            "--slots",
            "2",
            "--docker",
            docker.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(env.path("worker.log")).unwrap())
    .spawn()
    .unwrap();
    let mut old_tips = Vec::new();
    for after in [5, 13, 21] {
        assert!(
            wait_for(300, || lines(&runs).len() >= after),
            "the worker stalled before {after} runs"
        );
        old_tips.push(compact(&env, &clone, &[]));
    }
    let status = wait_exit(&mut w, 300);
    let log = std::fs::read_to_string(env.path("worker.log")).unwrap();
    assert!(status.success(), "worker failed: {log}");

    let mut ran = lines(&runs);
    ran.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(ran, want, "every task ran exactly once");
    let mut completed = env.ids_in(&grid, "main", "completed");
    completed.sort();
    assert_eq!(completed.len(), 30, "{completed:?}");
    let json: serde_json::Value =
        serde_json::from_str(&env.dgrid_ok(&clone, &["status", "--json"], 0)).unwrap();
    assert_eq!(json["counts"]["completed"], 30, "{json}");

    let root = roots(&env, &grid, "main");
    assert_eq!(root.len(), 1, "main has one root: {root:?}");
    let subject = env.git(&grid, &["show", "-s", "--format=%s%n%b", &root[0]]);
    assert!(subject.starts_with("dgrid: compact history"), "{subject}");
    assert!(
        subject.contains(&format!("Dgrid-Compacted-From: {}", old_tips[2])),
        "{subject}"
    );
    env.git(&grid, &["fsck", "--no-progress"]);
    for old in &old_tips {
        assert!(
            is_ancestor(&env, &grid, old, "dgrid-archive"),
            "{old} not kept"
        );
        assert!(!is_ancestor(&env, &grid, old, "main"));
    }

    compact(&env, &clone, &["--drop-history"]);
    assert_eq!(roots(&env, &grid, "main").len(), 1);
    for old in &old_tips {
        assert!(
            !is_ancestor(&env, &grid, old, "dgrid-archive"),
            "{old} still kept"
        );
    }
    assert_eq!(
        env.git(&grid, &["rev-list", "--count", "dgrid-archive"]),
        "1"
    );
    env.git(&grid, &["fsck", "--no-progress"]);
    assert_eq!(env.ids_in(&grid, "main", "completed").len(), 30);
}

fn commit_file(env: &Env, clone: &Path, rel: &str, content: &str) {
    let path = clone.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    env.git(clone, &["add", rel]);
    env.git(clone, &["commit", "--quiet", "-m", &format!("add {rel}")]);
}

fn push(env: &Env, clone: &Path, args: &[&str]) -> std::process::Output {
    env.cmd("git", clone)
        .arg("push")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_stale_clone_cannot_resurrect_the_history_before_a_compaction() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let maintainer = env.clone(grid.to_str().unwrap(), "m");
    let stale = env.clone(grid.to_str().unwrap(), "s");
    let out = env.dgrid(&maintainer, &["compact"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("receive.denyNonFastForwards false"),
        "{stderr}"
    );
    allow_force(&env, &grid);
    env.dgrid_ok(&stale, &["install-hooks"], 0);
    submit(&env, &maintainer, &[spec("before", "true", 60)]);
    env.git(&stale, &["pull", "--quiet"]);
    compact(&env, &maintainer, &[]);
    let root = roots(&env, &grid, "main").remove(0);

    // Old commits on top of the old history, merged with the new one.
    commit_file(
        &env,
        &stale,
        "tasks/queue/old.json",
        &TaskJson::file("old").to_string(),
    );
    env.git(&stale, &["fetch", "--quiet", "origin"]);
    env.git(
        &stale,
        &[
            "merge",
            "--quiet",
            "--allow-unrelated-histories",
            "-m",
            "merge",
            "origin/main",
        ],
    );
    let out = push(&env, &stale, &["origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push went through: {stderr}");
    assert!(
        stderr.contains("this clone's main predates the compaction of")
            && stderr.contains(&format!("(root {root})"))
            && stderr.contains("git fetch origin && git reset --hard origin/main"),
        "{stderr}"
    );
    // Forced, without having fetched the compacted main: refused too.
    env.git(&stale, &["reset", "--quiet", "--hard", "HEAD^1"]);
    env.git(
        &stale,
        &["update-ref", "refs/remotes/origin/main", "HEAD^1"],
    );
    let out = push(&env, &stale, &["--force", "origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the forced push went through: {stderr}"
    );
    assert!(
        stderr.contains("git fetch origin && git reset --hard origin/main"),
        "{stderr}"
    );
    assert_eq!(roots(&env, &grid, "main"), vec![root.clone()]);

    // `submit` from the stale clone builds on the fetched (compacted) main: no resurrection.
    submit(&env, &stale, &[spec("after", "true", 60)]);
    assert_eq!(roots(&env, &grid, "main"), vec![root.clone()]);

    // The one fixing command, then an ordinary push passes the hook.
    let fix = env
        .cmd("sh", &stale)
        .args(["-c", "git fetch origin && git reset --hard origin/main"])
        .output()
        .unwrap();
    assert_success(&fix);
    commit_file(
        &env,
        &stale,
        "tasks/queue/new.json",
        &TaskJson::file("new").to_string(),
    );
    assert_success(&push(&env, &stale, &["origin", "main"]));
    assert_eq!(roots(&env, &grid, "main"), vec![root]);
    env.git(&grid, &["fsck", "--no-progress"]);
}

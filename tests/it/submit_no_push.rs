//! `submit --no-push`: the submission is committed on a new local branch on top
//! of the chosen remote's `main`, and the push command it prints, run verbatim, lands the tasks on
//! that remote at the sharded path a push would have used. Real git, bare remotes on disk.

use crate::common::{find_task, Env};
use std::path::Path;

/// The hint lines of a `--no-push` run's stderr that are commands (two-space indent, `git push`).
fn printed_commands(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter(|l| l.starts_with("git "))
        .map(str::to_string)
        .collect()
}

/// Runs `command` verbatim with sh in `dir`, as a user pasting it would.
fn run_verbatim(env: &Env, dir: &Path, command: &str) {
    let out = env.cmd("sh", dir).args(["-c", command]).output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn no_push(env: &Env, clone: &Path, extra: &[&str]) -> (String, Vec<String>) {
    let mut args = vec!["submit", "--no-push"];
    args.extend_from_slice(extra);
    let out = env.dgrid(clone, &args);
    assert!(
        out.status.success(),
        "submit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        printed_commands(&out.stderr),
    )
}

/// The task's path on `main` of `grid`, asserting it is the sharded queue path and that the whole
/// grid validates.
fn assert_queued_validly(env: &Env, grid: &Path, id: &str) -> serde_json::Value {
    let (state, spec) = find_task(env, grid, id).unwrap_or_else(|| panic!("{id} is not on main"));
    assert_eq!(state, "queue");
    let listing = env.git(
        grid,
        &["ls-tree", "-r", "--name-only", "main", "tasks/queue"],
    );
    let path = listing
        .lines()
        .find(|l| l.ends_with(&format!("/{id}.json")))
        .unwrap();
    assert_eq!(
        path.split('/').count(),
        4,
        "{path} is not tasks/queue/<shard>/{id}.json"
    );
    env.dgrid_ok(grid, &["validate"], 0);
    spec
}

#[test]
fn the_printed_push_lands_the_task_even_when_the_local_main_is_behind() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    // A plain submit moves only origin/main: the checked-out main is now behind, which is what
    // made the old hint (`git add ... && git commit ... && git push`) get rejected.
    env.dgrid_ok(
        &clone,
        &["submit", "--id", "first", "--image", "alpine", "--", "true"],
        0,
    );
    let head = env.git(&clone, &["rev-parse", "HEAD"]);
    let (stdout, commands) = no_push(
        &env,
        &clone,
        &["--id", "pr-1", "--image", "alpine", "--", "echo", "hi"],
    );
    assert_eq!(stdout.trim(), "pr-1");
    assert_eq!(
        commands,
        [
            "git push origin dgrid-submit-pr-1:main",
            "git push origin dgrid-submit-pr-1"
        ]
    );
    // Nothing was pushed, and the working tree, index and HEAD are untouched.
    assert!(find_task(&env, &grid, "pr-1").is_none());
    assert_eq!(env.git(&clone, &["rev-parse", "HEAD"]), head);
    assert_eq!(env.git(&clone, &["status", "--porcelain"]), "");
    run_verbatim(&env, &clone, &commands[0]);
    let spec = assert_queued_validly(&env, &grid, "pr-1");
    assert_eq!(spec["command"], serde_json::json!(["echo", "hi"]));
    assert!(
        find_task(&env, &grid, "first").is_some(),
        "main kept what it had"
    );
}

#[test]
fn the_branch_for_a_pull_request_is_a_fast_forward_of_main_and_validates() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let (_, commands) = no_push(
        &env,
        &clone,
        &["--id", "pr-2", "--image", "alpine", "--", "true"],
    );
    run_verbatim(&env, &clone, &commands[1]);
    // What a pull request's CI runs, and what a fast-forward merge of it does.
    env.dgrid_ok(
        &clone,
        &["validate", "--rev", "origin/main..dgrid-submit-pr-2"],
        0,
    );
    env.git(
        &grid,
        &["merge-base", "--is-ancestor", "main", "dgrid-submit-pr-2"],
    );
    env.git(
        &grid,
        &["update-ref", "refs/heads/main", "dgrid-submit-pr-2"],
    );
    assert_queued_validly(&env, &grid, "pr-2");
    // Once on main, the id is taken: refused, as a push would be.
    let out = env.dgrid(
        &clone,
        &[
            "submit",
            "--no-push",
            "--id",
            "pr-2",
            "--image",
            "alpine",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "pr-2 is on main now: {out:?}");
    // Submitting an id again before the first branch was pushed never moves that branch.
    let (_, first) = no_push(
        &env,
        &clone,
        &["--id", "pr-3", "--image", "alpine", "--", "true"],
    );
    let before = env.git(&clone, &["rev-parse", "dgrid-submit-pr-3"]);
    let (_, second) = no_push(
        &env,
        &clone,
        &["--id", "pr-3", "--image", "alpine", "--", "true"],
    );
    assert_eq!(first[0], "git push origin dgrid-submit-pr-3:main");
    assert_eq!(second[0], "git push origin dgrid-submit-pr-3-2:main");
    let (json, _) = no_push(
        &env,
        &clone,
        &["--json", "--id", "pr-4", "--image", "alpine", "--", "true"],
    );
    let line: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(line["id"], "pr-4");
    assert_eq!(line["branch"], "dgrid-submit-pr-4");
    assert_eq!(
        line["commit"].as_str().unwrap(),
        env.git(&clone, &["rev-parse", "dgrid-submit-pr-4"])
    );
    let path = line["path"].as_str().unwrap();
    assert!(
        path.starts_with("tasks/queue/") && path.split('/').count() == 4,
        "{path}"
    );
    env.git(
        &clone,
        &["cat-file", "-e", &format!("dgrid-submit-pr-4:{path}")],
    );
    assert_eq!(env.git(&clone, &["rev-parse", "dgrid-submit-pr-3"]), before);
}

#[test]
fn no_push_checks_and_targets_the_remote_it_is_given() {
    let env = Env::new();
    let origin = env.grid("origin.git");
    let other = env.grid("other.git");
    let clone = env.clone(origin.to_str().unwrap(), "c");
    env.git(&clone, &["remote", "add", "other", other.to_str().unwrap()]);
    // "dup" is taken on origin only: a submission to other must not be refused for it.
    env.dgrid_ok(
        &clone,
        &["submit", "--id", "dup", "--image", "alpine", "--", "true"],
        0,
    );
    env.dgrid_ok(
        &clone,
        &[
            "submit", "--remote", "other", "--id", "on-other", "--image", "alpine", "--", "true",
        ],
        0,
    );
    let origin_main = env.git(&origin, &["rev-parse", "main"]);
    let (stdout, commands) = no_push(
        &env,
        &clone,
        &[
            "--remote", "other", "--id", "dup", "--image", "alpine", "--", "true",
        ],
    );
    assert_eq!(stdout.trim(), "dup");
    assert_eq!(commands[0], "git push other dgrid-submit-dup:main");
    run_verbatim(&env, &clone, &commands[0]);
    assert_queued_validly(&env, &other, "dup");
    assert!(find_task(&env, &other, "on-other").is_some());
    assert_eq!(env.git(&origin, &["rev-parse", "main"]), origin_main);
    // An id taken on other is refused, and nothing is committed for it.
    let out = env.dgrid(
        &clone,
        &[
            "submit",
            "--no-push",
            "--remote",
            "other",
            "--id",
            "on-other",
            "--image",
            "alpine",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"on-other\" already exists"), "{stderr}");
    env.git(&clone, &["branch", "--list", "dgrid-submit-on-other"])
        .is_empty()
        .then_some(())
        .expect("no branch for a refused submission");
    // The same through git config dgrid.remote.
    env.git(&clone, &["config", "dgrid.remote", "other"]);
    let (_, commands) = no_push(
        &env,
        &clone,
        &["--id", "via-config", "--image", "alpine", "--", "true"],
    );
    assert_eq!(commands[0], "git push other dgrid-submit-via-config:main");
}

#[test]
fn no_push_with_a_url_says_it_needs_a_clone() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let out = env.dgrid(
        env.tmp.path(),
        &[
            "submit",
            "--no-push",
            "--repo",
            grid.to_str().unwrap(),
            "--image",
            "alpine",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not --repo URL"));
}

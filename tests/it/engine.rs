//! The grid engine against real remotes: submit and claim, every push outcome class, and races of
//! real `git dgrid claim` processes over `file://` and over `git daemon` on 127.0.0.1.

use crate::common::{assert_success, count_pushes, pushes, Env, TaskJson};
use git_dgrid::grid::{plan_claim, push_cas, ClaimRequest, Grid, Outcome, PushOutcome};
use git_dgrid::odb::Identity;
use git_dgrid::repo::LocalRepo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[test]
fn a_thousand_tasks_are_one_commit_and_one_push() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let pushes_log = count_pushes(&grid);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let lines: Vec<String> = (0..1000)
        .map(|i| TaskJson::new(&format!("t{i:04}")).to_string())
        .collect();
    let out = env.submit_lines(&clone, &[], &lines);
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1000);
    assert_eq!(pushes(&pushes_log), 1, "one push");
    assert_eq!(
        env.git(&grid, &["rev-list", "--count", "main"]),
        "2",
        "init + one submit commit"
    );
    assert_eq!(env.ids_in(&grid, "main", "queue").len(), 1000);
    // Sharded: no folder holds more than a few dozen of them.
    let tree = env.git(&grid, &["ls-tree", "main", "tasks/queue/"]);
    assert!(tree.lines().count() > 200, "spread over shards");
    // Resubmitting any id is refused, whole: nothing is pushed.
    let out = env.submit_lines(
        &clone,
        &[],
        &[
            TaskJson::new("new-one").to_string(),
            TaskJson::new("t0042").to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"t0042\" already exists"));
    assert_eq!(pushes(&pushes_log), 1);
    assert!(!env
        .ids_in(&grid, "main", "queue")
        .contains(&"new-one".to_string()));
}

#[test]
fn submit_leaves_the_working_tree_index_and_head_alone() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.git(&clone, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(clone.join("tasks/queue/.gitkeep"), "modified\n").unwrap();
    std::fs::write(clone.join("staged.txt"), "staged\n").unwrap();
    env.git(&clone, &["add", "staged.txt"]);
    std::fs::write(clone.join("untracked.txt"), "untracked\n").unwrap();
    let state = |env: &Env| {
        [
            env.git(
                &clone,
                &[
                    "status",
                    "--porcelain=v2",
                    "--branch",
                    "--untracked-files=all",
                ],
            ),
            env.git(&clone, &["symbolic-ref", "HEAD"]),
            env.git(&clone, &["rev-parse", "HEAD"]),
            env.git(&clone, &["ls-files", "--stage"]),
            env.git(&clone, &["diff"]),
            env.git(&clone, &["diff", "--cached"]),
            env.git(&clone, &["rev-parse", "main"]),
        ]
    };
    let before = state(&env);
    let index_before = std::fs::read(clone.join(".git/index")).unwrap();
    let out = env.dgrid_ok(
        &clone,
        &[
            "submit", "--id", "mine", "--image", "alpine:3", "--", "echo", "hi",
        ],
        0,
    );
    assert_eq!(out.trim(), "mine");
    assert_eq!(
        std::fs::read(clone.join(".git/index")).unwrap(),
        index_before,
        "index bytes changed"
    );
    assert_eq!(state(&env), before);
    assert!(!clone.join("tasks/queue/mine.json").exists());
    // The remote-tracking ref follows the push, the local branch does not.
    assert_eq!(
        env.git(&clone, &["rev-parse", "origin/main"]),
        env.git(&grid, &["rev-parse", "main"])
    );
    let spec = env.git(
        &grid,
        &[
            "show",
            &format!(
                "main:tasks/queue/{}/mine.json",
                shard_of(&env, &grid, "mine")
            ),
        ],
    );
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    assert_eq!(spec["command"], serde_json::json!(["echo", "hi"]));
    assert_eq!(spec["submitted_by"], "tess@example.com");
}

fn shard_of(env: &Env, grid: &Path, id: &str) -> String {
    let listing = env.git(grid, &["ls-tree", "-r", "--name-only", "main", "tasks/"]);
    let line = listing
        .lines()
        .find(|l| l.ends_with(&format!("/{id}.json")))
        .unwrap();
    line.split('/').nth(2).unwrap().to_string()
}

#[test]
fn invalid_submissions_push_nothing() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let pushes_log = count_pushes(&grid);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let out = env.submit_lines(
        &clone,
        &[],
        &[
            TaskJson::new("ok").to_string(),
            TaskJson::new("bad").set("timeout_x", 1).to_string(),
            "x".repeat(300_000),
            "[1]".into(),
            "{not json".into(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "stdin line 2: \"timeout_x\": unknown field; did you mean \"timeout\"?",
        "stdin line 3: is longer than 262144 bytes",
        "stdin line 4: expected a JSON object",
        "stdin line 5: is not valid JSON",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert_eq!(pushes(&pushes_log), 0);
}

#[test]
fn claim_prefers_priority_and_honours_dependencies_and_labels() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let lines = [
        TaskJson::new("a").to_string(),
        TaskJson::new("b").set("priority", 5).to_string(),
        TaskJson::new("c").set("depends_on", ["a"]).to_string(),
        TaskJson::new("d").set("labels", ["gpu"]).to_string(),
    ];
    assert!(env.submit_lines(&clone, &[], &lines).status.success());
    let claim = |extra: &[&str], code: i32| {
        let mut args = vec!["claim", "--node-id", "n1"];
        args.extend_from_slice(extra);
        env.dgrid_ok(&clone, &args, code).trim().to_string()
    };
    assert_eq!(claim(&[], 0), "b");
    assert_eq!(claim(&[], 0), "a");
    assert_eq!(
        claim(&[], 1),
        "",
        "c waits for a to complete, d needs a gpu"
    );
    assert!(claim(&["--label", "gpu", "--json"], 0).contains("\"id\":\"d\""));
    let spec: serde_json::Value = serde_json::from_str(&env.git(
        &grid,
        &[
            "show",
            &format!(
                "main:tasks/in_progress/{}/b.json",
                shard_of(&env, &grid, "b")
            ),
        ],
    ))
    .unwrap();
    assert_eq!(spec["claim"]["node_id"], "n1");
    assert_eq!(spec["claim"]["attempt"], 1);
    let claimed =
        chrono::DateTime::parse_from_rfc3339(spec["claim"]["claimed_at"].as_str().unwrap())
            .unwrap();
    let lease =
        chrono::DateTime::parse_from_rfc3339(spec["claim"]["lease_expires_at"].as_str().unwrap())
            .unwrap();
    assert_eq!((lease - claimed).num_seconds(), 900);
    env.dgrid_ok(&clone, &["validate", "--rev", "HEAD..origin/main"], 0);
}

#[test]
fn a_declining_pre_receive_hook_is_fatal_and_clear() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let hook = grid.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'no tasks on Fridays' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let out = env.dgrid(&clone, &["submit", "--image", "alpine", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("declined the push"), "{stderr}");
    assert!(stderr.contains("pre-receive hook declined"), "{stderr}");
    assert!(stderr.contains("no tasks on Fridays"), "{stderr}");
    assert!(
        stderr.contains(grid.to_str().unwrap()),
        "names the remote: {stderr}"
    );
}

#[test]
fn a_read_only_server_is_access_denied() {
    let env = Env::new();
    let (daemon, _grid) = env.served_grid(false);
    let state = env.path("state");
    let out = env.dgrid(
        env.tmp.path(),
        &[
            "submit",
            "--repo",
            &daemon.url("g.git"),
            "--state-dir",
            state.to_str().unwrap(),
            "--image",
            "alpine",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused access"), "{stderr}");
    assert!(stderr.contains(&daemon.url("g.git")), "{stderr}");
}

#[test]
fn an_unreachable_remote_is_a_clear_error() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("git://127.0.0.1:{port}/g.git");
    let state = env.path("state");
    let out = env.dgrid(
        env.tmp.path(),
        &[
            "claim",
            "--node-id",
            "n1",
            "--repo",
            &url,
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot fetch from origin") && stderr.contains(&url),
        "{stderr}"
    );
}

#[test]
fn a_stale_lease_is_a_lost_race() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let a = env.clone(grid.to_str().unwrap(), "a");
    let b = env.clone(grid.to_str().unwrap(), "b");
    let old = env.git(&a, &["rev-parse", "origin/main"]);
    env.dgrid_ok(&b, &["submit", "--image", "alpine", "--", "true"], 0);
    let repo = git_dgrid::odb::open(&a.join(".git")).unwrap();
    let old = gix::ObjectId::from_hex(old.as_bytes()).unwrap();
    let identity = Identity {
        name: "t".into(),
        email: "t@x".into(),
    };
    let commit = git_dgrid::odb::write_commit(&repo, Some(old), &[], &identity, "x\n").unwrap();
    let outcome = push_cas(&a, "origin", commit, Some(old)).unwrap();
    assert!(
        matches!(&outcome, PushOutcome::LostRace(why) if why.contains("stale info")),
        "{outcome:?}"
    );
    // Also when the tracking ref is fresh but someone pushes in between (server-side check).
    let fresh = env.git(&a, &["ls-remote", "origin", "main"]);
    let fresh =
        gix::ObjectId::from_hex(fresh.split_whitespace().next().unwrap().as_bytes()).unwrap();
    env.git(&a, &["fetch", "--quiet", "origin"]);
    let commit = git_dgrid::odb::write_commit(&repo, Some(fresh), &[], &identity, "y\n").unwrap();
    env.dgrid_ok(&b, &["submit", "--image", "alpine", "--", "true"], 0);
    let outcome = push_cas(&a, "origin", commit, Some(fresh)).unwrap();
    assert!(matches!(outcome, PushOutcome::LostRace(_)), "{outcome:?}");
}

/// A race lost inside the loop is retried, and the intent is re-checked against the new tip.
#[test]
fn lost_races_are_retried_against_the_new_tip() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let a = env.clone(grid.to_str().unwrap(), "a");
    let b = env.clone(grid.to_str().unwrap(), "b");
    env.dgrid_ok(
        &b,
        &["submit", "--id", "only", "--image", "alpine", "--", "true"],
        0,
    );
    env.dgrid_ok(
        &b,
        &[
            "submit", "--id", "second", "--image", "alpine", "--", "true",
        ],
        0,
    );
    let grid_a = Grid::in_clone(&LocalRepo::discover(&a).unwrap(), "origin").unwrap();
    let request = ClaimRequest {
        node_id: "racer".into(),
        max: 2,
        ahead: 0,
        lease: std::time::Duration::from_secs(60),
        labels: vec![],
        allow_network: false,
        admission: Default::default(),
    };
    let mut calls = 0;
    let outcome = grid_a
        .transact(
            &Identity {
                name: "racer".into(),
                email: "r@x".into(),
            },
            |snapshot| {
                calls += 1;
                if calls == 1 {
                    // Someone else claims "only" after our fetch, before our push.
                    env.dgrid_ok(&b, &["claim", "--node-id", "other", "--max", "1"], 0);
                }
                plan_claim(
                    &grid_a.repo,
                    snapshot,
                    &request,
                    &grid_a.limits,
                    chrono::Utc::now(),
                )
            },
        )
        .unwrap();
    let Outcome::Committed { value, stats, .. } = outcome else {
        panic!("nothing claimed")
    };
    assert_eq!(calls, 2);
    assert_eq!(stats.lost_races, 1);
    assert_eq!(stats.pushes, 2);
    assert_eq!(
        value.len(),
        1,
        "the re-check saw that one task was taken meanwhile"
    );
    let in_progress = env.ids_in(&grid, "main", "in_progress");
    assert_eq!(in_progress, vec!["only".to_string(), "second".to_string()]);
}

/// Races `claimers` claim processes (each with its own cache clone) until the queue is empty.
pub(crate) fn race(env: &Env, url: &str, remote_dir: &Path, claimers: usize, tasks: usize) {
    let seed = env.clone(url, "seed");
    let lines: Vec<String> = (0..tasks)
        .map(|i| TaskJson::new(&format!("r{i:03}")).to_string())
        .collect();
    let out = env.submit_lines(&seed, &[], &lines);
    assert_success(&out);

    let results: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..claimers)
            .map(|i| {
                s.spawn(move || {
                    let node = format!("node-{i}");
                    let state = env.path(&format!("state-{i}"));
                    let mut claimed = Vec::new();
                    loop {
                        let out = env.dgrid(
                            env.tmp.path(),
                            &[
                                "claim",
                                "--node-id",
                                &node,
                                "--repo",
                                url,
                                "--state-dir",
                                state.to_str().unwrap(),
                            ],
                        );
                        match out.status.code() {
                            Some(0) => claimed.extend(
                                String::from_utf8(out.stdout)
                                    .unwrap()
                                    .lines()
                                    .map(str::to_string),
                            ),
                            Some(1) => break,
                            _ => panic!(
                                "{node}: claim failed: {}",
                                String::from_utf8_lossy(&out.stderr)
                            ),
                        }
                    }
                    (node, claimed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (node, ids) in &results {
        for id in ids {
            if let Some(first) = owner.insert(id.clone(), node.clone()) {
                panic!("{id} was claimed twice: by {first} and {node}");
            }
        }
    }
    let expected: BTreeSet<String> = (0..tasks).map(|i| format!("r{i:03}")).collect();
    assert_eq!(
        owner.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every task claimed"
    );
    assert!(
        results.iter().filter(|(_, ids)| !ids.is_empty()).count() > 1,
        "claimers really raced"
    );
    // The remote agrees: all in progress, each with the claim of the node that reported it.
    assert!(env.ids_in(remote_dir, "main", "queue").is_empty());
    assert_eq!(env.ids_in(remote_dir, "main", "in_progress").len(), tasks);
    let listing = env.git(
        remote_dir,
        &["ls-tree", "-r", "--name-only", "main", "tasks/in_progress"],
    );
    for path in listing.lines().filter(|p| p.ends_with(".json")) {
        let spec: serde_json::Value =
            serde_json::from_str(&env.git(remote_dir, &["show", &format!("main:{path}")])).unwrap();
        let id = spec["id"].as_str().unwrap();
        assert_eq!(
            spec["claim"]["node_id"].as_str().unwrap(),
            owner[id],
            "{id}"
        );
    }
    env.git(remote_dir, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(
        env.git(remote_dir, &["rev-list", "--merges", "--count", "main"]),
        "0",
        "main is linear"
    );
    assert_eq!(
        env.git(remote_dir, &["rev-list", "--count", "main"]),
        (2 + tasks).to_string(),
        "init + submit + one commit per claim, nothing else"
    );
}

#[test]
fn eight_claimers_race_over_file_remote() {
    let env = Env::new();
    let grid = env.grid("g.git");
    race(&env, &format!("file://{}", grid.display()), &grid, 8, 200);
}

#[test]
fn eight_claimers_race_over_git_daemon() {
    let env = Env::new();
    let (daemon, grid) = env.served_grid(true);
    race(&env, &daemon.url("g.git"), &grid, 8, 200);
}

/// A file that does not validate (pushed past the hook) is never claimed; the rest of the queue is.
#[test]
fn invalid_queued_files_are_skipped_not_claimed() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    std::fs::write(
        clone.join("tasks/queue/broken.json"),
        r#"{"id":"broken","image":"BAD IMAGE"}"#,
    )
    .unwrap();
    env.git(&clone, &["add", "tasks/queue/broken.json"]);
    env.git(&clone, &["commit", "--quiet", "-m", "a broken task"]);
    env.git(
        &clone,
        &["push", "--quiet", "--no-verify", "origin", "main"],
    );
    env.dgrid_ok(
        &clone,
        &["submit", "--id", "fine", "--image", "alpine", "--", "true"],
        0,
    );
    let out = env.dgrid(&clone, &["claim", "--node-id", "n1", "--max", "5"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "fine");
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping tasks/queue/broken.json"));
    assert_eq!(
        env.dgrid(&clone, &["claim", "--node-id", "n1"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        env.ids_in(&grid, "main", "queue"),
        vec!["broken".to_string()]
    );
}

/// The remote takes a submission but hangs before answering; git is stopped by DGRID_GIT_TIMEOUT.
/// The next read finds the commit in main's history: submit reports success, not "id taken".
#[test]
fn a_submission_whose_answer_was_lost_is_reported_as_done() {
    let env = Env::new();
    let grid = env.grid("g.git");
    std::fs::write(
        grid.join("hooks/post-receive"),
        "#!/bin/sh\ncat >/dev/null\nmkdir \"$(pwd -P)/hung-once\" 2>/dev/null && sleep 60\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(
        grid.join("hooks/post-receive"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .env("DGRID_GIT_TIMEOUT", "2")
        .args([
            "submit", "--id", "lost-ack", "--image", "alpine:3", "--", "true",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "lost-ack");
    assert!(grid.join("hung-once").exists(), "the remote hung");
    assert_eq!(env.ids_in(&grid, "main", "queue"), vec!["lost-ack"]);
    assert_eq!(env.git(&grid, &["rev-list", "--count", "main"]), "2");
}

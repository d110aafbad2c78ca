//! `status`, `status --json`, `show` and `validate` on a grid that runs replicated tasks:
//! node reputation, a replicated task in progress shown by its instances, results
//! with a `quorum` object, a `no_quorum` failure.

use crate::common::{assert_success, Env, TaskJson};
use git_dgrid::layout::{node_path, task_path, State};
use git_dgrid::quorum::{commitment, digest, sha256_hex};
use serde_json::{json, Value};
use std::path::PathBuf;

const NOW: &str = "2026-01-01T12:00:00Z";

fn pinned() -> String {
    format!("alpine@sha256:{}", "a".repeat(64))
}

fn node(id: &str, reputation: Option<Value>) -> String {
    let mut record = json!({
        "id": id, "hostname": "host", "version": "0.1.0", "labels": [], "slots": 1, "cpus": 1.0,
        "memory": 1, "docker_version": "20.10", "started_at": "2026-01-01T08:00:00Z",
        "last_heartbeat": "2026-01-01T11:59:50Z", "state": "running", "heartbeat_interval": 300,
        "running": [], "completed": 0, "failed": 0,
    });
    if let Some(r) = reputation {
        record["reputation"] = r;
    }
    record.to_string()
}

fn entry(instance: u32, node: &str, stage: &str) -> Value {
    let salt = sha256_hex(node.as_bytes());
    let d = digest(Some(0), &sha256_hex(b"out"));
    let mut e = json!({
        "instance": instance, "round": 1, "node_id": node,
        "claimed_at": "2026-01-01T11:50:00Z", "lease_expires_at": "2026-01-01T12:05:00Z",
        "attempt": 1,
    });
    if stage != "running" {
        e["commitment"] = commitment(node, &salt, &d).into();
        e["sealed"] = true.into();
    }
    if stage == "revealed" {
        e["digest"] = d.into();
        e["salt"] = salt.into();
        e["exit_code"] = 0.into();
        e["status"] = "success".into();
    }
    if stage == "dropped" {
        e = json!({
            "instance": instance, "round": 1, "node_id": node,
            "claimed_at": "2026-01-01T11:00:00Z", "lease_expires_at": "2026-01-01T11:05:00Z",
            "attempt": 1, "dropped": format!("node {node} stopped heartbeating"),
        });
    }
    e
}

fn result(id: &str, status: &str, finished: &str, quorum: Value) -> String {
    let exit = if status == "no_quorum" {
        Value::Null
    } else {
        0.into()
    };
    json!({
        "task_id": id, "node_id": "n1", "exit_code": exit, "stdout": "out", "stderr": "",
        "timestamp": finished, "status": status, "finished_at": finished, "duration_ms": 1500,
        "attempt": 1,
        "task": TaskJson::file(id).image(&pinned()).set("replicas", 3).value(),
        "quorum": quorum,
    })
    .to_string()
}

fn vote(node: &str, instance: u32, d: &str) -> Value {
    json!({"node_id": node, "instance": instance, "attempt": 1, "digest": d})
}

fn replicated_grid(env: &Env) -> PathBuf {
    let author = env.path("author");
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--initial-branch=main",
            author.to_str().unwrap(),
        ],
    );
    let good = "1".repeat(64);
    let bad = "2".repeat(64);
    let running = TaskJson::file("rep-run")
        .image(&pinned())
        .command("echo out")
        .set("replicas", 3)
        .set(
            "instances",
            json!([
                entry(1, "n1", "revealed"),
                entry(2, "gone", "dropped"),
                entry(2, "liar", "sealed"),
                entry(3, "n3", "running"),
            ]),
        );
    let files = [
        (
            node_path("n1"),
            node(
                "n1",
                Some(json!({"valid": 12, "invalid": 0, "consecutive_valid": 12})),
            ),
        ),
        (
            node_path("liar"),
            node(
                "liar",
                Some(json!({"valid": 1, "invalid": 3, "consecutive_valid": 0})),
            ),
        ),
        (node_path("n3"), node("n3", None)),
        (task_path(State::InProgress, "rep-run"), running.to_string()),
        (
            task_path(State::Completed, "rep-ok"),
            result(
                "rep-ok",
                "success",
                "2026-01-01T11:40:00Z",
                json!({"replicas": 3, "digest": good, "agreeing": ["n1", "n3"], "dissenting": ["liar"],
                    "votes": [vote("n1", 1, &good), vote("liar", 2, &bad), vote("n3", 3, &good)]}),
            ),
        ),
        (
            task_path(State::Failed, "rep-none"),
            result(
                "rep-none",
                "no_quorum",
                "2026-01-01T11:45:00Z",
                json!({"replicas": 3, "agreeing": [], "dissenting": [],
                    "votes": [vote("n1", 1, &good), vote("liar", 2, &bad), vote("n3", 3, &"3".repeat(64))]}),
            ),
        ),
    ];
    for (path, content) in &files {
        let full = author.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        env.git(&author, &["add", path]);
    }
    let date = "2026-01-01T11:50:00Z";
    let out = env
        .cmd("git", &author)
        .args(["commit", "--quiet", "-m", "dgrid: replicated"])
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert_success(&out);
    author
}

fn viewer(env: &Env) -> PathBuf {
    let author = replicated_grid(env);
    let remote = env.path("g.git");
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            remote.to_str().unwrap(),
        ],
    );
    env.git(
        &author,
        &["push", "--quiet", remote.to_str().unwrap(), "main"],
    );
    env.clone(remote.to_str().unwrap(), "viewer")
}

#[test]
fn status_shows_reputation_instances_and_quorums() {
    let env = Env::new();
    let viewer = viewer(&env);
    // The replicated files are valid as they are (a running replicated task has no claim).
    env.dgrid_ok(&viewer, &["validate"], 0);

    let out = env.dgrid_ok(&viewer, &["status", "--json", "--now", NOW], 0);
    let status: Value = serde_json::from_str(&out).unwrap();
    let reps: Vec<(&str, &Value)> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), &n["reputation"]))
        .collect();
    assert_eq!(
        reps,
        [
            (
                "liar",
                &json!({"valid": 1, "invalid": 3, "consecutive_valid": 0})
            ),
            (
                "n1",
                &json!({"valid": 12, "invalid": 0, "consecutive_valid": 12})
            ),
            ("n3", &Value::Null),
        ]
    );
    let running = &status["in_progress"][0];
    assert_eq!(running["id"], "rep-run");
    assert_eq!(
        running["node_id"], "n1 liar n3",
        "the live instances' nodes"
    );
    assert_eq!(
        running["instances"],
        json!([
            {"instance": 1, "node_id": "n1", "attempt": 1, "state": "revealed"},
            {"instance": 2, "node_id": "liar", "attempt": 1, "state": "sealed"},
            {"instance": 3, "node_id": "n3", "attempt": 1, "state": "running"},
        ])
    );
    let recent = status["recent"].as_array().unwrap();
    let quorum_of = |id: &str| {
        recent
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["quorum"].clone())
            .unwrap()
    };
    assert_eq!(quorum_of("rep-ok")["dissenting"], json!(["liar"]));
    assert_eq!(quorum_of("rep-ok")["votes"], 3);
    assert_eq!(quorum_of("rep-none")["digest"], Value::Null);

    let table = env.dgrid_ok(
        &viewer,
        &["status", "--ref", "origin/main", "--now", NOW],
        0,
    );
    insta::assert_snapshot!("replicated_grid_table", table);
    for expected in [
        "REP",
        "12/0",
        "1/3",
        "n1:revealed liar:sealed n3:running",
        "QUORUM",
        "2/3 agree, against: liar",
        "no quorum (3 votes)",
    ] {
        assert!(table.contains(expected), "{expected:?} in\n{table}");
    }
}

#[test]
fn show_prints_the_quorum_and_the_instances() {
    let env = Env::new();
    let viewer = viewer(&env);
    let out = env.dgrid_ok(&viewer, &["show", "rep-ok"], 0);
    assert!(
        out.contains(
            "quorum 2 of 3 votes agree on 111111111111 (3 replicas): n1 n3; dissenting: liar"
        ),
        "{out}"
    );
    let out = env.dgrid_ok(&viewer, &["show", "rep-none"], 0);
    assert!(
        out.contains("quorum none: no digest won (3 votes, 3 replicas asked)"),
        "{out}"
    );
    let out = env.dgrid_ok(&viewer, &["show", "rep-run"], 0);
    for line in [
        "#1 round 1 n1 attempt 1: revealed ",
        "#2 round 1 gone attempt 1: dropped: node gone stopped heartbeating",
        "#2 round 1 liar attempt 1: sealed, to reveal",
        "#3 round 1 n3 attempt 1: running",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    let json: Value =
        serde_json::from_str(&env.dgrid_ok(&viewer, &["show", "rep-ok", "--json"], 0)).unwrap();
    assert_eq!(json["result"]["quorum"]["agreeing"], json!(["n1", "n3"]));
}

#[test]
fn the_dashboard_styles_no_quorum_as_bad() {
    let env = Env::new();
    let viewer = viewer(&env);
    let site = env.path("site");
    env.dgrid_ok(
        &viewer,
        &["status", "--html", site.to_str().unwrap(), "--now", NOW],
        0,
    );
    let page = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(
        page.contains(r#"<span class="pill no_quorum">no_quorum</span>"#),
        "a no_quorum pill"
    );
    let style = page.split("</style>").next().unwrap();
    assert!(
        style.contains(".no_quorum{") || style.contains(",.no_quorum"),
        "styled: {style}"
    );
    for text in [
        "12/0",
        "n1:revealed liar:sealed n3:running",
        "2/3 agree, against: liar",
        "<th>reputation</th>",
        "<th>quorum</th>",
    ] {
        assert!(page.contains(text), "{text:?} in the page");
    }
}

/// The pre-push hook and `submit` warn about a replicated task whose image is a tag, and let it
/// through; a pinned one gets no warning.
#[test]
fn the_hook_and_submit_warn_about_an_unpinned_replicated_image() {
    let env = Env::new();
    let grid = env.grid("w.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    let rel = "tasks/queue/rep-tag.json";
    std::fs::create_dir_all(clone.join("tasks/queue")).unwrap();
    std::fs::write(
        clone.join(rel),
        TaskJson::file("rep-tag").set("replicas", 3).to_string(),
    )
    .unwrap();
    env.git(&clone, &["add", rel]);
    env.git(
        &clone,
        &["commit", "--quiet", "-m", "add a replicated task"],
    );
    let out = env
        .cmd("git", &clone)
        .args(["push", "origin", "main"])
        .output()
        .unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "git-dgrid: warning: tasks/queue/rep-tag.json: \"image\": a replicated task should pin its image by digest"
        ),
        "{stderr}"
    );

    let task = |image: &str| {
        json!({"id": "rep-sub", "image": image, "command": "true", "timeout": 5, "replicas": 3})
            .to_string()
    };
    let file = env.path("rep-sub.json");
    std::fs::write(&file, task("alpine:3")).unwrap();
    let out = env.dgrid(&clone, &["submit", "--no-push", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("\"image\": a replicated task should pin"),
        "{stderr}"
    );
    std::fs::write(&file, task(&pinned()).replace("rep-sub", "rep-pin")).unwrap();
    let out = env.dgrid(&clone, &["submit", "--no-push", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}

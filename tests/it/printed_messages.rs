//! What commands say in small cases: a token in a remote's URL never reaches a message or a log;
//! `retry`, `validate` and `status --json` word their answers exactly; a bad `--timeout` gets the
//! contract's words; `work` outside a repository says how to name the grid.

use crate::common::{all_output, push_around_hook, Env};

/// A clone whose remote URL carries a token (nothing listens on port 1): `secret` is in
/// no output of work, submit, status or env, nor in the worker's log.
#[test]
fn a_token_in_the_remote_url_is_never_printed() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let url = "https://user:secret@127.0.0.1:1/x.git";
    env.git(&clone, &["remote", "set-url", "origin", url]);
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "submit",
            vec!["submit", "--id", "t1", "--image", "busybox", "--", "true"],
        ),
        ("status", vec!["status"]),
        ("status --json", vec!["status", "--json"]),
        ("env", vec!["env"]),
        ("work", vec!["work", "--once", "--node-id", "w1"]),
    ];
    for (what, args) in runs {
        let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone);
        cmd.args(&args).env("DGRID_GIT_TIMEOUT", "5");
        if what == "env" {
            // Only here: in `--repo` mode the others would not read the clone's URL.
            cmd.env("DGRID_REPO_URL", url);
        }
        let out = cmd.output().unwrap();
        let text = all_output(&out);
        assert!(
            !text.contains("secret"),
            "{what} printed the token:\n{text}"
        );
    }
    // The same through --repo (a cache clone), with the worker's JSON log.
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--once", "--node-id", "w2", "--log-format", "json"])
        .args(["--repo", url, "--state-dir"])
        .arg(env.path("state"))
        .env("DGRID_GIT_TIMEOUT", "5")
        .output()
        .unwrap();
    let text = all_output(&out);
    assert!(
        !text.contains("secret"),
        "work --repo printed the token:\n{text}"
    );
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not one JSON object under --log-format json: {line}"
        );
    }
}

/// `retry` says "queued"; `validate` names absolute paths with one slash and does not
/// count `.gitkeep`; `status --json` gives every node its `problem`, `null` when none.
#[test]
fn small_output_defects() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(
        &clone,
        &[
            "submit", "--id", "hello-1", "--image", "busybox", "--", "true",
        ],
        0,
    );
    let out = env.dgrid(&clone, &["retry", "hello-1"]);
    let text = all_output(&out);
    assert!(text.contains("hello-1 is queued"), "{text}");

    let outside = env.path("loose");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("bad.json"), "{").unwrap();
    let out = env.dgrid(&clone, &["validate", outside.to_str().unwrap()]);
    let text = all_output(&out);
    assert!(
        text.contains(&format!("{}/bad.json", outside.display())),
        "{text}"
    );
    assert!(!text.contains("//"), "{text}");
    let out = env.dgrid(&clone, &["validate"]);
    let text = all_output(&out);
    assert!(
        text.contains("0 file(s) checked"),
        "only .gitkeep files: {text}"
    );

    // A node record, as a worker writes it, without a problem.
    let node = serde_json::json!({
        "id": "n1", "hostname": "h", "version": "0.1.0", "labels": [], "slots": 1,
        "started_at": "2026-01-01T00:00:00Z", "last_heartbeat": "2026-01-01T00:00:00Z",
        "state": "stopped",
    });
    push_around_hook(
        &env,
        &clone,
        [("nodes/n1.json".to_string(), node.to_string())],
    );
    let out = env.dgrid(&clone, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = status["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty(), "{status}");
    assert!(
        nodes
            .iter()
            .all(|n| n.get("problem") == Some(&serde_json::Value::Null)),
        "{status}"
    );
}

/// `--timeout abc` is refused in the contract's words, not clap's.
#[test]
fn a_bad_timeout_flag_gets_the_contract_wording() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let args = [
        "submit",
        "--image",
        "busybox",
        "--timeout",
        "abc",
        "--",
        "true",
    ];
    let out = env.dgrid(&clone, &args);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(r#""timeout": expected an integer from 1 to 86400, got "abc""#),
        "{text}"
    );
}

/// `work` outside a repository says how to name the grid.
#[test]
fn work_outside_a_repository_suggests_repo() {
    let env = Env::new();
    let out = env.dgrid(env.tmp.path(), &["work", "--once"]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--repo URL"), "{text}");
}

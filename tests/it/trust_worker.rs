//! Signed tasks on a real worker with real Docker: with `--allowed-signers`, a task signed by a
//! listed key runs (as nobody) and its result names the signer; unsigned tasks, tasks signed by
//! a key not listed, tasks edited with plain git after signing and tasks from an image outside
//! `--allow-image` all stay queued, each named once in the log with its reason, and
//! `--until-empty` still ends.

use crate::common::{docker_ready, find_task, Env, TaskJson};
use crate::trust_kit::*;
use crate::worker_kit::*;
use git_dgrid::layout::node_path;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn only_tasks_signed_by_allowed_keys_run_and_the_rest_stay_queued_named_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (alice, mallory) = (keygen(&env, "alice"), keygen(&env, "mallory"));
    let signers = allowed_signers(&env, "allowed_signers", &[("alice@example.com", &alice)]);
    let p = unique("trust");
    let id = |name: &str| format!("{p}-{name}");

    submit_signed(
        &env,
        &clone,
        &alice.private,
        &[
            spec(&id("alice"), "id -u", 60),
            spec(&id("edited"), "echo as signed", 60),
            TaskJson::new(&id("image"))
                .image("other/image:1")
                .command("true")
                .to_string(),
        ],
    );
    submit(&env, &clone, &[spec(&id("unsigned"), "true", 60)]);
    submit_signed(
        &env,
        &clone,
        &mallory.private,
        &[spec(&id("mallory"), "true", 60)],
    );
    edit_command_with_git(&env, &clone, &id("edited"), "echo not what alice signed");

    let out = worker(
        &env,
        &grid,
        "trust-node",
        &[
            "--until-empty",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--allow-image",
            "dgrid/busybox:*",
        ],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "untrusted tasks do not keep --until-empty alive: {log}"
    );

    let (state, result) = find_task(&env, &grid, &id("alice")).unwrap();
    assert_eq!(state, "completed", "{log}");
    let uid: u32 = result["stdout"].as_str().unwrap().trim().parse().unwrap();
    assert_ne!(uid, 0, "tasks never run as root: {result}");
    let keygen_l = env
        .cmd("ssh-keygen", env.tmp.path())
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&alice.public)
        .output()
        .unwrap();
    let expected_fp = String::from_utf8_lossy(&keygen_l.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        result["signed_by"],
        serde_json::json!({"principal": "alice@example.com", "fingerprint": expected_fp}),
        "{result}"
    );
    assert!(
        result["task"]["signature"].is_string(),
        "the signature survives into the result: {result}"
    );

    for (name, reason, why) in [
        ("unsigned", "untrusted", "unsigned"),
        ("mallory", "untrusted", "unknown signer"),
        ("edited", "untrusted", "tampered"),
        ("image", "image", "matches no --allow-image pattern"),
    ] {
        let (state, task) = find_task(&env, &grid, &id(name)).unwrap();
        assert_eq!(state, "queue", "{name} stays queued, never failed: {task}");
        assert!(task.get("claim").is_none_or(|c| c.is_null()), "{task}");
        let file = format!("/{}.json in the queue", id(name));
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&file)).collect();
        assert_eq!(
            lines.len(),
            1,
            "{name} named once, not once per poll: {log}"
        );
        assert!(
            lines[0].contains(&format!("({reason})")) && lines[0].contains(why),
            "{name}: {}",
            lines[0]
        );
    }
    let node = env.git(
        &grid,
        &["show", &format!("main:{}", node_path("trust-node"))],
    );
    let node: serde_json::Value = serde_json::from_str(&node).unwrap();
    assert_eq!(
        node["skipped"],
        serde_json::json!({"image": 1, "untrusted": 3}),
        "{node}"
    );
}

#[test]
fn an_allowed_signers_file_that_does_not_read_stops_the_worker_naming_the_line() {
    let env = Env::new();
    let (grid, _clone, _) = setup(&env);
    let bad = env.path("bad_signers");
    std::fs::write(&bad, "# ok\nalice ssh-ed25519 not-a-key\n").unwrap();
    let out = run_worker(
        &env,
        &grid,
        "bad-node",
        &["--once", "--allowed-signers", bad.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad_signers:2: the ssh-ed25519 key does not read"),
        "{err}"
    );
    let out = run_worker(&env, &grid, "bad-node", &["--once", "--trust-grid-signers"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dgrid.trustRoot"), "{err}");
}

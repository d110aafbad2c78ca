//! Task secrets against hostile edits: a signed task whose ciphertext is swapped with plain git
//! is `tampered` (the ciphertext is a signed field) and never runs; a ciphertext for a key no
//! worker holds leaves the task queued with the reason said once, not a loop; `validate` refuses
//! a `secrets` value that is not age ciphertext and warns on `env` values that look like tokens.

use crate::common::{assert_success, docker_ready, find_task, Env};
use crate::secrets_kit::{age_identity, ciphertext_to, publish_recipients};
use crate::trust_kit::{allowed_signers, edit_queued_with_git, keygen};
use crate::worker_kit::*;
use std::path::Path;

/// Sets queued task `id`'s secret TOKEN with plain git in `clone` and pushes.
fn set_secret_with_git(env: &Env, clone: &Path, id: &str, armored: &str) {
    edit_queued_with_git(env, clone, id, |task| {
        task["secrets"]["TOKEN"] = armored.into()
    });
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_swapped_ciphertext_is_tampered_and_one_for_no_worker_waits_said_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let alice = keygen(&env, "alice");
    let signers = allowed_signers(&env, "allowed_signers", &[("alice@example.com", &alice)]);
    let (key, public) = age_identity(&env, "worker.age");
    publish_recipients(&env, &clone, &[format!("w1 {public}")]);
    let token = env.path("token");
    std::fs::write(&token, "the submitter's token").unwrap();
    let p = unique("hostile");
    let (swapped, stranger, honest) = (
        format!("{p}-swapped"),
        format!("{p}-stranger"),
        format!("{p}-honest"),
    );
    let secret = format!("TOKEN=@{}", token.display());
    let out = env.submit_lines(
        &clone,
        &[
            "--sign",
            "--signing-key",
            alice.private.to_str().unwrap(),
            "--secret",
            &secret,
        ],
        &[
            spec(&swapped, "cat /dgrid/secrets/TOKEN", 60),
            spec(&stranger, "cat /dgrid/secrets/TOKEN", 60),
            spec(&honest, "wc -c < /dgrid/secrets/TOKEN", 60),
        ],
    );
    assert_success(&out);
    // A pusher swaps in a value of their own, to the worker's key: a valid ciphertext, not the
    // signed one.
    set_secret_with_git(
        &env,
        &clone,
        &swapped,
        &ciphertext_to(&public, b"attacker's"),
    );
    // One to a key no worker holds (a submitter who used an old recipients file).
    let (_, nobody) = age_identity(&env, "nobody.age");
    set_secret_with_git(&env, &clone, &stranger, &ciphertext_to(&nobody, b"lost"));

    let out = run_worker(
        &env,
        &grid,
        "careful",
        &[
            "--until-empty",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--identity",
            key.to_str().unwrap(),
        ],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        find_task(&env, &grid, &honest).unwrap().0,
        "completed",
        "{log}"
    );
    for (id, why) in [(&swapped, "tampered"), (&stranger, "tampered")] {
        assert_eq!(find_task(&env, &grid, id).unwrap().0, "queue", "{log}");
        let said: Vec<&str> = log.lines().filter(|l| l.contains(id.as_str())).collect();
        assert_eq!(said.len(), 1, "said once: {log}");
        assert!(said[0].contains(why), "{}", said[0]);
    }

    // Unsigned, the one for no worker's key waits for a node that can decrypt it, said once.
    let lost = format!("{p}-lost");
    let bare = serde_json::json!({
        "id": lost, "image": IMAGE, "command": "true", "timeout": 60,
        "secrets": {"TOKEN": ciphertext_to(&nobody, b"lost")},
    });
    assert_success(&env.submit_lines(&clone, &[], &[bare.to_string()]));
    let out = run_worker(
        &env,
        &grid,
        "keyed",
        &["--until-empty", "--identity", key.to_str().unwrap()],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "not a loop: it ends: {log}");
    assert_eq!(find_task(&env, &grid, &lost).unwrap().0, "queue");
    let said: Vec<&str> = log.lines().filter(|l| l.contains(&lost)).collect();
    assert_eq!(said.len(), 1, "{log}");
    assert!(
        said[0].contains("not encrypted to any key of this node's --identity"),
        "{}",
        said[0]
    );
}

#[test]
fn validate_refuses_plain_secrets_and_warns_on_tokens_in_env() {
    let env = Env::new();
    let path = env.path("leaky.json");
    std::fs::write(
        &path,
        r#"{"id":"leaky","image":"alpine:3","command":"true","created_at":"2026-12-03T00:00:00Z","timeout":1,"submitted_by":"x","secrets":{"TOKEN":"hunter2-plain"}}"#,
    )
    .unwrap();
    let out = env.dgrid(env.tmp.path(), &["validate", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("leaky.json")
            && stdout.contains("secrets.TOKEN")
            && stdout.contains("age ciphertext"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2-plain"),
        "the value is not repeated: {stdout}"
    );

    let path = env.path("token-in-env.json");
    std::fs::write(
        &path,
        r#"{"id":"token-in-env","image":"alpine:3","command":"true","created_at":"2026-12-03T00:00:00Z","timeout":1,"submitted_by":"x","env":{"GH":"ghp_0123456789abcdefghijABCDEFGHIJ012345"}}"#,
    )
    .unwrap();
    let out = env.dgrid(env.tmp.path(), &["validate", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "a warning: {stderr}");
    assert!(
        stderr.contains("\"env.GH\": looks like a GitHub token") && stderr.contains("--secret GH"),
        "{stderr}"
    );
}

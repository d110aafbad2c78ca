//! `git dgrid secrets rotate`: after a worker's key is removed from `.dgrid/recipients` (and
//! another added), the maintainer's key re-encrypts the queued tasks' secrets: the removed key no
//! longer opens them (its worker leaves the task queued), the added one runs it. A signed task is
//! not rotated without `--sign` (its ciphertext is signed), and says so.

use crate::common::{assert_success, docker_ready, find_task, Env};
use crate::secrets_kit::{age_identity, publish_recipients};
use crate::trust_kit::keygen;
use crate::worker_kit::*;

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_removed_key_no_longer_opens_rotated_secrets_and_an_added_one_does() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (maintainer, maintainer_pub) = age_identity(&env, "maintainer.age");
    let (old, old_pub) = age_identity(&env, "old.age");
    let (new, new_pub) = age_identity(&env, "new.age");
    publish_recipients(
        &env,
        &clone,
        &[format!("maint {maintainer_pub}"), format!("old {old_pub}")],
    );
    let token = env.path("token");
    std::fs::write(&token, "rotate-me-please").unwrap();
    let secret = format!("TOKEN=@{}", token.display());
    let p = unique("rotate");
    let (plain, signed) = (format!("{p}-plain"), format!("{p}-signed"));
    let out = env.submit_lines(
        &clone,
        &["--secret", &secret],
        &[spec(&plain, "cat /dgrid/secrets/TOKEN | wc -c", 60)],
    );
    assert_success(&out);
    let alice = keygen(&env, "alice");
    let key = alice.private.to_str().unwrap();
    let out = env.submit_lines(
        &clone,
        &["--secret", &secret, "--sign", "--signing-key", key],
        &[spec(&signed, "true", 60)],
    );
    assert_success(&out);

    // The old worker's key goes, a new one comes; the queued tasks still hold the old ciphertext.
    publish_recipients(
        &env,
        &clone,
        &[format!("maint {maintainer_pub}"), format!("new {new_pub}")],
    );
    let out = env.dgrid(
        &clone,
        &[
            "secrets",
            "rotate",
            "--identity",
            maintainer.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the signed one is not rotated: {stderr}"
    );
    assert_eq!(stdout.trim(), plain, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "left as it is: {signed}: it is signed: rotate with --sign"
        )),
        "{stderr}"
    );

    let out = run_worker(
        &env,
        &grid,
        "old-node",
        &["--until-empty", "--identity", old.to_str().unwrap()],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(find_task(&env, &grid, &plain).unwrap().0, "queue", "{log}");

    let out = run_worker(
        &env,
        &grid,
        "new-node",
        &["--until-empty", "--identity", new.to_str().unwrap()],
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let (state, result) = find_task(&env, &grid, &plain).unwrap();
    assert_eq!(state, "completed", "{log}");
    assert_eq!(result["stdout"].as_str().unwrap().trim(), "16");
    // Not rotated, the signed task kept the old ciphertext: the removed key still opened it.
    let (state, result) = find_task(&env, &grid, &signed).unwrap();
    assert_eq!(
        (state.as_str(), &result["node_id"]),
        ("completed", &"old-node".into())
    );
}

//! The grid's published signers (`.dgrid/allowed_signers`) on a real worker with
//! `--trust-grid-signers`: trusted from the pinned root commit on, each change to the file only
//! when its commit is signed by a key of the file's previous version. A collaborator who can
//! push but adds their own key without such a signature is ignored; alice signing the change
//! that adds mallory makes mallory a signer.

use crate::common::{docker_ready, find_task, Env};
use crate::trust_kit::*;
use crate::worker_kit::*;
use std::path::Path;

/// Writes `.dgrid/allowed_signers` in `clone` with `signers`, commits (signed by `sign_with`
/// through git's own SSH signing, or unsigned) and pushes. Returns the commit.
fn publish_signers(
    env: &Env,
    clone: &Path,
    signers: &[(&str, &Key)],
    sign_with: Option<&Key>,
) -> String {
    env.git(clone, &["pull", "--quiet", "--ff-only"]);
    std::fs::create_dir_all(clone.join(".dgrid")).unwrap();
    let text: String = signers
        .iter()
        .map(|(who, key)| format!("{who} namespaces=\"dgrid-task,git\" {}\n", key.line))
        .collect();
    std::fs::write(clone.join(".dgrid/allowed_signers"), text).unwrap();
    env.git(clone, &["add", ".dgrid/allowed_signers"]);
    let mut args = vec!["-c", "gpg.format=ssh"];
    let key_config;
    if let Some(key) = sign_with {
        key_config = format!("user.signingKey={}", key.private.display());
        args.extend(["-c", &key_config, "commit", "-S"]);
    } else {
        args.push("commit");
    }
    args.extend(["--quiet", "-m", "the grid's signers"]);
    env.git(clone, &args);
    env.git(clone, &["push", "--quiet", "origin", "HEAD:main"]);
    env.git(clone, &["rev-parse", "HEAD"])
}

/// alice is listed at the root; a later commit adds mallory, signed by `adder`. Returns the
/// worker's log and the states of alice's and mallory's tasks.
fn mallory_added_by(adder: Option<&str>) -> (String, String, String) {
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (alice, mallory) = (keygen(&env, "alice"), keygen(&env, "mallory"));
    let root = publish_signers(&env, &clone, &[("alice", &alice)], None);
    let adder = adder.map(|who| if who == "alice" { &alice } else { &mallory });
    publish_signers(
        &env,
        &clone,
        &[("alice", &alice), ("mallory", &mallory)],
        adder,
    );
    let p = unique("grid-signers");
    let (a, m) = (format!("{p}-alice"), format!("{p}-mallory"));
    submit_signed(&env, &clone, &alice.private, &[spec(&a, "true", 60)]);
    submit_signed(&env, &clone, &mallory.private, &[spec(&m, "true", 60)]);
    let out = worker(
        &env,
        &grid,
        "grid-signers-node",
        &[
            "--until-empty",
            "--trust-grid-signers",
            "--trust-root",
            &root,
        ],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let state = |id: &str| find_task(&env, &grid, id).unwrap().0;
    (log.clone(), state(&a), state(&m))
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_signer_added_without_a_signature_by_a_listed_key_is_ignored() {
    if !docker_ready() {
        return;
    }
    for adder in [None, Some("mallory")] {
        let (log, alice, mallory) = mallory_added_by(adder);
        assert_eq!(alice, "completed", "the root's signers are trusted: {log}");
        assert_eq!(mallory, "queue", "added by {adder:?}: {log}");
        let ignored: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("ignoring the change to .dgrid/allowed_signers"))
            .collect();
        assert_eq!(ignored.len(), 1, "said once: {log}");
        let why = if adder.is_none() {
            "the commit is not signed"
        } else {
            "unknown signer"
        };
        assert!(ignored[0].contains(why), "{}", ignored[0]);
        assert!(
            log.lines()
                .any(|l| l.contains("-mallory.json in the queue (untrusted)")),
            "{log}"
        );
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_signer_added_in_a_commit_signed_by_a_listed_key_is_honoured() {
    if !docker_ready() {
        return;
    }
    let (log, alice, mallory) = mallory_added_by(Some("alice"));
    assert_eq!(
        (alice.as_str(), mallory.as_str()),
        ("completed", "completed"),
        "{log}"
    );
    assert!(!log.contains("ignoring the change"), "{log}");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_trust_root_outside_main_s_history_trusts_nothing_from_the_grid() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let alice = keygen(&env, "alice");
    publish_signers(&env, &clone, &[("alice", &alice)], None);
    let id = format!("{}-alice", unique("rootless"));
    submit_signed(&env, &clone, &alice.private, &[spec(&id, "true", 60)]);
    // A commit main never had (as after `git dgrid compact` made a new root).
    let elsewhere = "0123456789abcdef0123456789abcdef01234567";
    let out = worker(
        &env,
        &grid,
        "rootless-node",
        &[
            "--until-empty",
            "--trust-grid-signers",
            "--trust-root",
            elsewhere,
        ],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(find_task(&env, &grid, &id).unwrap().0, "queue", "{log}");
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("not trusting .dgrid/allowed_signers"))
        .collect();
    assert_eq!(said.len(), 1, "said once: {log}");
    assert!(said[0].contains(elsewhere), "{}", said[0]);
}

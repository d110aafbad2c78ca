//! The grid's published signers (`.dgrid/allowed_signers`) on a real worker with
//! `--trust-grid-signers`: trusted from the pinned root commit on, each change to the file only
//! when its commit is signed by a key of the file's previous version. A collaborator who can
//! push but adds their own key without such a signature ends trust (no grid signers, never the
//! older set); alice signing the change that adds mallory makes mallory a signer. A merge whose
//! first parent goes around a signed revocation, and a history rewound to before one this
//! worker accepted, fail closed too.

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
    let text: String = signers
        .iter()
        .map(|(who, key)| format!("{who} namespaces=\"dgrid-task,git\" {}\n", key.line))
        .collect();
    commit_dgrid_files(env, clone, &[("allowed_signers", text)], sign_with)
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
    let log = grid_worker(&env, &grid, "grid-signers-node", &root);
    let state = |id: &str| find_task(&env, &grid, id).unwrap().0;
    (log.clone(), state(&a), state(&m))
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_signer_added_without_a_signature_by_a_listed_key_ends_trust() {
    if !docker_ready() {
        return;
    }
    for adder in [None, Some("mallory")] {
        let (log, alice, mallory) = mallory_added_by(adder);
        // Never the older set: one unsigned edit must not freeze the signers.
        assert_eq!(alice, "queue", "a broken chain trusts nobody: {log}");
        assert_eq!(mallory, "queue", "added by {adder:?}: {log}");
        let said: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("not trusting .dgrid/allowed_signers: commit"))
            .collect();
        assert_eq!(said.len(), 1, "said once: {log}");
        let why = if adder.is_none() {
            "the commit is not signed"
        } else {
            "unknown signer"
        };
        assert!(said[0].contains(why), "{}", said[0]);
        assert!(said[0].contains("no grid signers until"), "{}", said[0]);
        assert!(
            log.lines()
                .any(|l| l.contains("-mallory.json in the queue (untrusted)")),
            "{log}"
        );
    }
}

/// Runs a worker trusting the grid's signers from `root` until the queue is empty; its log.
fn grid_worker(env: &Env, grid: &Path, node: &str, root: &str) -> String {
    let out = worker(
        env,
        grid,
        node,
        &[
            "--until-empty",
            "--trust-grid-signers",
            "--trust-root",
            root,
        ],
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    log
}

/// Submits one task signed by alice and one by bob; their ids.
fn alice_and_bob_tasks(env: &Env, clone: &Path, alice: &Key, bob: &Key) -> (String, String) {
    let p = unique("revoked");
    let (a, b) = (format!("{p}-alice"), format!("{p}-bob"));
    submit_signed(env, clone, &alice.private, &[spec(&a, "true", 60)]);
    submit_signed(env, clone, &bob.private, &[spec(&b, "true", 60)]);
    (a, b)
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_merge_around_a_signed_revocation_does_not_bring_the_key_back() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (alice, bob) = (keygen(&env, "alice"), keygen(&env, "bob"));
    let root = publish_signers(&env, &clone, &[("alice", &alice), ("bob", &bob)], None);
    let revoked = publish_signers(&env, &clone, &[("alice", &alice)], Some(&alice));
    // An unsigned merge whose first parent is the root and whose tree is the root's: a
    // fast-forward of main that leaves the revocation off the first-parent line.
    let tree = env.git(&clone, &["rev-parse", &format!("{root}^{{tree}}")]);
    let merge = env.git(
        &clone,
        &[
            "commit-tree",
            &tree,
            "-p",
            &root,
            "-p",
            &revoked,
            "-m",
            "merge",
        ],
    );
    env.git(
        &clone,
        &[
            "push",
            "--quiet",
            "origin",
            &format!("{merge}:refs/heads/main"),
        ],
    );
    env.git(&clone, &["reset", "--quiet", "--hard", &merge]);
    let (a, b) = alice_and_bob_tasks(&env, &clone, &alice, &bob);
    let log = grid_worker(&env, &grid, "merge-node", &root);
    let state = |id: &str| find_task(&env, &grid, id).unwrap().0;
    assert_eq!(state(&b), "queue", "bob was revoked: {log}");
    assert_eq!(state(&a), "queue", "the chain is broken: nobody: {log}");
    assert!(
        log.contains(&format!(
            "commit {revoked} changes .dgrid/allowed_signers off main's first-parent line"
        )),
        "{log}"
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_signed_revocation_after_an_unsigned_edit_is_honoured() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (alice, bob, carol) = (
        keygen(&env, "alice"),
        keygen(&env, "bob"),
        keygen(&env, "carol"),
    );
    let root = publish_signers(&env, &clone, &[("alice", &alice), ("bob", &bob)], None);
    let three = [("alice", &alice), ("bob", &bob), ("carol", &carol)];
    publish_signers(&env, &clone, &three, None);
    // alice's signed change mends the chain: its set, never the root's, is in force.
    publish_signers(&env, &clone, &[("alice", &alice)], Some(&alice));
    let (a, b) = alice_and_bob_tasks(&env, &clone, &alice, &bob);
    let log = grid_worker(&env, &grid, "mended-node", &root);
    let state = |id: &str| find_task(&env, &grid, id).unwrap().0;
    assert_eq!(state(&b), "queue", "bob was revoked: {log}");
    assert_eq!(state(&a), "completed", "{log}");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_history_rewound_before_an_accepted_revocation_trusts_nobody() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (alice, bob) = (keygen(&env, "alice"), keygen(&env, "bob"));
    let root = publish_signers(&env, &clone, &[("alice", &alice), ("bob", &bob)], None);
    let revoked = publish_signers(&env, &clone, &[("alice", &alice)], Some(&alice));
    let first = format!("{}-alice", unique("accepted"));
    submit_signed(&env, &clone, &alice.private, &[spec(&first, "true", 60)]);
    let log = grid_worker(&env, &grid, "rewound-node", &root);
    assert_eq!(
        find_task(&env, &grid, &first).unwrap().0,
        "completed",
        "{log}"
    );
    // A forced push back to the root (the remote allows it): the revocation is gone from main.
    env.git(&grid, &["config", "receive.denyNonFastForwards", "false"]);
    env.git(
        &clone,
        &[
            "push",
            "--quiet",
            "--force",
            "origin",
            &format!("{root}:refs/heads/main"),
        ],
    );
    env.git(&clone, &["fetch", "--quiet", "origin"]);
    env.git(&clone, &["reset", "--quiet", "--hard", "origin/main"]);
    let (a, b) = alice_and_bob_tasks(&env, &clone, &alice, &bob);
    // The same node and state dir, a new process.
    let log = grid_worker(&env, &grid, "rewound-node", &root);
    let state = |id: &str| find_task(&env, &grid, id).unwrap().0;
    assert_eq!(state(&b), "queue", "bob was revoked: {log}");
    assert_eq!(state(&a), "queue", "{log}");
    assert!(
        log.contains(&format!("no longer contains commit {revoked}")),
        "{log}"
    );
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
    assert!(!log.contains("not trusting"), "{log}");
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

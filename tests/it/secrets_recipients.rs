//! Who may add a key to `.dgrid/recipients`: with a trust root (`submit --trust-root`), the file
//! is read along the chain of changes each signed by one of the grid's signers, as workers read
//! `.dgrid/allowed_signers`. A pusher who adds their own key without such a signature gets no
//! secret: submit refuses, naming the commit; once a signer's signed commit sets the file, the
//! secrets go to the keys it lists, and the pusher's key does not open them. And where a value
//! comes from: a file, stdin or the submitter's environment, never the command line.

use crate::common::{assert_success, find_task, Env};
use crate::trust_kit::{commit_dgrid_files, keygen};
use crate::worker_kit::*;

fn age_key() -> (age::x25519::Identity, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    (id, public)
}

fn opens(identity: &age::x25519::Identity, armored: &str) -> bool {
    age::decrypt(identity, armored.as_bytes()).is_ok()
}

#[test]
fn a_recipient_added_without_a_signer_s_signature_gets_no_secret() {
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let alice = keygen(&env, "alice");
    let (w1, w1_pub) = age_key();
    let (mallory, mallory_pub) = age_key();
    let signers = format!(
        "alice@example.com namespaces=\"dgrid-task,git\" {}\n",
        alice.line
    );
    let root = commit_dgrid_files(
        &env,
        &clone,
        &[
            ("allowed_signers", signers),
            ("recipients", format!("w1 {w1_pub}\n")),
        ],
        None,
    );
    // Anyone who can push adds a key, unsigned.
    commit_dgrid_files(
        &env,
        &clone,
        &[(
            "recipients",
            format!("w1 {w1_pub}\nmallory {mallory_pub}\n"),
        )],
        None,
    );
    let token = env.path("token");
    std::fs::write(&token, "for-w1-only").unwrap();
    let secret = format!("TOKEN=@{}", token.display());
    let submit = |id: &str| {
        env.submit_lines(
            &clone,
            &["--trust-root", &root, "--secret", &secret],
            &[spec(id, "true", 60)],
        )
    };
    let out = submit("refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("changes .dgrid/recipients and the commit is not signed"),
        "{stderr}"
    );
    assert!(find_task(&env, &grid, "refused").is_none());

    // Alice, a grid signer, sets the file in a signed commit: that version is trusted.
    commit_dgrid_files(
        &env,
        &clone,
        &[("recipients", format!("w1 {w1_pub}\n"))],
        Some(&alice),
    );
    let out = submit("sent");
    assert_success(&out);
    let (_, task) = find_task(&env, &grid, "sent").unwrap();
    let armored = task["secrets"]["TOKEN"].as_str().unwrap();
    assert!(opens(&w1, armored));
    assert!(!opens(&mallory, armored));

    // Without a trust root, the file is read as it is, with a warning.
    let out = env.submit_lines(&clone, &["--secret", &secret], &[spec("as-is", "true", 60)]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not checked against the grid's signers"),
        "{out:?}"
    );
}

#[test]
fn a_secret_comes_from_a_file_stdin_or_the_environment_never_the_command_line() {
    use std::io::Write;
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let (w1, w1_pub) = age_key();
    commit_dgrid_files(
        &env,
        &clone,
        &[("recipients", format!("w1 {w1_pub}\n"))],
        None,
    );
    let submit = |id: &str, secret: &str| {
        let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone);
        cmd.args(["submit", "--id", id, "--image", IMAGE, "--secret", secret])
            .args(["--", "true"])
            .env("FROM_ENV", "value-from-env");
        cmd
    };
    let out = submit("on-argv", "TOKEN=hunter2-on-argv").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a value on the command line is visible"),
        "{stderr}"
    );
    assert!(find_task(&env, &grid, "on-argv").is_none());

    let out = submit("unset", "NOT_SET_ANYWHERE").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    assert_success(&submit("from-env", "FROM_ENV").output().unwrap());
    let mut child = submit("from-stdin", "TOKEN=-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"value-from-stdin")
        .unwrap();
    assert_success(&child.wait_with_output().unwrap());
    for (id, name, value) in [
        ("from-env", "FROM_ENV", "value-from-env"),
        ("from-stdin", "TOKEN", "value-from-stdin"),
    ] {
        let (_, task) = find_task(&env, &grid, id).unwrap();
        let armored = task["secrets"][name].as_str().unwrap();
        assert_eq!(
            age::decrypt(&w1, armored.as_bytes()).unwrap(),
            value.as_bytes()
        );
    }
}

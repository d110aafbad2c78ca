//! Signing with `submit --sign` and checking with `validate --allowed-signers`: validate names
//! the unsigned, the tampered and the unknown signer's task and not the trusted one; a key held
//! only by ssh-agent signs (git-dgrid is given the `.pub` file, or a `key::` literal in git
//! config `user.signingKey`); the pre-push hook refuses untrusted tasks when the grid sets
//! `dgrid.allowedSignersFile`.

use crate::common;
use crate::common::{assert_success, Env};
use crate::trust_kit::*;
use crate::worker_kit::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn validate(env: &Env, dir: &Path, signers: &Path) -> std::process::Output {
    env.dgrid(
        dir,
        &["validate", "--allowed-signers", signers.to_str().unwrap()],
    )
}

#[test]
fn validate_names_unsigned_tampered_and_unknown_signer_tasks_and_not_the_trusted_one() {
    let env = Env::new();
    let (_grid, clone, _) = setup(&env);
    let (alice, mallory) = (keygen(&env, "alice"), keygen(&env, "mallory"));
    let signers = allowed_signers(&env, "allowed_signers", &[("alice@example.com", &alice)]);
    submit_signed(
        &env,
        &clone,
        &alice.private,
        &[spec("t-alice", "true", 60), spec("t-edited", "true", 60)],
    );
    submit(&env, &clone, &[spec("t-unsigned", "true", 60)]);
    submit_signed(
        &env,
        &clone,
        &mallory.private,
        &[spec("t-mallory", "true", 60)],
    );
    edit_command_with_git(&env, &clone, "t-edited", "echo edited");
    env.git(&clone, &["pull", "--quiet", "--ff-only"]);

    // Without --allowed-signers, signatures are not looked at: every file is valid.
    let plain = env.dgrid(&clone, &["validate"]);
    assert_success(&plain);

    let out = validate(&env, &clone, &signers);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = |id: &str| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("/{id}.json")))
            .map(str::to_string)
    };
    assert_eq!(line("t-alice"), None, "{stdout}");
    for (id, why) in [
        ("t-unsigned", "unsigned"),
        ("t-edited", "tampered"),
        ("t-mallory", "unknown signer"),
    ] {
        let l = line(id).unwrap_or_else(|| panic!("{id} is not named: {stdout}"));
        assert!(l.contains("signature") && l.contains(why), "{id}: {l}");
    }
    assert_eq!(stdout.lines().count(), 3, "{stdout}");

    // As JSON, for tools.
    let out = env.dgrid(
        &clone,
        &[
            "validate",
            "--json",
            "--allowed-signers",
            signers.to_str().unwrap(),
        ],
    );
    let problems: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        problems.iter().all(|p| p["field"] == "signature"),
        "{problems:?}"
    );

    // A grid that sets dgrid.allowedSignersFile refuses a push that adds an unsigned task.
    let hooks = env.dgrid(&clone, &["install-hooks"]);
    assert_success(&hooks);
    env.git(
        &clone,
        &[
            "config",
            "dgrid.allowedSignersFile",
            signers.to_str().unwrap(),
        ],
    );
    let shard_dir = clone.join("tasks/queue");
    std::fs::create_dir_all(&shard_dir).unwrap();
    std::fs::write(
        shard_dir.join("t-pushed.json"),
        spec("t-pushed", "true", 60),
    )
    .unwrap();
    env.git(&clone, &["add", "tasks/queue/t-pushed.json"]);
    env.git(&clone, &["commit", "--quiet", "-m", "an unsigned task"]);
    let push = env
        .cmd("git", &clone)
        .args(["push", "origin", "HEAD:main"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&push.stderr);
    assert!(!push.status.success(), "{err}");
    assert!(
        err.contains("t-pushed.json") && err.contains("unsigned"),
        "{err}"
    );
}

/// `ssh-agent -D` on a socket of its own, stopped when dropped.
struct Agent {
    child: Child,
    socket: std::path::PathBuf,
}

impl Agent {
    fn start(env: &Env) -> Agent {
        let socket = env.path("agent.sock");
        let child = env
            .cmd("ssh-agent", env.tmp.path())
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent { child, socket };
        // The socket exists once bound, a moment before the agent listens: ask it until it
        // answers (`ssh-add -l` exits 1 for "no identities", 2 when it cannot reach the agent).
        let answers = || {
            let listed = agent.cmd(env, "ssh-add", env.tmp.path()).arg("-l").output();
            agent.socket.exists() && listed.is_ok_and(|o| o.status.code() != Some(2))
        };
        assert!(common::wait_for(300, answers), "ssh-agent did not start");
        agent
    }

    fn cmd(&self, env: &Env, program: &str, dir: &Path) -> Command {
        let mut cmd = env.cmd(program, dir);
        cmd.env("SSH_AUTH_SOCK", &self.socket);
        cmd
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_key_held_only_by_ssh_agent_signs() {
    let env = Env::new();
    let (_grid, clone, _) = setup(&env);
    let alice = keygen(&env, "alice");
    let signers = allowed_signers(&env, "allowed_signers", &[("alice", &alice)]);
    let agent = Agent::start(&env);
    let added = agent
        .cmd(&env, "ssh-add", env.tmp.path())
        .arg(&alice.private)
        .output()
        .unwrap();
    assert_success(&added);
    // Only the agent has the private key now.
    std::fs::remove_file(&alice.private).unwrap();

    let submit_with_agent = |args: &[&str], line: String| {
        use std::io::Write;
        let mut child = agent
            .cmd(&env, env!("CARGO_BIN_EXE_git-dgrid"), &clone)
            .arg("submit")
            .args(args)
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_success(&out);
    };
    // The .pub file, as git's user.signingKey may name it.
    submit_with_agent(
        &["--sign", "--signing-key", alice.public.to_str().unwrap()],
        spec("t-agent-file", "true", 60),
    );
    // A literal public key in git config user.signingKey, as git takes it.
    env.git(
        &clone,
        &["config", "user.signingKey", &format!("key::{}", alice.line)],
    );
    submit_with_agent(&["--sign"], spec("t-agent-literal", "true", 60));

    env.git(&clone, &["pull", "--quiet", "--ff-only"]);
    let out = validate(&env, &clone, &signers);
    assert_success(&out);
    let listing = env.git(&clone, &["ls-files", "tasks/queue"]);
    assert_eq!(
        listing.lines().filter(|l| l.ends_with(".json")).count(),
        2,
        "{listing}"
    );

    // Without the agent, nothing can sign with the .pub: a clear error, nothing submitted.
    let out = env.submit_lines(
        &clone,
        &["--sign", "--signing-key", alice.public.to_str().unwrap()],
        &[spec("t-no-agent", "true", 60)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot sign task t-no-agent"), "{err}");
}

#[test]
fn rsa_and_ecdsa_p256_keys_sign_too_and_other_types_are_named() {
    let env = Env::new();
    let (_grid, clone, _) = setup(&env);
    let rsa = keygen_type(&env, "rsa-user", "rsa");
    let ecdsa = keygen_type(&env, "ecdsa-user", "ecdsa");
    let p384 = {
        let private = env.path("p384_key");
        let out = env
            .cmd("ssh-keygen", env.tmp.path())
            .args(["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f"])
            .arg(&private)
            .output()
            .unwrap();
        assert_success(&out);
        private
    };
    let signers = allowed_signers(&env, "allowed_signers", &[("r", &rsa), ("e", &ecdsa)]);
    submit_signed(&env, &clone, &rsa.private, &[spec("t-rsa", "true", 60)]);
    submit_signed(&env, &clone, &ecdsa.private, &[spec("t-ecdsa", "true", 60)]);
    env.git(&clone, &["pull", "--quiet", "--ff-only"]);
    assert_success(&validate(&env, &clone, &signers));

    submit_signed(&env, &clone, &p384, &[spec("t-p384", "true", 60)]);
    env.git(&clone, &["pull", "--quiet", "--ff-only"]);
    let out = validate(&env, &clone, &signers);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("t-p384.json") && stdout.contains("keys are not supported"),
        "{stdout}"
    );
}

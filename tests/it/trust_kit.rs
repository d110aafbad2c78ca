//! Shared by the signed-task tests (`trust_*.rs`): ed25519 keys made by the real
//! `ssh-keygen`, allowed-signers files, signed submissions, and editing a queued task with plain
//! git after it was signed.
#![allow(dead_code)]

use crate::common::{assert_success, Env};
use std::path::{Path, PathBuf};

/// A key pair made by `ssh-keygen`: the private key file, its `.pub`, and the public line.
pub struct Key {
    pub private: PathBuf,
    pub public: PathBuf,
    pub line: String,
}

pub fn keygen(env: &Env, name: &str) -> Key {
    keygen_type(env, name, "ed25519")
}

/// A key of another type (`rsa`, `ecdsa`, ...).
pub fn keygen_type(env: &Env, name: &str, kind: &str) -> Key {
    let private = env.path(&format!("{name}_{kind}"));
    let out = env
        .cmd("ssh-keygen", env.tmp.path())
        .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&private)
        .output()
        .unwrap();
    assert_success(&out);
    let public = PathBuf::from(format!("{}.pub", private.display()));
    let line = std::fs::read_to_string(&public).unwrap().trim().to_string();
    Key {
        private,
        public,
        line,
    }
}

/// An allowed-signers file with `principal key` lines.
pub fn allowed_signers(env: &Env, name: &str, signers: &[(&str, &Key)]) -> PathBuf {
    let path = env.path(name);
    let text: String = signers
        .iter()
        .map(|(principal, key)| format!("{principal} namespaces=\"dgrid-task,git\" {}\n", key.line))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Submits `lines` signed with `key` (a file given to `--signing-key`).
pub fn submit_signed(env: &Env, clone: &Path, key: &Path, lines: &[String]) {
    let key = key.to_str().unwrap();
    let out = env.submit_lines(clone, &["--sign", "--signing-key", key], lines);
    assert_success(&out);
}

/// Changes queued task `id`'s command with plain git in `clone` and pushes: its signature stays
/// as it was.
pub fn edit_command_with_git(env: &Env, clone: &Path, id: &str, command: &str) {
    edit_queued_with_git(env, clone, id, |task| {
        assert!(task["signature"].is_string(), "{task}");
        task["command"] = command.into();
    });
}

/// Edits queued task `id`'s file with plain git in `clone` (as any pusher can) and pushes.
pub fn edit_queued_with_git(
    env: &Env,
    clone: &Path,
    id: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    env.git(clone, &["pull", "--quiet", "--ff-only"]);
    let listing = env.git(clone, &["ls-files", "tasks/queue"]);
    let path = listing
        .lines()
        .find(|l| l.ends_with(&format!("/{id}.json")))
        .unwrap_or_else(|| panic!("{id} is not queued: {listing}"));
    let file = clone.join(path);
    let mut task: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    edit(&mut task);
    std::fs::write(&file, serde_json::to_string(&task).unwrap()).unwrap();
    env.git(clone, &["commit", "--quiet", "-am", &format!("edit {id}")]);
    env.git(clone, &["push", "--quiet", "origin", "HEAD:main"]);
}

/// Writes `.dgrid/` files in `clone`, commits (signed by `sign_with` through git's own SSH
/// signing, or unsigned) and pushes. Returns the commit.
pub fn commit_dgrid_files(
    env: &Env,
    clone: &Path,
    files: &[(&str, String)],
    sign_with: Option<&Key>,
) -> String {
    env.git(clone, &["pull", "--quiet", "--ff-only"]);
    std::fs::create_dir_all(clone.join(".dgrid")).unwrap();
    for (name, text) in files {
        std::fs::write(clone.join(".dgrid").join(name), text).unwrap();
        env.git(clone, &["add", &format!(".dgrid/{name}")]);
    }
    let mut args = vec!["-c", "gpg.format=ssh"];
    let key_config;
    if let Some(key) = sign_with {
        key_config = format!("user.signingKey={}", key.private.display());
        args.extend(["-c", &key_config, "commit", "-S"]);
    } else {
        args.push("commit");
    }
    args.extend(["--quiet", "-m", "the grid's keys"]);
    env.git(clone, &args);
    env.git(clone, &["push", "--quiet", "origin", "HEAD:main"]);
    env.git(clone, &["rev-parse", "HEAD"])
}

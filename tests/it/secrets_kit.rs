//! Shared by the secrets tests (`secrets*.rs`): the grid's recipients list published with plain
//! git, an age identity for a worker, and ciphertext made as a submitter (or an attacker) would.
#![allow(dead_code)]

use crate::common::Env;
use std::path::{Path, PathBuf};

/// Writes `.dgrid/recipients` with `lines` in `clone`, commits and pushes it (unsigned: a
/// submitter without a trust root reads it as it is, and says so).
pub fn publish_recipients(env: &Env, clone: &Path, lines: &[String]) {
    env.git(clone, &["pull", "--quiet", "--ff-only"]);
    std::fs::create_dir_all(clone.join(".dgrid")).unwrap();
    std::fs::write(clone.join(".dgrid/recipients"), lines.join("\n") + "\n").unwrap();
    env.git(clone, &["add", ".dgrid/recipients"]);
    env.git(clone, &["commit", "--quiet", "-m", "the grid's recipients"]);
    env.git(clone, &["push", "--quiet", "origin", "HEAD:main"]);
}

/// An age X25519 identity file (with a comment line, as `age-keygen` writes) and its public key.
pub fn age_identity(env: &Env, name: &str) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let path = env.path(name);
    let secret = age::secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    std::fs::write(&path, format!("# {name}\n{secret}\n")).unwrap();
    (path, id.to_public().to_string())
}

/// `plaintext` encrypted to `public` (an age key), armored, as a submitter would make it.
pub fn ciphertext_to(public: &str, plaintext: &[u8]) -> String {
    use std::io::Write;
    let recipient: age::x25519::Recipient = public.parse().unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut writer = encryptor.wrap_output(armor).unwrap();
    writer.write_all(plaintext).unwrap();
    writer.finish().unwrap().finish().unwrap();
    String::from_utf8(out).unwrap()
}

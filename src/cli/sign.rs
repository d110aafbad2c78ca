//! `submit --sign`: each task's canonical bytes (`trust::canonical`) signed by `ssh-keygen -Y sign
//! -n dgrid-task`, as git signs commits with `gpg.format=ssh`. The key is `--signing-key`, else git
//! config `user.signingKey`: a file (private, or a `.pub` whose private key ssh-agent holds), or
//! `key::ssh-ed25519 AAAA…`, a literal public key for the agent (written to a temporary file
//! and passed with `-U`, as git does). git-dgrid never reads a private key itself.

use crate::settings::SIGNING_KEY;
use crate::task::TaskSpec;
use crate::trust;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where the signing key is.
pub enum SigningKey {
    File(PathBuf),
    /// A literal public key (`key::…`), kept in a temporary file while signing.
    Literal(TempKey),
}

/// The key named by `--signing-key`/`DGRID_SIGNING_KEY` (`given`), else git config
/// `user.signingKey` as git sees it where the command runs.
pub fn signing_key(given: Option<String>) -> Result<SigningKey> {
    let config = crate::repo::command_config()?;
    let value: Option<String> = SIGNING_KEY.resolve_opt(given, &config)?;
    let Some(value) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        bail!("--sign needs a key: give --signing-key FILE or set git config user.signingKey (as for gpg.format=ssh)");
    };
    if let Some(literal) = value.strip_prefix("key::") {
        return Ok(SigningKey::Literal(TempKey::new(literal)?));
    }
    let path = match value.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(rest),
        None => PathBuf::from(&value),
    };
    if !path.exists() {
        bail!("signing key {}: no such file", path.display());
    }
    Ok(SigningKey::File(path))
}

/// Writes each task's signature into it.
pub fn sign_all(tasks: &mut [TaskSpec], key: &SigningKey) -> Result<()> {
    for task in tasks {
        task.signature = None;
        let signature = sign_bytes(&trust::canonical_bytes(task), key)
            .with_context(|| format!("cannot sign task {}", task.id))?;
        task.signature = Some(signature);
    }
    Ok(())
}

fn sign_bytes(bytes: &[u8], key: &SigningKey) -> Result<String> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-Y", "sign", "-n", trust::NAMESPACE, "-q", "-f"]);
    match key {
        SigningKey::File(path) => cmd.arg(path),
        SigningKey::Literal(temp) => cmd.arg(temp.path()).arg("-U"),
    };
    // Signing reads the data from stdin and writes the armored signature to stdout.
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run ssh-keygen (is OpenSSH installed?)")?;
    let mut stdin = child.stdin.take().context("ssh-keygen's stdin")?;
    // ssh-keygen may exit before it reads (a key it cannot use, no agent): its own answer below
    // says why. The broken pipe must not stand for it: it would read as a closed stdout of ours,
    // and the command would end without a word.
    let _ = stdin.write_all(bytes);
    drop(stdin);
    let out = child.wait_with_output().context("ssh-keygen")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !text.contains("-----BEGIN SSH SIGNATURE-----") {
        bail!(
            "ssh-keygen -Y sign failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(text)
}

/// A literal public key (nothing secret) in a temporary file, removed when dropped.
pub struct TempKey(PathBuf);

impl TempKey {
    pub fn new(literal: &str) -> Result<TempKey> {
        let path = std::env::temp_dir().join(format!(
            "dgrid-signing-key-{}-{:08x}.pub",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::write(&path, format!("{}\n", literal.trim()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(TempKey(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

//! The node's reveal key: 32 random bytes in `quorum-key` in its state dir, created once (mode
//! 0600). The salts of its commitments to replicated tasks' results come from it
//! (`quorum::salt`), so they stay secret until revealed, and a restarted worker reveals
//! what its previous run committed to.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;

pub const FILE: &str = "quorum-key";
const LEN: usize = 32;

/// The key in `node_dir`, made on first use.
pub fn load_or_create(node_dir: &Path) -> Result<Vec<u8>> {
    let path = node_dir.join(FILE);
    match std::fs::read(&path) {
        Ok(key) if key.len() == LEN => return Ok(key),
        Ok(key) => bail!(
            "{} is {} bytes, not the {LEN} of a reveal key: move it away to make a new one (this node's results awaiting a quorum then cannot be revealed)",
            path.display(),
            key.len()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut key = vec![0u8; LEN];
    // The salts must be unguessable: the kernel's randomness, not a seeded generator.
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("cannot read random bytes from /dev/urandom for the reveal key")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), LEN);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first);
    }

    #[test]
    fn a_key_of_the_wrong_size_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"short").unwrap();
        let e = format!("{:#}", load_or_create(dir.path()).unwrap_err());
        assert!(e.contains(FILE) && e.contains("5 bytes"), "{e}");
    }
}

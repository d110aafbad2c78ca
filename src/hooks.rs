//! Installing the pre-push hook without ever losing a hook we did not write: a foreign hook is kept
//! as `pre-push.dgrid-chained` and run by ours after validation; uninstalling puts it back.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The shim, exactly as in `hooks/pre-push` of this project.
pub const PRE_PUSH: &str = include_str!("../hooks/pre-push");
/// How we recognise a hook we wrote (any version of it).
const MARKER: &str = "# git-dgrid pre-push hook";
pub const CHAINED_SUFFIX: &str = ".dgrid-chained";

pub fn chained_hook(hooks_dir: &Path) -> PathBuf {
    hooks_dir.join(format!("pre-push{CHAINED_SUFFIX}"))
}

fn is_ours(content: &str) -> bool {
    content.lines().any(|l| l.starts_with(MARKER))
}

/// What `install` did, for the user.
#[derive(Debug, PartialEq, Eq)]
pub enum Installed {
    New,
    AlreadyCurrent,
    Upgraded,
    /// A foreign hook was moved aside and is chained.
    Chained(PathBuf),
}

pub fn install(hooks_dir: &Path) -> Result<Installed> {
    std::fs::create_dir_all(hooks_dir)
        .with_context(|| format!("cannot create {}", hooks_dir.display()))?;
    let hook = hooks_dir.join("pre-push");
    let outcome = match std::fs::read(&hook) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Installed::New,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", hook.display())),
        Ok(bytes) => {
            let content = String::from_utf8_lossy(&bytes);
            if content == PRE_PUSH {
                return Ok(Installed::AlreadyCurrent);
            } else if is_ours(&content) {
                Installed::Upgraded
            } else {
                let chained = chained_hook(hooks_dir);
                if chained.exists() {
                    bail!(
                        "{} is not git-dgrid's hook, and {} already exists, so it cannot be kept aside.\n\
                         Merge them by hand, or add this line to your hook: git dgrid hook pre-push \"$@\"",
                        hook.display(),
                        chained.display()
                    );
                }
                std::fs::rename(&hook, &chained)
                    .with_context(|| format!("cannot move {} aside", hook.display()))?;
                Installed::Chained(chained)
            }
        }
    };
    write_executable(&hook, PRE_PUSH)?;
    Ok(outcome)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Uninstalled {
    Removed,
    /// Ours was removed and the chained one put back.
    Restored(PathBuf),
    NotInstalled,
    /// The hook there is not ours: left alone.
    Foreign(PathBuf),
}

pub fn uninstall(hooks_dir: &Path) -> Result<Uninstalled> {
    let hook = hooks_dir.join("pre-push");
    let content = match std::fs::read(&hook) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Uninstalled::NotInstalled),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", hook.display())),
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
    };
    if !is_ours(&content) {
        return Ok(Uninstalled::Foreign(hook));
    }
    std::fs::remove_file(&hook).with_context(|| format!("cannot remove {}", hook.display()))?;
    let chained = chained_hook(hooks_dir);
    if chained.exists() {
        std::fs::rename(&chained, &hook)
            .with_context(|| format!("cannot restore {}", chained.display()))?;
        return Ok(Uninstalled::Restored(hook));
    }
    Ok(Uninstalled::Removed)
}

fn write_executable(path: &Path, content: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Write aside and rename, so a concurrent push never runs half a hook.
    let tmp = path.with_extension("dgrid-tmp");
    std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot install {}", path.display()))?;
    Ok(())
}

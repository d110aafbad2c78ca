//! The operator's policy for `git dgrid work`: which queued tasks this node admits (images, caps,
//! signatures, the keys that open tasks' secrets), the hourly rate, and how containers run (user,
//! runtime). Each setting from the table, checked here so that a typo stops the worker at start,
//! naming the setting.

use super::Args;
use crate::config::GitConfig;
use crate::grid::{read_allowed_signers, Admission, GridSigners, ImagePatterns, Trust};
use crate::settings::{
    ALLOWED_SIGNERS, ALLOW_IMAGES, CONTAINER_USER, IDENTITY, MAX_TASKS_PER_HOUR, MAX_TASK_TIMEOUT,
    RUNTIME, TRUST_GRID_SIGNERS, TRUST_ROOT,
};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct Policy {
    pub admission: Admission,
    pub max_tasks_per_hour: Option<u32>,
    pub user: String,
    pub runtime: Option<String>,
}

/// `max_cpus` and `max_memory`: the node's caps as the operator set them (a task asking for more
/// stays queued; one asking for more than the host has, within them, gets the whole host).
/// `grid_dir`: the worker's clone, where the grid's signers chain is read; `node_dir`: the node's
/// state dir, where the signers change accepted last is kept.
pub fn resolve(
    args: &Args,
    config: &GitConfig,
    max_cpus: f64,
    max_memory: u64,
    grid_dir: &Path,
    node_dir: &Path,
) -> Result<Policy> {
    let patterns = ALLOW_IMAGES.resolve_list(args.allow_images.clone(), config);
    let images = ImagePatterns::parse(&patterns).map_err(|why| anyhow!("--allow-image: {why}"))?;
    let max_timeout = MAX_TASK_TIMEOUT.resolve_opt(args.max_task_timeout, config)?;
    if max_timeout == Some(0) {
        bail!("--max-task-timeout must be at least 1 second");
    }
    let max_tasks_per_hour = MAX_TASKS_PER_HOUR.resolve_opt(args.max_tasks_per_hour, config)?;
    if max_tasks_per_hour == Some(0) {
        bail!("--max-tasks-per-hour must be at least 1 (leave it unset for no limit)");
    }
    let user: String = CONTAINER_USER.resolve(args.container_user.clone(), config)?;
    check_user(&user).map_err(|why| anyhow!("--container-user {user:?}: {why}"))?;
    let runtime: Option<String> = RUNTIME.resolve_opt(args.runtime.clone(), config)?;
    let runtime = runtime.filter(|r| !r.trim().is_empty());
    if let Some(name) = &runtime {
        if !name.chars().all(name_char) {
            bail!("--runtime {name:?}: expected a runtime name such as runsc");
        }
    }
    let mut admission = Admission::default();
    admission.images = images;
    admission.max_timeout = max_timeout;
    admission.max_cpus = Some(max_cpus);
    admission.max_memory = Some(max_memory);
    admission.signatures = signatures(args, config, grid_dir, node_dir)?;
    admission.keys = identity(args, config)?;
    Ok(Policy {
        admission,
        max_tasks_per_hour,
        user,
        runtime,
    })
}

/// `--allowed-signers` and `--trust-grid-signers`: the signature check, or `None` when this
/// node runs unsigned tasks. A file that does not read stops the worker, naming its lines.
fn signatures(
    args: &Args,
    config: &GitConfig,
    grid_dir: &Path,
    node_dir: &Path,
) -> Result<Option<Arc<crate::grid::SignatureCheck>>> {
    let file: Option<String> = ALLOWED_SIGNERS.resolve_opt(args.allowed_signers.clone(), config)?;
    let file = file.filter(|f| !f.trim().is_empty()).map(PathBuf::from);
    let grid = TRUST_GRID_SIGNERS.resolve_flag(args.trust_grid_signers, config)?;
    let operator = file.as_deref().map(read_allowed_signers).transpose()?;
    let chain = if grid {
        let root: Option<String> = TRUST_ROOT.resolve_opt(args.trust_root.clone(), config)?;
        let root = root.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
            anyhow!("--trust-grid-signers needs the commit to start trusting from: --trust-root COMMIT or git config dgrid.trustRoot")
        })?;
        Some(GridSigners {
            dir: grid_dir.to_path_buf(),
            root,
            // Per node and state dir, so a restart keeps it (a rewound history).
            accepted: Some(node_dir.join("grid-signers-accepted")),
        })
    } else {
        None
    };
    if operator.is_none() && chain.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(Trust::new(operator, chain))))
}

/// `--identity`: the keys that open tasks' secrets, or `None` (tasks with secrets stay queued).
/// A file that does not read stops the worker; its content is never quoted.
fn identity(args: &Args, config: &GitConfig) -> Result<Option<Arc<crate::secrets::Keys>>> {
    let file: Option<String> = IDENTITY.resolve_opt(args.identity.clone(), config)?;
    let Some(file) = file.filter(|f| !f.trim().is_empty()) else {
        return Ok(None);
    };
    let bytes = std::fs::read(&file).map_err(|e| anyhow!("--identity {file}: cannot read: {e}"))?;
    let keys = crate::secrets::Keys::from_bytes(&bytes)
        .map_err(|why| anyhow!("--identity {file}: {why}"))?;
    Ok(Some(Arc::new(keys)))
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_.-".contains(c)
}

/// `USER[:GROUP]`, each a name or a number, as `docker run --user` takes it.
fn check_user(user: &str) -> Result<(), String> {
    let mut parts = user.split(':');
    let (name, group) = (parts.next().unwrap_or(""), parts.next());
    if parts.next().is_some() {
        return Err("expected USER or USER:GROUP".into());
    }
    for part in std::iter::once(name).chain(group) {
        if part.is_empty() || !part.chars().all(name_char) {
            return Err("expected USER or USER:GROUP, names or numbers".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_user;

    #[test]
    fn container_users() {
        for ok in ["65534:65534", "nobody", "1000", "app:staff", "0"] {
            assert!(check_user(ok).is_ok(), "{ok}");
        }
        for bad in ["", ":", "a:", ":b", "a:b:c", "a b", "$(id)"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }
}

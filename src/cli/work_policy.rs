//! The operator's policy for `git dgrid work`: which queued tasks this node admits (images, caps,
//! signatures), the hourly rate, and how containers run (user, runtime). Each setting from the
//! table, checked here so that a typo stops the worker at start, naming the setting.

use super::Args;
use crate::config::GitConfig;
use crate::grid::admission::{Admission, ImagePatterns};
use crate::settings::{
    ALLOW_IMAGES, CONTAINER_USER, MAX_TASKS_PER_HOUR, MAX_TASK_TIMEOUT, RUNTIME,
};
use anyhow::{anyhow, bail, Result};

pub struct Policy {
    pub admission: Admission,
    pub max_tasks_per_hour: Option<u32>,
    pub user: String,
    pub runtime: Option<String>,
}

/// `max_cpus` and `max_memory`: the node's caps as the operator set them (a task asking for more
/// stays queued; one asking for more than the host has, within them, gets the whole host).
pub fn resolve(args: &Args, config: &GitConfig, max_cpus: f64, max_memory: u64) -> Result<Policy> {
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
    Ok(Policy {
        admission,
        max_tasks_per_hour,
        user,
        runtime,
    })
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

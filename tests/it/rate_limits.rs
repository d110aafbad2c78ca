//! A remote that limits the rate of pushes (a `pre-receive` hook that answers every other push with
//! GitHub's secondary-rate-limit message) slows `submit` and the worker down and loses nothing.

use crate::common;
use crate::common::{assert_success, docker_ready, Env};
use crate::worker_kit::*;
use std::path::Path;
use std::process::Stdio;

const GITHUB_SAYS: &str =
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";

/// Makes `remote` refuse every other push with GitHub's message, counting pushes in a file; the
/// count starts at `start` (the next push is number `start + 1`; even numbers are refused).
fn limit_every_other_push(remote: &Path, start: u32) {
    let counter = remote.join("pushes.count");
    std::fs::write(&counter, start.to_string()).unwrap();
    let hook = remote.join("hooks/pre-receive");
    let script = format!(
        "#!/bin/sh\ncat >/dev/null\nn=$(( $(cat {c}) + 1 ))\necho $n > {c}\n\
         if [ $((n % 2)) -eq 0 ]; then echo '{GITHUB_SAYS}' >&2; exit 1; fi\n",
        c = counter.display()
    );
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn refused(remote: &Path) -> u32 {
    let n: u32 = std::fs::read_to_string(remote.join("pushes.count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    n / 2
}

#[test]
fn submit_through_a_rate_limited_remote_succeeds() {
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    // The next push, submit's first, is refused.
    limit_every_other_push(&grid, 1);
    let id = unique("limited-submit");
    let out = env.submit_lines(&clone, &[], &[spec(&id, "true", 60)]);
    assert_success(&out);
    assert_eq!(refused(&grid), 1, "submit's first push was refused");
    assert_eq!(env.ids_in(&grid, "main", "queue"), vec![id]);
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_waits_out_rate_limits_and_loses_nothing() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("limited");
    let ids: Vec<String> = (0..6).map(|i| format!("{p}-{i}")).collect();
    submit(
        &env,
        &clone,
        &ids.iter()
            .map(|id| spec(id, "echo hi", 60))
            .collect::<Vec<_>>(),
    );
    // From here on, every other push is refused, the worker's registration first.
    limit_every_other_push(&grid, 1);
    let mut child = worker(&env, &grid, "limited", &["--until-empty", "--slots", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, log) = exit_and_log(&mut child, 240);
    assert!(status.success(), "{log}");
    assert!(log.contains("rate limited"), "{log}");
    assert!(!log.contains("declined the push"), "{log}");
    assert!(refused(&grid) >= 2, "the hook refused pushes: {log}");
    let mut completed = env.ids_in(&grid, "main", "completed");
    completed.sort();
    assert_eq!(completed, ids, "{log}");
    assert!(env.ids_in(&grid, "main", "queue").is_empty());
    assert!(env.ids_in(&grid, "main", "in_progress").is_empty());
    for id in &ids {
        // Each task ran once: one result, in its first attempt.
        let finished = log.matches(&format!("finished {id} ")).count();
        assert_eq!(finished, 1, "{id} finished {finished} times: {log}");
        assert!(log.contains(&format!("finished {id} (attempt 1)")), "{log}");
    }
}

#[test]
fn sigterm_ends_a_rate_limited_workers_wait() {
    let env = Env::new();
    let (grid, _clone, _) = setup(&env);
    // Every push refused, asking for ten minutes of quiet.
    let hook = grid.join("hooks/pre-receive");
    let script =
        format!("#!/bin/sh\ncat >/dev/null\necho '{GITHUB_SAYS} Retry-After: 600' >&2\nexit 1\n");
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let log = env.path("worker.log");
    let mut child = worker(&env, &grid, "patient", &["--grace", "3"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        common::wait_for(300, || read().contains("rate limited")),
        "{}",
        read()
    );
    assert!(
        read().contains("trying again in 6"),
        "the remote's 600 s: {}",
        read()
    );
    unsafe_kill(&child, "TERM");
    // Far less than the ten minutes asked for: the stop ends the wait.
    let status = common::wait_exit(&mut child, 300);
    assert!(status.success(), "{}", read());
    assert!(read().contains("stopped"), "{}", read());
}

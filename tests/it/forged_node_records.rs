//! A node record forged under a live worker's id (pushed with plain git, around
//! the hook) must not stop that worker: no rightful takeover can happen while it keeps writing.

use crate::common::{
    assert_success, docker_ready, find_task, push_around_hook, wait_exit, wait_state, Env, TaskJson,
};
use git_dgrid::layout::node_path;
use std::process::Stdio;

const IMAGE: &str = "dgrid/busybox:latest";

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_forged_node_record_does_not_stop_a_live_worker() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let lines = [TaskJson::new("slow")
        .image(IMAGE)
        .command("sleep 6; echo done")
        .timeout(120)
        .to_string()];
    assert_success(&env.submit_lines(&clone, &[], &lines));
    let mut worker = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args([
            "work",
            "--node-id",
            "honest",
            "--repo",
            grid.to_str().unwrap(),
        ])
        .arg("--state-dir")
        .arg(env.path("state"))
        .args([
            "--poll-interval",
            "1",
            "--heartbeat-interval",
            "1",
            "--lease",
            "30",
            "--clock-skew",
            "0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, "slow", "in_progress", 300));
    let forged = r#"{"id":"honest","hostname":"evil","version":"0","labels":[],"slots":1,"cpus":1,"memory":0,"started_at":"2026-01-01T00:00:00Z","last_heartbeat":"2099-01-01T00:00:00Z","state":"running","heartbeat_interval":1,"running":[],"completed":0,"failed":0,"session":"forged-session"}"#;
    push_around_hook(&env, &clone, [(node_path("honest"), forged)]);
    assert!(
        wait_state(&env, &grid, "slow", "completed", 300),
        "the task finishes on the worker that holds it"
    );
    let (_, result) = find_task(&env, &grid, "slow").unwrap();
    assert_eq!(result["node_id"], "honest", "{result}");
    assert_eq!(result["attempt"], 1, "{result}");
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    let record = env.git(&grid, &["show", &format!("main:{}", node_path("honest"))]);
    assert!(!record.contains("forged-session"), "{record}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let status = wait_exit(&mut worker, 300);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut worker.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("forged"), "the worker says what it saw: {log}");
}

/// A node record whose heartbeat is dated in the future (a dead worker whose
/// clock ran ahead, or a forgery) must not park its node id forever: a start from another state dir
/// is refused while the record could be a live worker's, and takes the id over once this machine
/// has seen the record unchanged for longer than a lease.
#[test]
fn a_node_record_dated_in_the_future_parks_its_id_for_a_lease_not_forever() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let forged = r#"{"id":"parked","hostname":"evil","version":"0","labels":[],"slots":1,"cpus":1,"memory":0,"started_at":"2026-01-01T00:00:00Z","last_heartbeat":"2099-01-01T00:00:00Z","state":"running","heartbeat_interval":1,"running":[],"completed":0,"failed":0,"session":"forged-session"}"#;
    push_around_hook(&env, &clone, [(node_path("parked"), forged)]);
    let start = || {
        env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
            .args(["work", "--once", "--node-id", "parked", "--repo"])
            .arg(&grid)
            .arg("--state-dir")
            .arg(env.path("state"))
            .args([
                "--lease",
                "3",
                "--clock-skew",
                "0",
                "--heartbeat-interval",
                "1",
            ])
            .output()
            .unwrap()
    };
    let refused = start();
    let log = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{log}");
    assert!(log.contains("in the future"), "{log}");
    std::thread::sleep(std::time::Duration::from_secs(5));
    let taken_over = start();
    let log = String::from_utf8_lossy(&taken_over.stderr);
    assert_eq!(taken_over.status.code(), Some(1), "nothing to do: {log}");
    let record = env.git(&grid, &["show", &format!("main:{}", node_path("parked"))]);
    assert!(!record.contains("forged-session"), "{record}");
}

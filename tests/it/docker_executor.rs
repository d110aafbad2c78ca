//! The docker executor: whose failure a run was (the task's or docker's), the daemon's log, kills
//! that land while a container does not exist yet, docker's whole message, and long output cut
//! with its tail kept. Real Docker, a real remote.

use crate::common;
use crate::common::{docker_ready, find_task, wait_exit, wait_for, wait_state, Env, TaskJson};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "dgrid/busybox:latest";

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// A grid with `tasks` submitted, and a clone to submit from.
fn grid_with(env: &Env, tasks: &[String]) -> PathBuf {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    common::assert_success(&env.submit_lines(&clone, &[], tasks));
    grid
}

fn worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> Command {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args(["work", "--node-id", node, "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path(&format!("state-{node}")))
        .args(["--poll-interval", "1"])
        .args(extra)
        .stderr(Stdio::piped());
    cmd
}

/// Runs a worker until it exits (at most `secs`); its log.
fn run_until_exit(mut cmd: Command, secs: u64) -> String {
    let mut child = cmd.spawn().unwrap();
    let status = wait_exit(&mut child, secs);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    log
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_task_that_prints_dockers_words_is_a_task_failure() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let liar = unique("liar");
    let e125 = unique("e125");
    let task = |id: &str, command: &str| {
        TaskJson::new(id)
            .image(IMAGE)
            .command(command)
            .timeout(60)
            .set("max_attempts", 1)
            .to_string()
    };
    let grid = grid_with(
        &env,
        &[
            task(
                &liar,
                "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. \
                 Is the docker daemon running?' >&2; exit 1",
            ),
            task(
                &e125,
                "echo 'docker: Error response from daemon: failed to create' >&2; exit 125",
            ),
        ],
    );
    // On the old verdict the liar went back to the queue for ever: --until-empty never ended.
    run_until_exit(worker(&env, &grid, "verdict", &["--until-empty"]), 300);
    for (id, code) in [(&liar, 1), (&e125, 125)] {
        let (state, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(
            (state.as_str(), &result["status"], &result["exit_code"]),
            ("failed", &"failed".into(), &code.into()),
            "{result}"
        );
        assert_eq!(result["attempt"], 1);
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn containers_keep_no_daemon_log_and_output_still_flows() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = unique("nolog");
    let grid = grid_with(
        &env,
        &[TaskJson::new(&id)
            .image(IMAGE)
            .command("echo before; echo oops >&2; sleep 3; echo after")
            .timeout(60)
            .to_string()],
    );
    let mut child = worker(&env, &grid, "nolog", &["--until-empty"])
        .spawn()
        .unwrap();
    let mut driver = String::new();
    assert!(wait_for(300, || {
        let out = Command::new("docker")
            .args([
                "ps",
                "--quiet",
                "--filter",
                &format!("label=dgrid.task={id}"),
            ])
            .output()
            .unwrap();
        let Some(cid) = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .map(String::from)
        else {
            return false;
        };
        let out = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{.HostConfig.LogConfig.Type}}",
                &cid,
            ])
            .output()
            .unwrap();
        driver = String::from_utf8_lossy(&out.stdout).trim().to_string();
        !driver.is_empty()
    }));
    assert_eq!(driver, "none");
    assert!(wait_exit(&mut child, 300).success());
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}");
    assert_eq!(result["stdout"], "before\nafter\n");
    assert_eq!(result["stderr"], "oops\n");
}

/// A docker that takes `delay` seconds before each `docker run` (a pull, a slow creation).
fn slow_docker(env: &Env, delay: u32) -> PathBuf {
    let path = env.path("slow-docker");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = run ]; then sleep {delay} </dev/null >/dev/null 2>&1; fi\n\
             exec docker \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_timeout_fires_while_the_container_does_not_exist_yet() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = unique("slowstart");
    let grid = grid_with(
        &env,
        &[TaskJson::new(&id)
            .image(IMAGE)
            .command("sleep 60")
            .timeout(2)
            .to_string()],
    );
    // `docker run` takes 150 s to start anything: the bounds below tell a timeout that fired
    // while it waited from one that waited for it, with room for a loaded machine.
    let docker = slow_docker(&env, 150);
    let started = Instant::now();
    let docker = docker.to_str().unwrap();
    run_until_exit(
        worker(
            &env,
            &grid,
            "slowstart",
            &["--until-empty", "--docker", docker],
        ),
        120,
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"timeout".into())
    );
    let ran = result["duration_ms"].as_u64().unwrap();
    assert!(ran < 60_000, "a 2-s timeout took {ran} ms");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    let left = Command::new("docker")
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label=dgrid.task={id}"),
        ])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "no container left behind");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn dockers_whole_message_reaches_the_log_and_the_node() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = unique("noimage");
    let grid = grid_with(
        &env,
        &[TaskJson::new(&id)
            .image("dgrid/no-such-image:1")
            .command("true")
            .timeout(60)
            .to_string()],
    );
    let mut child = worker(&env, &grid, "msg", &["--pull", "never"])
        .spawn()
        .unwrap();
    // A missing image is the task's problem, not the node's (docker answers): after a few tries
    // the task ends unrunnable with docker's whole message.
    let seen = wait_state(&env, &grid, &id, "failed", 300);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = wait_exit(&mut child, 300);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(seen, "{log}");
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(result["status"], "unrunnable", "{result}");
    let stderr = result["stderr"].as_str().unwrap_or_default();
    // Docker says "No such image" and then where to look: both lines, joined on one.
    assert!(
        stderr.contains("No such image") && stderr.contains(" | "),
        "{stderr}"
    );
    assert!(stderr.contains("docker run --help"), "{stderr}");
    let line = log
        .lines()
        .find(|l| l.contains("cannot start"))
        .unwrap_or_default();
    assert!(
        line.contains(" | ") && line.contains("docker run --help"),
        "{log}"
    );
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn long_output_keeps_its_tail_and_says_where_it_was_cut() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = unique("seq");
    let grid = grid_with(
        &env,
        &[TaskJson::new(&id)
            .image(IMAGE)
            .command("seq 1 200000")
            .timeout(60)
            .to_string()],
    );
    run_until_exit(worker(&env, &grid, "seq", &["--until-empty"]), 300);
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    let stdout = result["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("1\n2\n") && stdout.ends_with("\n200000\n"));
    assert!(stdout.contains(" bytes cut] …\n"), "the cut is marked");
    assert_eq!(result["stdout_info"]["truncated"], true);
    let status = env.dgrid_ok(&grid, &["status", "--json"], 0);
    assert!(
        status.contains("\"output_tail\":\"200000\"")
            || status.contains("\"output_tail\": \"200000\""),
        "{status}"
    );
}

/// An output cap above the file limit: the result itself is cut to fit a grid file, and that cut
/// keeps the tail and marks itself too (it kept only the head, with no marker).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_result_cut_to_fit_its_file_keeps_the_tail_and_marks_the_cut() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = unique("seqfit");
    let grid = grid_with(
        &env,
        &[TaskJson::new(&id)
            .image(IMAGE)
            .command("seq 1 200000")
            .timeout(60)
            .to_string()],
    );
    let cap = ["--until-empty", "--output-cap", "4000000"];
    run_until_exit(worker(&env, &grid, "seqfit", &cap), 300);
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed");
    let stdout = result["stdout"].as_str().unwrap();
    assert!(stdout.starts_with("1\n2\n"), "{stdout}");
    assert!(stdout.ends_with("\n199999\n200000\n"), "the tail: {stdout}");
    assert_eq!(stdout.matches(" bytes cut] …\n").count(), 1, "one marker");
    assert!(stdout.len() < 256 * 1024);
    assert_eq!(result["stdout_info"]["truncated"], true);
    assert_eq!(result["stdout_info"]["total_bytes"], 1_288_895);
}

//! Shared by the tests that run workers (`worker*.rs`, `quorum*.rs`, `archive.rs`, ...): a grid
//! with a push log, workers with fast leases, containers by label and signals.
#![allow(dead_code)]

use crate::common::{assert_success, count_pushes, wait_exit, wait_for, words, Env, TaskJson};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

pub const IMAGE: &str = "dgrid/busybox:latest";

/// A task for `submit -` in the test image (shorthand: nearly every test here submits some).
pub fn spec(id: &str, command: &str, timeout: u64) -> String {
    TaskJson::new(id)
        .image(IMAGE)
        .command(command)
        .timeout(timeout)
        .to_string()
}

pub fn submit(env: &Env, clone: &Path, lines: &[String]) {
    let out = env.submit_lines(clone, &[], lines);
    assert_success(&out);
}

/// A grid, a clone to submit from, and a post-receive log counting pushes.
pub fn setup(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let grid = env.grid("g.git");
    let log = count_pushes(&grid);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    (grid, clone, log)
}

/// Heartbeat every second, a short lease, no skew margin: dead nodes are noticed in seconds.
pub fn fast_lease(lease: &'static str) -> [&'static str; 6] {
    [
        "--heartbeat-interval",
        "1",
        "--lease",
        lease,
        "--clock-skew",
        "0",
    ]
}

pub fn worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> std::process::Command {
    worker_in(env, grid, node, &format!("state-{node}"), extra)
}

/// A worker with its own state dir `state`.
pub fn worker_in(
    env: &Env,
    grid: &Path,
    node: &str,
    state: &str,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args(["work", "--node-id", node, "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path(state))
        .args(["--poll-interval", "1"])
        .args(extra);
    cmd
}

pub fn run_worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> std::process::Output {
    worker(env, grid, node, extra).output().unwrap()
}

pub fn containers_with_label(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "--all",
            "--quiet",
            "--filter",
            &format!("label={label}"),
        ])
        .output()
        .unwrap();
    words(&out.stdout)
}

pub fn remove_containers(label: &str) {
    for id in containers_with_label(label) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &id])
            .output();
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:x}", std::process::id(), fastrand_u32())
}

pub fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

/// Waits up to `secs` for a worker spawned with its stderr piped to exit; returns how, and its log.
pub fn exit_and_log(child: &mut Child, secs: u64) -> (std::process::ExitStatus, String) {
    // Read the log while waiting: a worker that writes more than a pipe holds would otherwise
    // block on its stderr and never exit.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        log
    });
    let status = wait_exit(child, secs);
    (status, reader.join().unwrap_or_default())
}

pub fn unsafe_kill(child: &Child, signal: &str) {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

/// A unix-socket proxy to the real Docker daemon that the test can cut, to play a daemon that dies.
pub struct DockerProxy {
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DockerProxy {
    pub fn start(path: PathBuf) -> DockerProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || loop {
            if flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            match listener.accept() {
                Ok((client, _)) => {
                    client.set_nonblocking(false).unwrap();
                    let Ok(daemon) = UnixStream::connect("/var/run/docker.sock") else {
                        continue;
                    };
                    let (mut c1, mut d1) =
                        (client.try_clone().unwrap(), daemon.try_clone().unwrap());
                    let (mut c2, mut d2) = (client, daemon);
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c1, &mut d1);
                        let _ = d1.shutdown(std::net::Shutdown::Write);
                    });
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut d2, &mut c2);
                        let _ = c2.shutdown(std::net::Shutdown::Write);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        });
        DockerProxy { path, stop }
    }

    pub fn cut(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits up to `secs` for `node`'s record to be on `main` of `grid`.
pub fn node_registered(env: &Env, grid: &Path, node: &str, secs: u64) -> bool {
    let rev = format!("main:{}", git_dgrid::layout::node_path(node));
    wait_for(secs, || {
        env.cmd("git", grid)
            .args(["cat-file", "-e", &rev])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    })
}

pub fn node_session(env: &Env, grid: &Path, node: &str) -> String {
    let record: serde_json::Value = serde_json::from_str(&env.git(
        grid,
        &[
            "show",
            &format!("main:{}", git_dgrid::layout::node_path(node)),
        ],
    ))
    .unwrap();
    record["session"].as_str().unwrap().to_string()
}

/// Installs a post-receive hook on `grid` that runs `action` once, for the first push that claims
/// something: after the remote has taken it, before git on the worker hears back.
pub fn after_first_claim(grid: &Path, action: &str) {
    std::fs::write(
        grid.join("hooks/post-receive"),
        format!(
            "#!/bin/sh\nwhile read old new ref; do\n  if git log -1 --format=%B \"$new\" | grep -q 'claim ' && mkdir \"$GIT_DIR/../claimed-once\" 2>/dev/null; then {action}; fi\ndone\n"
        ),
    )
    .unwrap();
}

/// A task's result that will arrive late: node `slowpoke` runs the task, spools its result and
/// dies before pushing it; node `rescuer` takes the task back once the lease (2 s) is over and
/// completes it as attempt 2. `slowpoke` started again then pushes its spooled, late result.
pub fn spool_then_die_and_rescue(env: &Env, grid: &Path, slowpoke: &str, rescuer: &str) {
    let timing = fast_lease("2");
    let out = worker(env, grid, slowpoke, &timing)
        .env("DGRID_FAILPOINT", "after-spool")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    assert_success(&run_worker(env, grid, rescuer, &extra));
}

/// A `--docker` that logs the task of every `docker run`, then execs the real docker.
pub fn docker_wrapper(env: &Env) -> (PathBuf, PathBuf) {
    let real = which::which("docker").expect("docker is on PATH");
    let (script, runs) = (env.path("docker-wrapper"), env.path("docker-runs.log"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\nfor a in \"$@\"; do case \"$a\" in --label=dgrid.task=*) task=\"${{a#--label=dgrid.task=}}\" ;; esac; done\n\
             if [ \"$1\" = run ]; then echo \"$task\" >> '{}'; fi\nexec '{}' \"$@\"\n",
            runs.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, runs)
}

/// Docker's container starts (their `dgrid.task` label), streamed while workers run: Docker keeps
/// only the last 256 events, so they are read as they happen.
pub struct ContainerStarts {
    events: std::process::Child,
    reader: std::thread::JoinHandle<String>,
}

impl ContainerStarts {
    pub fn watch() -> ContainerStarts {
        let mut events = std::process::Command::new("docker")
            .args([
                "events",
                "--filter",
                "type=container",
                "--filter",
                "event=start",
            ])
            .args(["--format", "{{index .Actor.Attributes \"dgrid.task\"}}"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stream = events.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = std::io::Read::read_to_string(&mut stream, &mut all);
            all
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        ContainerStarts { events, reader }
    }

    /// How many times each task whose id starts with `prefix` was started.
    pub fn stop(mut self, prefix: &str) -> std::collections::BTreeMap<String, usize> {
        std::thread::sleep(std::time::Duration::from_millis(500));
        self.events.kill().unwrap();
        self.events.wait().unwrap();
        let mut started = std::collections::BTreeMap::new();
        let all = self.reader.join().unwrap();
        for task in all.lines().filter(|t| t.starts_with(prefix)) {
            *started.entry(task.to_string()).or_default() += 1;
        }
        started
    }
}

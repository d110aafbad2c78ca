//! `git dgrid work` with real Docker and real git remotes: results, timeouts, output caps, crashes at
//! the worst moments, many workers, a dead Docker daemon, signals and push economy.

mod common;
use common::{
    assert_success, count_pushes, docker_ready, find_task, pushes, wait_exit, wait_for, wait_state,
    words, Env, TaskJson,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

const IMAGE: &str = "dgrid/busybox:latest";

/// A task for `submit -` in the test image (shorthand: nearly every test here submits some).
fn spec(id: &str, command: &str, timeout: u64) -> String {
    TaskJson::new(id)
        .image(IMAGE)
        .command(command)
        .timeout(timeout)
        .to_string()
}

fn submit(env: &Env, clone: &Path, lines: &[String]) {
    let out = env.submit_lines(clone, &[], lines);
    assert_success(&out);
}

/// A grid, a clone to submit from, and a post-receive log counting pushes.
fn setup(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let grid = env.grid("g.git");
    let log = count_pushes(&grid);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    (grid, clone, log)
}

/// Heartbeat every second, a short lease, no skew margin: dead nodes are noticed in seconds.
fn fast_lease(lease: &'static str) -> [&'static str; 6] {
    [
        "--heartbeat-interval",
        "1",
        "--lease",
        lease,
        "--clock-skew",
        "0",
    ]
}

fn worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> std::process::Command {
    worker_in(env, grid, node, &format!("state-{node}"), extra)
}

/// A worker with its own state dir `state`.
fn worker_in(
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

fn run_worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> std::process::Output {
    worker(env, grid, node, extra).output().unwrap()
}

fn containers_with_label(label: &str) -> Vec<String> {
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

fn remove_containers(label: &str) {
    for id in containers_with_label(label) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &id])
            .output();
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:x}", std::process::id(), fastrand_u32())
}

fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

#[test]
fn end_to_end_results() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("e2e");
    let id = |name: &str| format!("{p}-{name}");
    submit(
        &env,
        &clone,
        &[
            spec(&id("hello"), "echo hello", 60),
            spec(&id("exit3"), "echo bye >&2; exit 3", 60),
            spec(&id("slow"), "sleep 60", 2),
            spec(&id("big"), "head -c 10000000 /dev/zero | tr '\\0' x", 120),
            spec(&id("bytes"), "printf '\\377\\376abc'", 60),
            spec(&id("net"), "ls /sys/class/net; wget -q -T 2 -O- http://example.invalid/ && echo REACHED || echo UNREACHABLE", 60),
            TaskJson::new(&id("envs"))
                .image(IMAGE)
                .command("echo $GREETING $DOCKER_HOST")
                .set(
                    "env",
                    serde_json::json!({"GREETING": "hi", "DOCKER_HOST": "tcp://127.0.0.1:9"}),
                )
                .to_string(),
            spec(&id("env"), "env", 60),
        ],
    );
    let out = worker(&env, &grid, "e2e-node", &["--until-empty", "--slots", "2"])
        .env("GIT_TOKEN", "tok-s3cr3t-1234")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains('\x1b') && !log.contains(" running 0s of "),
        "no live lines in a pipe: {log}"
    );

    let (state, hello) = find_task(&env, &grid, &id("hello")).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(hello["status"], "success");
    assert_eq!(hello["exit_code"], 0);
    assert_eq!(hello["stdout"], "hello\n");
    assert_eq!(hello["node_id"], "e2e-node");
    assert_eq!(hello["attempt"], 1);
    assert_eq!(hello["task"]["id"], id("hello").as_str());
    for field in [
        "timestamp",
        "started_at",
        "finished_at",
        "duration_ms",
        "stdout_info",
        "stderr_info",
    ] {
        assert!(!hello[field].is_null(), "{field} missing: {hello}");
    }

    let (state, exit3) = find_task(&env, &grid, &id("exit3")).unwrap();
    assert_eq!(
        (state.as_str(), &exit3["status"], &exit3["exit_code"]),
        ("failed", &"failed".into(), &3.into())
    );
    assert_eq!(exit3["stderr"], "bye\n");

    let (state, slow) = find_task(&env, &grid, &id("slow")).unwrap();
    assert_eq!(
        (state.as_str(), &slow["status"]),
        ("failed", &"timeout".into())
    );
    assert!(slow["exit_code"].is_null());
    assert!(
        slow["duration_ms"].as_u64().unwrap() < 30_000,
        "killed at its timeout: {slow}"
    );
    assert!(
        containers_with_label(&format!("dgrid.task={}", id("slow"))).is_empty(),
        "container left behind"
    );

    let (state, big) = find_task(&env, &grid, &id("big")).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(big["stdout"].as_str().unwrap().len(), 65536);
    assert_eq!(big["stdout_info"]["total_bytes"], 10_000_000);
    assert_eq!(big["stdout_info"]["truncated"], true);
    let expected: String = Sha256::digest(vec![b'x'; 10_000_000])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(big["stdout_info"]["sha256"], expected.as_str());

    let (_, bytes) = find_task(&env, &grid, &id("bytes")).unwrap();
    assert_eq!(bytes["stdout"], "\u{fffd}\u{fffd}abc");
    assert_eq!(bytes["stdout_info"]["total_bytes"], 5);

    let (_, net) = find_task(&env, &grid, &id("net")).unwrap();
    assert_eq!(
        net["stdout"], "lo\nUNREACHABLE\n",
        "only loopback, no way out: {net}"
    );

    // A task's environment is the container's, never the docker CLI's.
    let (state, envs) = find_task(&env, &grid, &id("envs")).unwrap();
    assert_eq!(
        (state.as_str(), &envs["stdout"]),
        ("completed", &"hi tcp://127.0.0.1:9\n".into()),
        "{envs}"
    );

    // The token reaches neither the container, nor the logs, nor anything on disk.
    let (_, envdump) = find_task(&env, &grid, &id("env")).unwrap();
    assert!(!envdump["stdout"].as_str().unwrap().contains("tok-s3cr3t"));
    assert!(!log.contains("tok-s3cr3t"));
    let grep = std::process::Command::new("grep")
        .args(["-r", "tok-s3cr3t"])
        .arg(env.tmp.path())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "token on disk: {}",
        String::from_utf8_lossy(&grep.stdout)
    );

    // Every file the worker wrote passes validation, and the node says it stopped.
    let node: serde_json::Value =
        serde_json::from_str(&env.git(&grid, &["show", "main:nodes/e2e-node.json"])).unwrap();
    assert_eq!(node["state"], "stopped");
    assert_eq!(node["completed"], 6);
    assert_eq!(node["failed"], 2);
    env.dgrid_ok(&grid, &["validate"], 0);
    assert!(containers_with_label("dgrid.node=e2e-node").is_empty());
}

#[test]
fn a_killed_workers_task_is_taken_over_with_attempt_2() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("kill9");
    submit(&env, &clone, &[spec(&id, "sleep 4; echo done", 120)]);
    let timing = fast_lease("3");
    let mut a = worker(&env, &grid, "victim", &timing)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 60));
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    remove_containers("dgrid.node=victim"); // what the victim's restart would do
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let out = run_worker(&env, &grid, "rescuer", &extra);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("took {id} back from victim")),
        "{log}"
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}\n{log}");
    assert_eq!(result["attempt"], 2);
    assert_eq!(result["node_id"], "rescuer");
    assert_eq!(result["stdout"], "done\n");
}

#[test]
fn a_result_spooled_before_a_crash_is_pushed_on_restart() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("spool");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    let out = worker(&env, &grid, "crashy", &["--once"])
        .env("DGRID_FAILPOINT", "after-spool")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the failpoint aborts the worker");
    assert_eq!(
        find_task(&env, &grid, &id).unwrap().0,
        "in_progress",
        "the result was not pushed"
    );
    let out = run_worker(&env, &grid, "crashy", &["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "nothing new to claim: {log}");
    assert!(log.contains("pushing 1 result(s) spooled"), "{log}");
    assert!(
        !log.contains("claimed"),
        "the task was not run again: {log}"
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(result["attempt"], 1);
    assert_eq!(result["stdout"], "once\n");
    assert!(result.get("late_results").is_none());
    let spool = env.path("state-crashy/nodes/crashy/spool");
    assert_eq!(
        std::fs::read_dir(spool).unwrap().count(),
        0,
        "spool emptied"
    );
}

#[test]
fn four_workers_run_a_hundred_tasks_exactly_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, log) = setup(&env);
    let p = unique("many");
    let ids: Vec<String> = (0..100).map(|i| format!("{p}-{i:03}")).collect();
    submit(
        &env,
        &clone,
        &ids.iter()
            .map(|id| spec(id, "echo ok", 60))
            .collect::<Vec<_>>(),
    );
    // Docker keeps only the last 256 events: stream them while the workers run.
    let mut events = std::process::Command::new("docker")
        .args([
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=start",
        ])
        .args(["--format", "{{index .Actor.Attributes \"dgrid.task\"}}"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = events.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut all);
        all
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = pushes(&log);
    let workers: Vec<Child> = (0..4)
        .map(|i| {
            worker(&env, &grid, &format!("w{i}"), &["--until-empty"])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(wait_exit(&mut w, 300).success());
    }
    std::thread::sleep(Duration::from_millis(500));
    events.kill().unwrap();
    events.wait().unwrap();
    let events = reader.join().unwrap();
    let mut started: std::collections::BTreeMap<String, usize> = Default::default();
    for task in events.lines().filter(|t| t.starts_with(&p)) {
        *started.entry(task.to_string()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            started.get(id),
            Some(&1),
            "{id} started {:?} times",
            started.get(id)
        );
        let (state, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(
            (state.as_str(), &result["stdout"]),
            ("completed", &"ok\n".into())
        );
    }
    let used = pushes(&log) - before;
    assert!(used as f64 <= 1.2 * 100.0, "{used} pushes for 100 tasks");
}

#[test]
fn push_economy_of_a_steady_worker() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, log) = setup(&env);
    let p = unique("steady");
    submit(
        &env,
        &clone,
        &(0..30)
            .map(|i| spec(&format!("{p}-{i}"), "true", 60))
            .collect::<Vec<_>>(),
    );
    let before = pushes(&log);
    let out = run_worker(&env, &grid, "steady", &["--until-empty"]);
    assert!(out.status.success());
    let used = pushes(&log) - before;
    assert!(
        used <= 36,
        "{used} pushes for 30 tasks (at most 1.2 per task)"
    );
}

#[test]
fn an_idle_worker_pushes_only_its_heartbeats() {
    let env = Env::new();
    let (grid, _, log) = setup(&env);
    // No Docker needed: nothing to run.
    let mut w = worker(&env, &grid, "idle", &["--heartbeat-interval", "30"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(60));
    let during = pushes(&log);
    unsafe_kill(&w, "TERM");
    assert!(wait_exit(&mut w, 300).success());
    assert!(
        (1..=3).contains(&during),
        "{during} pushes in 60 s with a 30 s heartbeat"
    );
    let node: serde_json::Value =
        serde_json::from_str(&env.git(&grid, &["show", "main:nodes/idle.json"])).unwrap();
    assert_eq!(node["state"], "stopped");
}

/// Waits up to `secs` for a worker spawned with its stderr piped to exit; returns how, and its log.
fn exit_and_log(child: &mut Child, secs: u64) -> (std::process::ExitStatus, String) {
    let status = wait_exit(child, secs);
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    (status, log)
}

fn unsafe_kill(child: &Child, signal: &str) {
    std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

#[test]
fn sigterm_lets_tasks_finish_then_kills_and_releases_them() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let quick = unique("quick");
    let long = unique("long");
    submit(
        &env,
        &clone,
        &[
            spec(&quick, "sleep 2; echo finished", 60),
            spec(&long, "sleep 600", 900),
        ],
    );
    let mut w = worker(&env, &grid, "term", &["--slots", "2", "--grace", "6"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(60, || {
        find_task(&env, &grid, &quick).is_some_and(|(s, _)| s == "in_progress")
            && find_task(&env, &grid, &long).is_some_and(|(s, _)| s == "in_progress")
    }));
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert_eq!(
        find_task(&env, &grid, &quick).unwrap().0,
        "completed",
        "finished within the grace: {log}"
    );
    let (state, spec) = find_task(&env, &grid, &long).unwrap();
    assert_eq!(state, "queue", "released: {log}");
    assert!(
        spec.get("claim").is_none() && spec.get("attempts").is_none(),
        "no attempt used: {spec}"
    );
    assert!(containers_with_label(&format!("dgrid.task={long}")).is_empty());
}

/// A unix-socket proxy to the real Docker daemon that the test can cut, to play a daemon that dies.
struct DockerProxy {
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DockerProxy {
    fn start(path: PathBuf) -> DockerProxy {
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

    fn cut(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn a_dead_docker_daemon_releases_the_task_and_the_worker_carries_on() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let socket = env.path("docker.sock");
    let proxy = DockerProxy::start(socket.clone());
    let host = format!("unix://{}", socket.display());
    let mut w = worker(&env, &grid, "flaky", &[])
        .env("DOCKER_HOST", &host)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The worker is up (it checked docker and registered), then the daemon goes away.
    assert!(node_registered(&env, &grid, "flaky", 60));
    proxy.cut();
    let id = unique("nodaemon");
    submit(&env, &clone, &[spec(&id, "echo hi", 60)]);
    // Claimed, failed to start, released without using an attempt; the node says why.
    assert!(wait_for(60, || {
        let node = env
            .cmd("git", &grid)
            .args(["show", "main:nodes/flaky.json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&node.stdout).contains("\"problem\"")
    }));
    let (state, spec) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "queue", "{spec}");
    assert!(spec.get("attempts").is_none(), "no attempt used: {spec}");
    assert!(w.try_wait().unwrap().is_none(), "the worker keeps running");
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(log.contains("Cannot connect to the Docker daemon"), "{log}");
    assert!(log.contains(&format!("cannot run {id}")), "{log}");
    // With a daemon again, the same task runs as attempt 1.
    let out = run_worker(&env, &grid, "flaky", &["--until-empty"]);
    assert_success(&out);
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (state.as_str(), &result["attempt"]),
        ("completed", &1.into())
    );
}

#[test]
fn a_worker_rides_out_a_remote_that_goes_away() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (daemon, grid) = env.served_grid(true);
    let base = env.path("srv");
    let (port, url) = (daemon.port, daemon.url("g.git"));
    let mut w = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args([
            "work",
            "--node-id",
            "steadfast",
            "--repo",
            &url,
            "--poll-interval",
            "1",
            "--heartbeat-interval",
            "2",
        ])
        .arg("--state-dir")
        .arg(env.path("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "steadfast", 30));
    drop(daemon); // the server goes away for a while
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        w.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    let daemon = common::Daemon::start_on(&env, &base, true, Some(port));
    let clone = env.clone(&url, "c");
    let id = unique("after-outage");
    submit(&env, &clone, &[spec(&id, "echo back", 60)]);
    assert!(wait_state(&env, &grid, &id, "completed", 90));
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(
        log.contains("trying again") || log.contains("cannot reach"),
        "the outage was reported: {log}"
    );
    drop(daemon);
}

#[test]
fn two_workers_with_one_node_id_and_state_dir_refuse() {
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let mut first = worker(&env, &grid, "twin", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "twin", 30));
    let second = run_worker(&env, &grid, "twin", &["--once"]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr)
        .contains("another worker is already running as node \"twin\""));
    unsafe_kill(&first, "TERM");
    assert!(wait_exit(&mut first, 300).success());
}

/// Waits up to `secs` for `node`'s record to be on `main` of `grid`.
fn node_registered(env: &Env, grid: &Path, node: &str, secs: u64) -> bool {
    let rev = format!("main:nodes/{node}.json");
    wait_for(secs, || {
        env.cmd("git", grid)
            .args(["cat-file", "-e", &rev])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    })
}

fn node_session(env: &Env, grid: &Path, node: &str) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&env.git(grid, &["show", &format!("main:nodes/{node}.json")]))
            .unwrap();
    record["session"].as_str().unwrap().to_string()
}

/// One node id on two state dirs (a NODE_ID copied to a second machine): the second worker refuses
/// while the first is alive, and leaves its record alone; once the first stops, the id is free.
#[test]
fn a_node_id_in_use_elsewhere_is_refused() {
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let mut first = worker(&env, &grid, "copied", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "copied", 30));
    let session = node_session(&env, &grid, "copied");
    let second = worker_in(&env, &grid, "copied", "elsewhere", &["--once"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{log}");
    assert!(
        log.contains("node id \"copied\" is in use by another worker"),
        "{log}"
    );
    assert_eq!(node_session(&env, &grid, "copied"), session);
    unsafe_kill(&first, "TERM");
    assert!(wait_exit(&mut first, 300).success());
    let again = worker_in(&env, &grid, "copied", "elsewhere", &["--once"])
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(1),
        "nothing to do: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_ne!(node_session(&env, &grid, "copied"), session);
}

/// A worker silent for longer than its lease (SIGSTOP) whose node id another process took over
/// stops when it wakes up, instead of fighting over the id; the task ends once, elsewhere.
#[test]
fn a_worker_whose_node_id_was_taken_over_stops() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("frozen");
    submit(&env, &clone, &[spec(&id, "sleep 6; echo done", 120)]);
    let timing = fast_lease("3");
    let mut frozen = worker(&env, &grid, "frozen", &timing)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 60));
    unsafe_kill(&frozen, "STOP");
    std::thread::sleep(Duration::from_secs(5));
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let successor = worker_in(&env, &grid, "frozen", "successor", &extra)
        .output()
        .unwrap();
    unsafe_kill(&frozen, "CONT");
    assert_success(&successor);
    let (status, log) = exit_and_log(&mut frozen, 60);
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("took over node id \"frozen\""), "{log}");
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}");
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&2.into(), &"done\n".into())
    );
    assert!(result.get("late_results").is_none(), "{result}");
    assert!(containers_with_label(&format!("dgrid.task={id}")).is_empty());
}

/// On a terminal (a pty from `script`), each running task has a live line: its id, the time it has
/// run and its timeout; the log lines print above them.
#[test]
fn a_worker_on_a_terminal_shows_a_live_line_per_task() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("on-tty");
    submit(&env, &clone, &[spec(&id, "sleep 3", 120)]);
    let command = format!(
        "{} work --node-id tty --repo {} --state-dir {} --until-empty --poll-interval 1",
        env!("CARGO_BIN_EXE_git-dgrid"),
        grid.display(),
        env.path("state-tty").display()
    );
    let out = env
        .cmd("script", env.tmp.path())
        .args(["-qfec", &command, "/dev/null"])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("{id} running 1s of 2m 0s"))
            || shown.contains(&format!("{id} running 2s of 2m 0s")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("claimed {id} (attempt 1)")),
        "{shown}"
    );
}

/// Installs a post-receive hook on `grid` that runs `action` once, for the first push that claims
/// something: after the remote has taken it, before git on the worker hears back.
fn after_first_claim(grid: &Path, action: &str) {
    std::fs::write(
        grid.join("hooks/post-receive"),
        format!(
            "#!/bin/sh\nwhile read old new ref; do\n  if git log -1 --format=%B \"$new\" | grep -q 'claim ' && mkdir \"$GIT_DIR/../claimed-once\" 2>/dev/null; then {action}; fi\ndone\n"
        ),
    )
    .unwrap();
}

/// The remote takes a claim but hangs before answering; git on the worker is stopped by
/// DGRID_GIT_TIMEOUT. The next read finds the claim commit in main's history: the claim stands
/// and the task runs, once.
#[test]
fn a_claim_whose_answer_was_lost_stands_and_runs_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    after_first_claim(&grid, "sleep 60");
    let mut w = worker(&env, &grid, "unanswered", &[])
        .env("DGRID_GIT_TIMEOUT", "3")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "unanswered", 30));
    let id = unique("unanswered");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    let done = wait_state(&env, &grid, &id, "completed", 90);
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 120);
    assert!(done && status.success(), "{log}");
    assert!(env.path("claimed-once").exists(), "the remote hung: {log}");
    assert!(!log.contains("put "), "{log}");
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&1.into(), &"once\n".into())
    );
}

/// The remote takes a claim, then goes away before answering and stays away until the worker gives
/// up on that transition. Back, the worker finds its own claim on a task it does not hold, puts
/// it back without using an attempt, and then runs it once.
#[test]
fn a_claim_that_landed_unknown_goes_back_and_runs_once() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let away = env.path("g.git.away");
    after_first_claim(
        &grid,
        &format!("mv \"$(pwd -P)\" {}; sleep 60", away.display()),
    );
    let mut w = worker(&env, &grid, "unaware", &[])
        .env("DGRID_GIT_TIMEOUT", "3")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(node_registered(&env, &grid, "unaware", 30));
    let id = unique("unaware");
    submit(&env, &clone, &[spec(&id, "echo once", 60)]);
    assert!(wait_for(60, || away.exists()));
    std::thread::sleep(Duration::from_secs(8)); // the timeout, then fetches that fail
    std::fs::rename(&away, &grid).unwrap();
    let done = wait_state(&env, &grid, &id, "completed", 90);
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 120);
    assert!(done && status.success(), "{log}");
    assert!(
        log.contains(&format!("put {id} back in the queue")),
        "{log}"
    );
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["attempt"], &result["stdout"]),
        (&1.into(), &"once\n".into())
    );
}

/// A worker's restart removes the leftover containers of its own node folder in the state dir, and
/// never those of another worker sharing the node id (another grid, another state dir).
#[test]
fn a_restart_removes_only_the_containers_of_its_own_state_dir() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    let start = |state: &str| -> String {
        let node_dir = env.path(state).join("nodes/sharer");
        let out = std::process::Command::new("docker")
            .args(["run", "--detach", "--label=dgrid.node=sharer"])
            .arg(format!("--label=dgrid.node-dir={}", node_dir.display()))
            .args(["--entrypoint=sh", IMAGE, "-c", "sleep 120"])
            .output()
            .unwrap();
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let alive = |id: &str| {
        let out = std::process::Command::new("docker")
            .args(["ps", "--quiet", "--no-trunc", "--filter"])
            .arg(format!("id={id}"))
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    let ours = start("state-sharer");
    let theirs = start("elsewhere");
    let out = run_worker(&env, &grid, "sharer", &["--once"]);
    let theirs_survived = alive(&theirs);
    let ours_survived = alive(&ours);
    for id in [&ours, &theirs] {
        let _ = std::process::Command::new("docker")
            .args(["rm", "--force", id])
            .output();
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ours_survived, "the leftover of this state dir is removed");
    assert!(
        theirs_survived,
        "another state dir's container is left alone"
    );
}

/// Three workers, one of them killed (SIGKILL) at a random instant and started again every 0.3 to
/// 1.5 s for 20 s, while they run a queue: in the end every task has exactly one result file, all
/// completed, nothing is left queued, in progress or in a spool, the tree validates, and every
/// restart was accepted under its own node id.
#[test]
fn workers_killed_at_random_instants_lose_nothing() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("chaos");
    let ids: Vec<String> = (0..30).map(|i| format!("{p}-{i:02}")).collect();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            TaskJson::new(id)
                .image(IMAGE)
                .command("echo ok")
                .set("max_attempts", 50)
                .to_string()
        })
        .collect();
    submit(&env, &clone, &lines);
    let nodes = ["chaos-a", "chaos-b", "chaos-c"];
    let timing = fast_lease("3");
    let logs: Vec<PathBuf> = nodes
        .iter()
        .map(|n| env.path(&format!("{n}.log")))
        .collect();
    let spawn = |i: usize| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&logs[i])
            .unwrap();
        worker(&env, &grid, nodes[i], &timing)
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let mut workers: Vec<Child> = (0..nodes.len()).map(spawn).collect();
    // The instants of the kills and who is killed: replayable from the printed seed.
    let seed: u64 = match std::env::var("DGRID_TEST_SEED") {
        Ok(s) => s.trim().parse().expect("DGRID_TEST_SEED is a number"),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("chaos seed: {seed} (replay with DGRID_TEST_SEED={seed})");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut next = |n: u32| rng.u32(0..n);
    let chaos_until = std::time::Instant::now() + Duration::from_secs(20);
    let mut kills = 0;
    while std::time::Instant::now() < chaos_until {
        std::thread::sleep(Duration::from_millis(300 + u64::from(next(1200))));
        let i = next(nodes.len() as u32) as usize;
        let _ = workers[i].kill();
        let _ = workers[i].wait();
        kills += 1;
        workers[i] = spawn(i);
    }
    std::thread::sleep(Duration::from_secs(1)); // the last one started is up and listening
    let all_done = wait_for(180, || {
        env.ids_in(&grid, "main", "completed").len() == ids.len()
    });
    for w in &workers {
        unsafe_kill(w, "TERM");
    }
    let statuses: Vec<_> = workers.iter_mut().map(|w| wait_exit(w, 120)).collect();
    let log: String = logs
        .iter()
        .map(|l| std::fs::read_to_string(l).unwrap_or_default())
        .collect();
    assert!(
        all_done,
        "not all tasks completed after {kills} kills:\n{log}"
    );
    assert!(kills >= 10, "{kills} kills");
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}\n{log}");
    assert!(!log.contains("is in use by another worker"), "{log}");
    assert_eq!(env.ids_in(&grid, "main", "completed"), ids);
    for state in ["queue", "in_progress", "failed"] {
        assert!(env.ids_in(&grid, "main", state).is_empty(), "{state}");
    }
    for id in &ids {
        let (_, result) = find_task(&env, &grid, id).unwrap();
        assert_eq!(result["stdout"], "ok\n", "{result}");
    }
    env.dgrid_ok(&grid, &["validate"], 0);
    for node in nodes {
        let spool = env.path(&format!("state-{node}/nodes/{node}/spool"));
        let left: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{node}'s spool still holds {left:?}");
    }
}

/// A healthy node's long task is never taken back: heartbeats renew its lease.
#[test]
fn leases_are_renewed_while_a_task_runs() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("long-lease");
    submit(&env, &clone, &[spec(&id, "sleep 9; echo finished", 60)]);
    let timing = fast_lease("3");
    let mut runner = worker(&env, &grid, "runner", &timing)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "in_progress", 60));
    // A second node watches the whole time; it must not take the task.
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    let mut watcher = worker(&env, &grid, "watcher", &extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &id, "completed", 60));
    unsafe_kill(&watcher, "TERM");
    unsafe_kill(&runner, "TERM");
    let (status, log) = exit_and_log(&mut watcher, 300);
    assert!(status.success() && wait_exit(&mut runner, 300).success());
    assert!(
        !log.contains("took"),
        "the watcher took a healthy node's task: {log}"
    );
    let (_, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(
        (&result["node_id"], &result["attempt"]),
        (&"runner".into(), &1.into())
    );
}

/// A result that arrives after its task was taken over and finished elsewhere is kept as a late
/// result: never dropped, never a second file.
#[test]
fn a_late_result_is_recorded_once_beside_the_result() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("late");
    submit(&env, &clone, &[spec(&id, "echo first", 60)]);
    let timing = fast_lease("2");
    // The first node runs it, spools the result and dies before pushing.
    let out = worker(&env, &grid, "slowpoke", &timing)
        .env("DGRID_FAILPOINT", "after-spool")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Another node takes it back and completes it as attempt 2.
    let mut extra = timing.to_vec();
    extra.extend(["--max-tasks", "1"]);
    // (Node ids are unique across tests: a worker removes the containers of its node id.)
    let out = run_worker(&env, &grid, "late-rescuer", &extra);
    assert_success(&out);
    // The first node comes back and pushes its spooled result: it is late.
    let out = run_worker(&env, &grid, "slowpoke", &["--once"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (state, result) = find_task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed");
    assert_eq!(
        (&result["node_id"], &result["attempt"]),
        (&"late-rescuer".into(), &2.into())
    );
    let late = result["late_results"].as_array().expect("late_results");
    assert_eq!(late.len(), 1);
    assert_eq!(
        (&late[0]["node_id"], &late[0]["attempt"], &late[0]["status"]),
        (&"slowpoke".into(), &1.into(), &"success".into())
    );
    let listing = env.git(&grid, &["ls-tree", "-r", "--name-only", "main", "tasks/"]);
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.ends_with(&format!("/{id}.json")))
            .count(),
        1
    );
    // Pushing it again (a second restart) changes nothing.
    let before = env.git(&grid, &["rev-parse", "main:tasks"]);
    let _ = run_worker(&env, &grid, "slowpoke", &["--once"]);
    assert_eq!(env.git(&grid, &["rev-parse", "main:tasks"]), before);
}

#[test]
fn submit_wait_follows_tasks_to_their_end() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let mut w = worker(&env, &grid, "waiter", &[])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ok = env.dgrid(
        &clone,
        &[
            "submit",
            "--wait",
            "--poll-interval",
            "1",
            "--image",
            IMAGE,
            "--",
            "echo fine",
        ],
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = env.dgrid(
        &clone,
        &[
            "submit",
            "--wait",
            "--poll-interval",
            "1",
            "--image",
            IMAGE,
            "--",
            "exit 4",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(1),
        "a failed task makes --wait exit 1"
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("failed 1"));
    unsafe_kill(&w, "TERM");
    assert!(wait_exit(&mut w, 300).success());
}

#[test]
fn cancel_stops_a_running_task_and_retry_runs_it_again() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let running = unique("to-cancel");
    let queued = unique("never-run");
    submit(&env, &clone, &[spec(&running, "sleep 120", 300)]);
    let mut w = worker(&env, &grid, "canceller", &[])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_state(&env, &grid, &running, "in_progress", 60));
    submit(
        &env,
        &clone,
        &[spec(&queued, "echo hi", 60)
            .replace(r#""timeout""#, r#""labels":["nowhere"],"timeout""#)],
    );
    let out = env.dgrid_ok(
        &clone,
        &["cancel", &running, &queued, "--reason", "changed my mind"],
        0,
    );
    assert!(out.contains(&format!("cancelled {running}")));
    let (state, result) = find_task(&env, &grid, &running).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"cancelled".into())
    );
    assert_eq!(result["node_id"], "canceller");
    assert!(result["stderr"]
        .as_str()
        .unwrap()
        .contains("changed my mind"));
    assert_eq!(
        find_task(&env, &grid, &queued).unwrap().1["status"],
        "cancelled"
    );
    // The node stops the container on its next look, and records nothing more.
    let label = format!("dgrid.task={running}");
    assert!(
        wait_for(60, || containers_with_label(&label).is_empty()),
        "the container was stopped"
    );
    // Finished tasks cannot be cancelled; unknown ids are a clean no.
    assert_eq!(
        env.dgrid(&clone, &["cancel", &running]).status.code(),
        Some(1)
    );
    assert_eq!(
        env.dgrid(&clone, &["cancel", "no-such-task"]).status.code(),
        Some(1)
    );
    // Retry puts it back with fresh attempts, and it runs again.
    let short = unique("retried");
    submit(
        &env,
        &clone,
        &[spec(&short, "cat /proc/sys/kernel/random/uuid; exit 1", 60)],
    );
    assert!(wait_state(&env, &grid, &short, "failed", 60));
    let first = find_task(&env, &grid, &short).unwrap().1["stdout"].clone();
    env.dgrid_ok(&clone, &["retry", &short], 0);
    assert!(
        wait_for(60, || find_task(&env, &grid, &short)
            .is_some_and(|(s, r)| s == "failed" && r["stdout"] != first)),
        "ran again"
    );
    assert_eq!(
        find_task(&env, &grid, &short).unwrap().1["attempt"],
        1,
        "attempts start over"
    );
    assert_eq!(
        env.dgrid(&clone, &["retry", "no-such-task"]).status.code(),
        Some(1)
    );
    unsafe_kill(&w, "TERM");
    let (status, log) = exit_and_log(&mut w, 300);
    assert!(status.success(), "{log}");
    assert!(
        log.contains(&format!("stopped {running}: it is no longer ours")),
        "{log}"
    );
    let (state, result) = find_task(&env, &grid, &running).unwrap();
    assert_eq!(
        (state.as_str(), &result["status"]),
        ("failed", &"cancelled".into()),
        "nothing overwrote the cancellation"
    );
}

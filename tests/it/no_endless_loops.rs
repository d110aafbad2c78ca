//! Nothing loops forever: tasks no node can run end (validation refuses what docker refuses;
//! start failures are counted per task across nodes), and a refusal of the remote or a stop
//! request while it is unreachable ends a worker at once. Real git, real Docker, a real gitolite.

use crate::common;
use crate::common::{assert_success, count_pushes, docker_ready, find_task, pushes, Env, TaskJson};
use git_dgrid::layout::node_path;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IMAGE: &str = "dgrid/busybox:latest";

fn spec(id: &str, command: &str) -> TaskJson {
    TaskJson::new(id).image(IMAGE).command(command).timeout(60)
}

fn setup(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let grid = env.grid("g.git");
    let log = count_pushes(&grid);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    (grid, clone, log)
}

fn worker(env: &Env, grid: &Path, node: &str, extra: &[&str]) -> std::process::Command {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    cmd.args(["work", "--node-id", node, "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path(&format!("state-{node}")))
        .args(["--pull", "never"])
        .args(extra);
    if !extra.contains(&"--poll-interval") {
        cmd.args(["--poll-interval", "1"]);
    }
    cmd
}

/// Subjects of `main`'s history on the bare `grid`, oldest first.
fn history(env: &Env, grid: &Path) -> Vec<String> {
    let log = env.git(grid, &["log", "--reverse", "--format=%s", "main"]);
    log.lines().map(str::to_string).collect()
}

fn claims_of(history: &[String], id: &str) -> usize {
    let word = format!("claim {id}");
    history
        .iter()
        .map(|s| {
            s.split([',', ' '])
                .collect::<Vec<_>>()
                .windows(2)
                .filter(|w| format!("{} {}", w[0], w[1]) == word)
                .count()
        })
        .sum()
}

#[test]
fn resources_docker_refuses_are_refused_at_submit() {
    let env = Env::new();
    let (_, clone, _) = setup(&env);
    for (resources, field) in [
        (r#"{"cpus": 0.001}"#, "resources.cpus"),
        (r#"{"memory": "1k"}"#, "resources.memory"),
        (r#"{"memory": 6291455}"#, "resources.memory"),
    ] {
        let task = spec("tiny", "true").raw("resources", resources).to_string();
        let out = env.submit_lines(&clone, &[], &[task]);
        assert_eq!(out.status.code(), Some(1), "{resources}");
        let stderr = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stderr.contains(field) && stderr.contains("docker's minimum"),
            "{resources}: {stderr}"
        );
    }
    let ok = spec("least", "true")
        .raw("resources", r#"{"cpus": 0.01, "memory": "6m"}"#)
        .to_string();
    assert_success(&env.submit_lines(&clone, &[], &[ok]));
}

#[test]
fn caps_below_dockers_minimums_are_refused_at_start() {
    let env = Env::new();
    let (grid, _, _) = setup(&env);
    for (flag, value) in [("--max-memory", "1m"), ("--max-cpus", "0.001")] {
        let out = worker(&env, &grid, "tiny", &["--once", flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("docker refuses"), "{flag}: {stderr}");
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_task_asking_for_more_cpus_than_the_host_has_runs_on_all_of_them() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let host = std::thread::available_parallelism().unwrap().get();
    let task = spec("greedy", "echo ran")
        .raw("resources", &format!(r#"{{"cpus": {}}}"#, host + 1))
        .to_string();
    assert_success(&env.submit_lines(&clone, &[], &[task]));
    let max = (host + 2).to_string();
    let out = worker(&env, &grid, "wide", &["--until-empty", "--max-cpus", &max])
        .output()
        .unwrap();
    assert_success(&out);
    let (state, result) = find_task(&env, &grid, "greedy").unwrap();
    assert_eq!(state, "completed", "{result}");
    assert_eq!(result["stdout"], "ran\n");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_typo_image_with_high_priority_fails_as_unrunnable_and_starves_nothing() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, log) = setup(&env);
    let typo = spec("typo", "echo never")
        .image("dgrid/busybox-does-not-exist:latest")
        .set("priority", 100)
        .to_string();
    let mut lines = vec![typo];
    for i in 1..=3 {
        lines.push(spec(&format!("good-{i}"), &format!("echo good {i}")).to_string());
    }
    assert_success(&env.submit_lines(&clone, &[], &lines));
    let before = pushes(&log);
    let mut child = worker(&env, &grid, "solo", &["--until-empty"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::wait_exit(&mut child, 300);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    for i in 1..=3 {
        let (state, result) = find_task(&env, &grid, &format!("good-{i}")).unwrap();
        assert_eq!(state, "completed", "good-{i}: {result}");
    }
    let (state, result) = find_task(&env, &grid, "typo").unwrap();
    assert_eq!(state, "failed", "{result}");
    assert_eq!(result["status"], "unrunnable", "{result}");
    let said = result["stderr"].as_str().unwrap();
    assert!(
        said.contains("dgrid/busybox-does-not-exist"),
        "docker's message is kept: {said}"
    );
    let failures = result["task"]["start_failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3, "{result}");
    assert!(failures.iter().all(|f| f["node_id"] == "solo"));
    let history = history(&env, &grid);
    assert_eq!(claims_of(&history, "typo"), 3, "{history:#?}");
    // Submit, 3 results with the claims riding along, 3 failed starts, the stopped record; a
    // heartbeat or two besides.
    let pushed = pushes(&log) - before;
    assert!(pushed <= 12, "{pushed} pushes: {history:#?}");
    // The exit does not hide anything queued.
    assert!(env.ids_in(&grid, "main", "queue").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Refusals and stop requests

const GITOLITE_SHELL: &str = "/usr/share/gitolite3/gitolite-shell";

/// Whether Debian's gitolite3 is here (see tests/it/common/tools.rs; DGRID_REQUIRE_GITOLITE).
fn gitolite_ready() -> bool {
    let here = Path::new(GITOLITE_SHELL).exists()
        && std::process::Command::new("gitolite")
            .arg("help")
            .output()
            .is_ok();
    if here {
        return true;
    }
    common::missing("GITOLITE", "gitolite3 is not installed");
    false
}

/// A real gitolite serving `grid` to `w1` (`RW main$`) and `ro` (read only), reached without sshd:
/// git's ssh command is a script that runs `gitolite-shell USER` as sshd's forced command would.
struct Gitolite {
    home: PathBuf,
    ssh: PathBuf,
}

impl Gitolite {
    fn start(env: &Env) -> Gitolite {
        let home = env.path("gitolite");
        std::fs::create_dir_all(&home).unwrap();
        let gitolite = |args: &[&str]| {
            let out = env
                .cmd("gitolite", &home)
                .args(args)
                .env("HOME", &home)
                .output()
                .unwrap();
            assert_success(&out);
        };
        gitolite(&["setup", "-a", "admin"]);
        let gl = Gitolite {
            ssh: env.path("gitolite-ssh"),
            home: home.clone(),
        };
        gl.set_rules("RW main$ = w1\n    R = ro");
        gitolite(&["setup"]);
        std::fs::write(
            &gl.ssh,
            format!(
                "#!/bin/sh\n# GIT_SSH_VARIANT=simple: user@host, then the command\nfor a; do last=$a; done\n\
                 SSH_CONNECTION='127.0.0.1 1 127.0.0.1 22' SSH_ORIGINAL_COMMAND=$last HOME={home} \
                 exec {GITOLITE_SHELL} \"${{1%@*}}\"\n",
                home = gl.home.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&gl.ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        gl
    }

    fn set_rules(&self, rules: &str) {
        let conf = self.home.join(".gitolite/conf/gitolite.conf");
        std::fs::write(
            conf,
            format!("repo gitolite-admin\n    RW+ = admin\nrepo grid\n    {rules}\n"),
        )
        .unwrap();
    }

    /// `cmd` talking to this gitolite.
    fn env(&self, mut cmd: std::process::Command) -> std::process::Command {
        cmd.env("GIT_SSH_COMMAND", &self.ssh)
            .env("GIT_SSH_VARIANT", "simple");
        cmd
    }
}

fn spooled(env: &Env, node: &str) -> usize {
    let dir = env.path(&format!("state-{node}/nodes/{node}/spool"));
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count()
    })
}

#[test]
#[cfg_attr(
    not(all(have_gitolite, have_docker)),
    ignore = "needs Debian's gitolite3 (apt-get install gitolite3) and a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_read_only_worker_stops_at_once_with_refused_access_and_keeps_its_result() {
    if !docker_ready() || !gitolite_ready() {
        return;
    }
    let env = Env::new();
    let gl = Gitolite::start(&env);
    // Lay out the grid on gitolite as w1, and submit a task.
    let local = env.grid("seed.git");
    let push = gl
        .env(env.cmd("git", &local))
        .args(["push", "--quiet", "w1@gitolite:grid", "main"])
        .output()
        .unwrap();
    assert_success(&push);
    let clone = env.path("c");
    let out = gl
        .env(env.cmd("git", env.tmp.path()))
        .args(["clone", "--quiet", "w1@gitolite:grid"])
        .arg(&clone)
        .output()
        .unwrap();
    assert_success(&out);
    let out = gl
        .env(env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone))
        .args([
            "submit",
            "--id",
            "t1",
            "--image",
            IMAGE,
            "--",
            "echo spooled",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    // w1 runs it and dies right after spooling the result.
    let bare = gl.home.join("repositories/grid.git");
    let w1 = worker(&env, Path::new("w1@gitolite:grid"), "n1", &["--once"]);
    let out = gl
        .env(w1)
        .env("DGRID_FAILPOINT", "after-spool")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(spooled(&env, "n1"), 1);
    // The same node, now with read access only: refused at its first push, at once.
    let started = Instant::now();
    let ro = worker(
        &env,
        Path::new("ro@gitolite:grid"),
        "n1",
        &["--once", "--poll-interval", "60"],
    );
    let out = gl.env(ro).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused access"), "{stderr}");
    assert!(stderr.contains("DENIED"), "gitolite's own words: {stderr}");
    assert!(!stderr.contains("may have taken the change"), "{stderr}");
    // At once: no retries with pauses (a retry pauses a poll interval, 60 s here, and more).
    assert!(started.elapsed() < Duration::from_secs(60), "{stderr}");
    assert_eq!(spooled(&env, "n1"), 1, "the result stays in the spool");
    // Back with write access, the spool goes.
    let again = worker(
        &env,
        Path::new("w1@gitolite:grid"),
        "n1",
        &["--until-empty"],
    );
    assert_success(&gl.env(again).output().unwrap());
    let (state, result) = find_task(&env, &bare, "t1").unwrap();
    assert_eq!(
        (state.as_str(), &result["stdout"]),
        ("completed", &"spooled\n".into())
    );
    // Write access revoked while a worker runs: its next push is refused, and it stops at once.
    let live = worker(
        &env,
        Path::new("w1@gitolite:grid"),
        "n2",
        &["--heartbeat-interval", "1"],
    );
    let mut live = gl
        .env(live)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(common::wait_for(300, || env
        .cmd("git", &bare)
        .args(["show", &format!("main:{}", node_path("n2"))])
        .output()
        .unwrap()
        .status
        .success()));
    gl.set_rules("R = w1 ro");
    assert_success(
        &env.cmd("gitolite", &gl.home)
            .arg("setup")
            .env("HOME", &gl.home)
            .output()
            .unwrap(),
    );
    let status = common::wait_exit(&mut live, 300);
    let mut stderr = String::new();
    std::io::Read::read_to_string(live.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused access"), "{stderr}");
    // A submitter without read access is refused at its first fetch, not retried.
    let mut nobody = gl.env(env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path()));
    let out = nobody
        .args(["status", "--repo", "nobody@gitolite:grid"])
        .arg("--state-dir")
        .arg(env.path("state-nobody"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused access"), "{stderr}");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn sigterm_while_the_remote_is_unreachable_ends_the_worker_within_the_grace_period() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (daemon, grid) = env.served_grid(true);
    let url = daemon.url("g.git");
    // A long poll interval: the pauses between retries are long too (120 s), so an exit well
    // before it is the grace period's, even on a loaded machine.
    let extra = [
        "--grace",
        "3",
        "--poll-interval",
        "120",
        "--heartbeat-interval",
        "2",
    ];
    let mut cmd = worker(&env, Path::new(&url), "patient", &extra);
    cmd.stderr(std::process::Stdio::piped());
    let mut w = cmd.spawn().unwrap();
    assert!(common::wait_for(300, || find_task(&env, &grid, "x")
        .is_none()
        && env
            .cmd("git", &grid)
            .args(["show", &format!("main:{}", node_path("patient"))])
            .output()
            .unwrap()
            .status
            .success()));
    drop(daemon);
    // Let it find the remote gone and settle into its retry pause.
    std::thread::sleep(Duration::from_secs(6));
    assert!(w.try_wait().unwrap().is_none(), "still running");
    let sent = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &w.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = common::wait_exit(&mut w, 300);
    let took = sent.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(w.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(took < Duration::from_secs(60), "took {took:?}: {stderr}");
    assert!(status.success(), "{stderr}");
}

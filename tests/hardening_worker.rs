//! Issue 10, the worker's side: tasks no node can run end instead of looping forever (validation
//! refuses what docker refuses; start failures are counted per task across nodes), and refusals
//! and stop requests end a worker at once. Real git, real Docker.

mod common;
use common::{assert_success, count_pushes, docker_ready, find_task, pushes, Env, TaskJson};
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
        .args(["--poll-interval", "1", "--pull", "never"])
        .args(extra);
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
    let started = Instant::now();
    let mut child = worker(&env, &grid, "solo", &["--until-empty"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = common::wait_exit(&mut child, 120);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(90), "{stderr}");
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

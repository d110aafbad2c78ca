//! What the commands print, under insta snapshots
//! (`tests/it/snapshots/it__cli_snapshots__*.snap`): each snapshot is one real run, its exit code, stdout and stderr, with what differs between runs (temp
//! paths, commit ids, times, generated ids, the host name) replaced by placeholders. A change of
//! wording shows up as a diff to review: `cargo insta review`, or `INSTA_UPDATE=always cargo test`.
//!
//! No Docker: the task that "ran" is claimed with `git dgrid claim` and given a result pushed with
//! plain git, as a worker would write it.

use crate::common;
use crate::common::{assert_success, Env, TaskJson};
use git_dgrid::layout::{task_path, State};
use std::path::{Path, PathBuf};
use std::process::Output;

/// Exit code and both streams, in one text.
fn shown(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status
            .code()
            .map_or("killed".to_string(), |c| c.to_string()),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The filters for one test's environment. Times and durations are replaced too, except in outputs
/// computed from fixed inputs (`status --now`), which call [`exact_times`].
fn settings(env: &Env) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots");
    settings.add_filter(
        &regex_escape(&env.tmp.path().display().to_string()),
        "[TMP]",
    );
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(r"\b[0-9a-f]{40}\b", "[COMMIT]");
    // Abbreviated commit ids (status and show print 10 or 12 digits).
    settings.add_filter(r"\b[0-9a-f]{10,12}\b", "[SHORT]");
    settings.add_filter(r"\bt-\d{8}-\d{6}-\d{5}-[0-9a-f]{4}\b", "[GENERATED-ID]");
    let host = git_dgrid::node::hostname();
    if host.len() > 4 {
        settings.add_filter(&regex_escape(&host), "[HOST]");
    }
    settings
}

fn with_times(mut settings: insta::Settings) -> insta::Settings {
    settings.add_filter(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]");
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const NOW: &str = "2026-01-01T12:00:00Z";

/// A grid with three submitted tasks, `alpha` claimed by node `n1` and given a result (pushed
/// with plain git, dated 11:30), `beta` and `gamma` queued.
fn ran_grid(env: &Env) -> PathBuf {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let tasks = [
        TaskJson::file("alpha")
            .command("echo hello from alpha")
            .set("priority", 1)
            .created_at("2026-01-01T10:00:00Z"),
        TaskJson::file("beta").created_at("2026-01-01T10:30:00Z"),
        TaskJson::file("gamma").created_at("2026-01-01T11:00:00Z"),
    ];
    let lines: Vec<String> = tasks.iter().map(|t| t.to_string()).collect();
    let out = env.submit_lines(&clone, &[], &lines);
    settings(env).bind(|| insta::assert_snapshot!("submit_lines", shown(&out)));
    let out = env.dgrid(&clone, &["claim", "--node-id", "n1"]);
    settings(env).bind(|| insta::assert_snapshot!("claim", shown(&out)));

    let runner = env.clone(grid.to_str().unwrap(), "runner");
    let running = task_path(State::InProgress, "alpha");
    let done = task_path(State::Completed, "alpha");
    let result = serde_json::json!({
        "task_id": "alpha", "node_id": "n1", "exit_code": 0,
        "stdout": "hello from alpha\n", "stderr": "a warning\n",
        "timestamp": "2026-01-01T11:30:00Z", "status": "success",
        "started_at": "2026-01-01T11:29:58Z", "finished_at": "2026-01-01T11:30:00Z",
        "duration_ms": 1500, "attempt": 1, "task": tasks[0].value(),
    });
    env.git(&runner, &["rm", "--quiet", &running]);
    // The first record `claim` wrote for n1 (at the real time) goes too: `status --now` is fixed.
    env.git(
        &runner,
        &["rm", "--quiet", &git_dgrid::layout::node_path("n1")],
    );
    std::fs::create_dir_all(runner.join(&done).parent().unwrap()).unwrap();
    write(
        &runner,
        &done,
        &serde_json::to_string_pretty(&result).unwrap(),
    );
    env.git(&runner, &["add", &done]);
    let commit = env
        .cmd("git", &runner)
        .args(["commit", "--quiet", "-m", "dgrid: complete alpha by n1"])
        .env("GIT_AUTHOR_DATE", "2026-01-01T11:30:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T11:30:00Z")
        .output()
        .unwrap();
    assert_success(&commit);
    env.git(&runner, &["push", "--quiet", "origin", "HEAD:main"]);
    clone
}

#[test]
fn a_task_from_submit_to_its_logs() {
    let env = Env::new();
    let clone = ran_grid(&env);
    let exact = settings(&env);
    let timed = || with_times(settings(&env));

    let out = env.dgrid(&clone, &["status", "--now", NOW]);
    exact.bind(|| insta::assert_snapshot!("status_table", shown(&out)));
    let out = env.dgrid(&clone, &["status", "--json", "--now", NOW]);
    exact.bind(|| insta::assert_snapshot!("status_json", shown(&out)));

    let out = env.dgrid(&clone, &["show", "alpha"]);
    timed().bind(|| insta::assert_snapshot!("show_completed", shown(&out)));
    let out = env.dgrid(&clone, &["show", "beta"]);
    timed().bind(|| insta::assert_snapshot!("show_queued", shown(&out)));

    let out = env.dgrid(&clone, &["logs", "alpha"]);
    exact.bind(|| insta::assert_snapshot!("logs", shown(&out)));
    let out = env.dgrid(&clone, &["logs", "alpha", "--stderr"]);
    exact.bind(|| insta::assert_snapshot!("logs_stderr", shown(&out)));
    let out = env.dgrid(&clone, &["logs", "beta"]);
    exact.bind(|| insta::assert_snapshot!("logs_not_run_yet", shown(&out)));
}

#[test]
fn submit_and_claim_print_ids_and_json() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let timed = with_times(settings(&env));

    let out = env.dgrid(
        &clone,
        &[
            "submit",
            "--id",
            "hello-1",
            "--priority",
            "5",
            "--image",
            "alpine:3",
            "--",
            "echo",
            "hello",
        ],
    );
    timed.bind(|| insta::assert_snapshot!("submit_argv", shown(&out)));
    let out = env.dgrid(&clone, &["submit", "--image", "alpine:3", "--", "echo hi"]);
    timed.bind(|| insta::assert_snapshot!("submit_generated_id", shown(&out)));

    // The priority makes the order certain (equals are picked at random).
    let out = env.dgrid(
        &clone,
        &["claim", "--node-id", "n1", "--max", "5", "--json"],
    );
    timed.bind(|| insta::assert_snapshot!("claim_json", shown(&out)));
    let out = env.dgrid(&clone, &["claim", "--node-id", "n1"]);
    timed.bind(|| insta::assert_snapshot!("claim_nothing", shown(&out)));
}

#[test]
fn validate_valid_and_invalid_files() {
    let env = Env::new();
    let dir = env.tmp.path();
    let good = write(dir, "good.json", &TaskJson::file("good").to_string());
    let bad = write(
        dir,
        "bad.json",
        &TaskJson::file("bad")
            .image("BAD IMAGE")
            .timeout("abc")
            .without("command")
            .to_string(),
    );
    let broken = write(dir, "broken.json", "{\"id\": \"broken\",");
    let [good, bad, broken] = [good, bad, broken].map(|p| p.display().to_string());
    let settings = settings(&env);

    let out = env.dgrid(dir, &["validate", &good]);
    settings.bind(|| insta::assert_snapshot!("validate_valid", shown(&out)));
    let out = env.dgrid(dir, &["validate", "--json", &good]);
    settings.bind(|| insta::assert_snapshot!("validate_valid_json", shown(&out)));
    let out = env.dgrid(dir, &["validate", &good, &bad, &broken]);
    settings.bind(|| insta::assert_snapshot!("validate_invalid", shown(&out)));
    let out = env.dgrid(dir, &["validate", "--json", &bad, &broken]);
    settings.bind(|| insta::assert_snapshot!("validate_invalid_json", shown(&out)));
}

#[test]
fn the_main_error_paths() {
    let env = Env::new();
    let clone = ran_grid(&env);
    let settings = settings(&env);
    let snap = |name: &str, args: &[&str]| {
        let out = env.dgrid(&clone, args);
        settings.bind(|| insta::assert_snapshot!(name, shown(&out)));
    };
    snap("error_show_unknown_task", &["show", "no-such-task"]);
    snap("error_logs_unknown_task", &["logs", "no-such-task"]);
    snap("error_cancel_unknown_task", &["cancel", "no-such-task"]);
    snap("error_retry_not_failed", &["retry", "beta"]);
    snap(
        "error_id_taken",
        &[
            "submit", "--id", "alpha", "--image", "alpine:3", "--", "true",
        ],
    );
    snap("error_no_such_remote", &["status", "--remote", "nope"]);
    let missing = env.path("no-such-grid.git").display().to_string();
    let state = env.path("state").display().to_string();
    snap(
        "error_unreachable_remote",
        &["status", "--repo", &missing, "--state-dir", &state],
    );
    snap("error_usage", &["submit", "--bogus"]);
    snap("error_claim_without_node", &["claim"]);

    let bad = write(
        env.tmp.path(),
        "bad-task.json",
        &TaskJson::new("bad")
            .timeout(0)
            .set("labels", "gpu")
            .to_string(),
    );
    snap(
        "error_invalid_task_file",
        &["submit", bad.to_str().unwrap()],
    );
}

/// `show` and `logs` of a task a real worker ran in Docker (skipped without a Docker engine).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn show_and_logs_of_a_task_run_in_docker() {
    if !common::docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    // Containers are named after the node: one per test process, so that runs never meet.
    let node = format!("snap-{}", std::process::id());
    env.dgrid_ok(
        &clone,
        &[
            "submit",
            "--id",
            "ran",
            "--image",
            "dgrid/busybox:latest",
            "--",
            "echo hello; echo oops >&2; exit 3",
        ],
        0,
    );
    let state = env.path("state");
    let work = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--node-id", &node, "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(&state)
        .args(["--poll-interval", "1", "--until-empty"])
        .output()
        .unwrap();
    assert_success(&work);
    env.git(&clone, &["fetch", "--quiet"]);

    let mut settings = with_times(settings(&env));
    settings.add_filter(&regex_escape(&node), "[NODE]");
    settings.add_filter(r#""duration_ms": \d+"#, r#""duration_ms": [MS]"#);
    let out = env.dgrid(&clone, &["show", "ran"]);
    settings.bind(|| insta::assert_snapshot!("show_ran_in_docker", shown(&out)));
    let out = env.dgrid(&clone, &["logs", "ran"]);
    settings.bind(|| insta::assert_snapshot!("logs_ran_in_docker", shown(&out)));
}

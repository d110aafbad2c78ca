//! Text from the repository (authors, commit subjects, field names, a task's output, docker's
//! messages) never brings a raw control character to the terminal: `show`, `validate`, the
//! pre-push hook, `logs` on a terminal and the worker's log. Hostile files are pushed with plain
//! git, around the pre-push hook.

use crate::common;
use crate::common::{all_output, AroundHook, Env, TaskJson};
use crate::worker_kit::IMAGE;
use git_dgrid::layout::{task_path, State};
use std::path::{Path, PathBuf};

/// ESC sequences (colour, window title, cursor moves), BEL, a C1 CSI and a carriage return.
const HOSTILE: &str = "\u{1b}[31mred\u{1b}]0;pwned\u{7}\u{9b}2J\rback";

fn assert_no_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what} printed raw controls {bad:?}:\n{text}"
    );
}

/// A commit on `clone` with `path` = `content`, by a hostile author and subject, pushed around
/// the hook.
fn push_hostile(env: &Env, clone: &Path, path: &str, content: &str) {
    let pushed = AroundHook::new(env, clone)
        .subject(format!("subject {HOSTILE}"))
        .author(format!("author {HOSTILE}"))
        .push([(path.to_string(), content)]);
    if let Err(why) = pushed {
        panic!("pushing {path} around the hook: {why}");
    }
}

/// A grid with `done` completed (its output full of escapes) and `evil` queued with a hostile
/// field name, both pushed by a hostile author.
fn hostile_grid(env: &Env) -> (PathBuf, PathBuf) {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let spec = TaskJson::file("done");
    let result = serde_json::json!({
        "task_id": "done", "node_id": "n1", "exit_code": 0,
        "stdout": format!("out {HOSTILE}\n"), "stderr": format!("err {HOSTILE}\n"),
        "timestamp": "2026-01-01T11:30:00Z", "status": "success",
        "started_at": "2026-01-01T11:29:58Z", "finished_at": "2026-01-01T11:30:00Z",
        "duration_ms": 1500, "attempt": 1, "task": spec.value(),
    });
    push_hostile(
        env,
        &clone,
        &task_path(State::Completed, "done"),
        &result.to_string(),
    );
    let evil = TaskJson::file("evil").set(&format!("field{HOSTILE}"), 1);
    push_hostile(
        env,
        &clone,
        &task_path(State::Queue, "evil"),
        &evil.to_string(),
    );
    (grid, clone)
}

#[test]
fn show_prints_no_raw_controls_from_history() {
    let env = Env::new();
    let (_grid, clone) = hostile_grid(&env);
    let out = env.dgrid(&clone, &["show", "done"]);
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("author ?[31mred"), "{text}");
    assert_no_controls("show", &text);
    // JSON stays JSON: the author as it is, escaped by serde.
    let out = env.dgrid(&clone, &["show", "done", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        value["history"][0]["author"],
        format!("author {HOSTILE}").as_str()
    );
}

#[test]
fn validate_and_the_hook_print_no_raw_controls() {
    let env = Env::new();
    let (_grid, clone) = hostile_grid(&env);
    let out = env.dgrid(&clone, &["validate"]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("field?[31mred"), "{text}");
    assert_no_controls("validate", &text);

    // The hook, on a push of the hostile commits to a second remote.
    let other = env.grid("other.git");
    env.git(&clone, &["remote", "add", "other", other.to_str().unwrap()]);
    let head = env.git(&clone, &["rev-parse", "HEAD"]);
    let mut hook = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone);
    hook.args(["hook", "pre-push", "other", other.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = hook.spawn().unwrap();
    use std::io::Write;
    writeln!(
        child.stdin.take().unwrap(),
        "refs/heads/main {head} refs/heads/main {}",
        "0".repeat(40)
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("push refused"), "{text}");
    assert_no_controls("the pre-push hook", &text);
}

#[test]
#[cfg_attr(
    not(have_script),
    ignore = "needs script (apt-get install bsdutils, util-linux)"
)]
fn logs_on_a_terminal_print_no_raw_controls_unless_raw() {
    if !common::script_ready() {
        return;
    }
    let env = Env::new();
    let (_grid, clone) = hostile_grid(&env);
    let on_pty = |extra: &str| {
        let command = format!("{} logs done {extra}", env!("CARGO_BIN_EXE_git-dgrid"));
        let out = env.on_a_terminal(&clone, &command);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_pty("");
    assert!(shown.contains("out ?[31mred"), "{shown}");
    // The pty turns "\n" into "\r\n"; nothing else may be a control character.
    assert_no_controls("logs on a terminal", &shown.replace("\r\n", "\n"));
    assert!(on_pty("--raw").contains('\u{1b}'), "--raw keeps the bytes");
    // Piped, the output is passed on as stored.
    let out = env.dgrid(&clone, &["logs", "done", "--stdout"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("out {HOSTILE}\n")
    );
}

/// The real docker, but its `run` fails with a message full of escapes (as a daemon quoting a
/// task's field would): the worker's log line stays one clean line.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn the_worker_log_prints_no_raw_controls() {
    if !common::docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(
        &clone,
        &["submit", "--id", "t1", "--image", IMAGE, "--", "true"],
        0,
    );
    let docker = env.path("failing-docker");
    std::fs::write(
        &docker,
        format!(
            "#!/bin/sh\nif [ \"$1\" = run ]; then\n  printf 'docker: {}\\nsecond line\\n' >&2\n  exit 125\nfi\nexec docker \"$@\"\n",
            HOSTILE.replace('\u{1b}', "\\033").replace('\u{7}', "\\007").replace('\u{9b}', "\\302\\233").replace('\r', "\\r")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["work", "--node-id", "w1", "--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path("state"))
        .arg("--docker")
        .arg(&docker)
        .args(["--poll-interval", "1", "--until-empty"])
        .stderr(std::fs::File::create(env.path("worker.log")).unwrap())
        .spawn()
        .unwrap();
    // Until the docker message is logged, however long a loaded machine takes (not a fixed 6 s).
    let read = || std::fs::read_to_string(env.path("worker.log")).unwrap_or_default();
    common::wait_for(300, || read().contains("red"));
    let _ = child.kill();
    let _ = child.wait();
    let log = read();
    assert!(
        log.contains("red"),
        "the docker message is in the log:\n{log}"
    );
    assert_no_controls("the worker's log", &log);
}

//! A closed stdout (`git dgrid status --json | true`) ends every printing command quietly: exit 0
//! or 141 (as if killed by SIGPIPE), no panic, no backtrace, and it does end.

use crate::common::{wait_exit, Env};
use std::path::Path;

/// Runs git-dgrid with `args` in `dir`, its stdout a pipe whose reader is already gone; returns
/// the exit code and stderr.
fn into_closed_pipe(env: &Env, dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = os_pipe::pipe().unwrap();
    drop(reader);
    let stderr_path = env.path(&format!("stderr-{}", fastrand::u64(..)));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), dir)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdout(writer)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, 300);
    (status.code(), std::fs::read_to_string(stderr_path).unwrap())
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    for id in ["p-one", "p-two", "p-three", "p-gone"] {
        env.dgrid_ok(
            &clone,
            &["submit", "--id", id, "--image", "alpine", "--", "true"],
            0,
        );
    }
    env.dgrid_ok(&clone, &["cancel", "p-gone", "--reason", "for its logs"], 0);
    std::fs::write(clone.join("bad.json"), r#"{"id": "bad id"}"#).unwrap();
    let prefix = env.path("prefix");
    let bare = env.path("new.git");
    let commands: Vec<Vec<&str>> = vec![
        vec!["--help"],
        vec!["--version"],
        vec!["work", "--help"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["status", "--watch", "1"],
        vec!["show", "p-one"],
        vec!["show", "p-one", "--json"],
        vec!["logs", "p-gone"],
        vec!["logs", "p-gone", "--stderr"],
        vec!["env"],
        vec!["validate", "bad.json"],
        vec!["validate", "bad.json", "--json"],
        vec!["claim", "--node-id", "piped", "--max", "1"],
        vec!["claim", "--node-id", "piped", "--max", "1", "--json"],
        vec!["submit", "--image", "alpine", "--", "true"],
        vec!["submit", "--json", "--image", "alpine", "--", "true"],
        vec!["submit", "--no-push", "--image", "alpine", "--", "true"],
        vec!["cancel", "p-three"],
        vec!["retry", "p-three"],
        vec!["install-hooks"],
        vec!["install-docs", "--prefix", prefix.to_str().unwrap()],
        vec!["init", "--bare", bare.to_str().unwrap()],
    ];
    for args in commands {
        let (code, stderr) = into_closed_pipe(&env, &clone, &args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "git dgrid {args:?} panicked: {stderr}"
        );
        assert!(
            matches!(code, Some(0) | Some(141)),
            "git dgrid {args:?} exited with {code:?}: {stderr}"
        );
    }
}

//! A newcomer's rough edges: what a first try on a fresh machine runs into is
//! said plainly (an offline `docker build`, bash completion without bash-completion, a command
//! without `--`, a repository with no remote) and the internals stay out of sight (`hook` and
//! `generate-docs` in completions, a warning about a cap nobody set, `env`'s descriptions of
//! defaults instead of the state dir and node id in use), and a worker's log captured from a
//! terminal keeps one line per message.

use crate::common::{self, all_output, Env};
use std::path::Path;

fn manifest(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `docker build .` sends no target/ or .git/ to the daemon, and the Dockerfile says what an
/// offline build needs.
#[test]
fn the_worker_image_build_ignores_target_and_says_it_needs_the_network() {
    let ignored: Vec<String> = manifest(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert!(
        ignored.contains(&"target/".to_string()) && ignored.contains(&".git/".to_string()),
        "{ignored:?}"
    );
    let dockerfile = manifest("Dockerfile");
    assert!(
        dockerfile.contains("Offline it fails") && dockerfile.contains("cargo vendor"),
        "the Dockerfile says what an offline build needs"
    );
}

/// The completions offer what a user runs: not the hook git calls, nor the maintainers'
/// `generate-docs` (checked-in files and freshly generated ones alike).
#[test]
fn completions_leave_out_the_internal_commands() {
    let env = Env::new();
    let out = env.path("docs");
    env.dgrid_ok(
        env.tmp.path(),
        &["generate-docs", "--out", out.to_str().unwrap()],
        0,
    );
    for (what, dir) in [
        ("generated", out),
        (
            "checked in",
            Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
        ),
    ] {
        for file in ["git-dgrid.bash", "_git-dgrid", "git-dgrid.fish"] {
            let text = std::fs::read_to_string(dir.join("completions").join(file)).unwrap();
            assert!(!text.contains("generate-docs"), "{what} {file}");
            assert!(
                !text.contains("subcmd__hook\"")
                    && !text.contains("'hook:")
                    && !text.contains(" -a \"hook\""),
                "{what} {file} offers `hook`"
            );
            assert!(text.contains("install-hooks"), "{what} {file}");
        }
    }
}

/// `install-docs` on a machine without the bash-completion package says the bash completion it
/// wrote does nothing until that package is there (or the file is sourced).
#[test]
fn install_docs_says_bash_completion_needs_its_package() {
    let env = Env::new();
    let prefix = env.path("prefix");
    let out = env.dgrid(
        env.tmp.path(),
        &["install-docs", "--prefix", prefix.to_str().unwrap()],
    );
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    let loader = Path::new("/usr/share/bash-completion/bash_completion");
    if loader.exists() || Path::new("/etc/bash_completion").exists() {
        return; // this machine has the package: nothing to say
    }
    assert!(
        text.contains("Bash completion does nothing without the bash-completion package")
            && text.contains("share/bash-completion/completions/git-dgrid"),
        "{text}"
    );
}

/// `submit --image IMG echo hi` (the command without `--`) says where the command goes.
#[test]
fn a_command_without_the_double_dash_is_shown_where_it_goes() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let out = env.dgrid(&clone, &["submit", "--image", "busybox", "echo", "hi"]);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("put the command after --: git dgrid submit --image busybox -- echo hi"),
        "{text}"
    );
}

/// `status` in a repository with no remote and no grid says so instead of drawing an empty grid.
#[test]
fn status_without_a_remote_says_there_is_no_grid_here() {
    let env = Env::new();
    let repo = env.path("plain");
    std::fs::create_dir_all(&repo).unwrap();
    env.git(&repo, &["init", "-q", "-b", "main"]);
    env.git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
    let out = env.dgrid(&repo, &["status"]);
    let text = all_output(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("no remote named origin and no grid on its main")
            && text.contains("git remote add origin URL"),
        "{text}"
    );
    assert!(!text.contains("TASKS"), "no table: {text}");
}

/// `env` shows the state dir and node id a worker here would use, not how defaults are made.
#[test]
fn env_shows_the_state_dir_and_node_id_in_use() {
    let env = Env::new();
    let row = |flag: &str| {
        let out = env.dgrid(env.tmp.path(), &["env"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(flag))
            .unwrap_or_default()
            .to_string()
    };
    let state = env.home.join(".cache/git-dgrid");
    let line = row("--state-dir ");
    assert!(
        line.contains(&format!("= {} here", state.display())),
        "{line}"
    );
    let line = row("--node-id ");
    assert!(line.contains("not chosen yet"), "{line}");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("node-id"), "box-00c0de\n").unwrap();
    let line = row("--node-id ");
    assert!(line.contains("box-00c0de (kept in "), "{line}");
}

/// A worker says nothing of a `--max-cpus` above the host's CPUs that the user never set (the
/// default), and still says it of one they did.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn no_warning_about_a_cpu_cap_nobody_set() {
    if !common::docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let run = |extra: &[&str]| {
        let out = env
            .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
            .args(["work", "--once", "--node-id", "w1", "--repo"])
            .arg(&grid)
            .arg("--state-dir")
            .arg(env.path("state"))
            .args(extra)
            .output()
            .unwrap();
        all_output(&out)
    };
    let default = run(&[]);
    assert!(!default.contains("is more than this host's"), "{default}");
    let set = run(&["--max-cpus", "4096"]);
    assert!(
        set.contains("--max-cpus 4096 is more than this host's"),
        "{set}"
    );
}

/// `show` of a task whose history was compacted off main says where the older commits are.
#[test]
fn show_after_compact_points_to_the_archive() {
    let env = Env::new();
    let grid = env.grid("g.git");
    env.git(&grid, &["config", "receive.denyNonFastForwards", "false"]);
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(
        &clone,
        &[
            "submit", "--id", "old-task", "--image", "busybox", "--", "true",
        ],
        0,
    );
    env.dgrid_ok(&clone, &["compact"], 0);
    let text = env.dgrid_ok(&clone, &["show", "old-task"], 0);
    assert!(
        text.contains("older history was compacted off main")
            && text.contains("dgrid-archive: git log "),
        "{text}"
    );
}

/// On a terminal (a pty from `script`) the worker's log lines end with a newline, not with
/// spaces up to the terminal's width, so a log captured from the terminal reads line by line.
#[test]
#[cfg_attr(
    not(have_script),
    ignore = "needs script (apt-get install bsdutils, util-linux)"
)]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_log_captured_from_a_terminal_has_one_line_per_message() {
    if !common::script_ready() || !common::docker_ready() {
        return;
    }
    let env = Env::new();
    let grid = env.grid("g.git");
    let command = format!(
        "{} work --node-id w1 --repo {} --state-dir {} --until-empty",
        env!("CARGO_BIN_EXE_git-dgrid"),
        grid.display(),
        env.path("state").display(),
    );
    let out = env.on_a_terminal(env.tmp.path(), &command);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    let lines: Vec<&str> = shown
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.contains(" w1 "))
        .collect();
    assert!(
        lines.iter().any(|l| l.contains(" worker on "))
            && lines.iter().any(|l| l.ends_with(" w1 stopped")),
        "one line each for the start and the stop: {shown:?}"
    );
    assert!(
        lines.iter().all(|l| !l.ends_with("  ")),
        "no padding: {shown:?}"
    );
}

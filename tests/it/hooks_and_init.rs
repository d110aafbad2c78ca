//! `init`, `init --bare`, `install-hooks` and the pre-push hook against a real bare remote.

use crate::common::{assert_success, Env, TaskJson};
use std::path::Path;

const SKELETON: [&str; 5] = [
    "nodes/.gitkeep",
    "tasks/completed/.gitkeep",
    "tasks/failed/.gitkeep",
    "tasks/in_progress/.gitkeep",
    "tasks/queue/.gitkeep",
];

fn commit_file(env: &Env, repo: &Path, rel: &str, content: &str) {
    let path = repo.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    env.git(repo, &["add", rel]);
    env.git(repo, &["commit", "--quiet", "-m", &format!("add {rel}")]);
}

fn push(env: &Env, repo: &Path, args: &[&str]) -> std::process::Output {
    env.cmd("git", repo)
        .arg("push")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn init_bare_then_clone_gives_the_layout_on_main() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    assert_eq!(
        env.git(&clone, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "main"
    );
    let files = env.git(&clone, &["ls-files"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), SKELETON);
    for dir in [
        "tasks/queue",
        "tasks/in_progress",
        "tasks/completed",
        "tasks/failed",
        "nodes",
    ] {
        assert!(clone.join(dir).is_dir(), "{dir}");
    }
    // A second init on the same path refuses and changes nothing.
    let out = env.dgrid(env.tmp.path(), &["init", "--bare", grid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn init_in_a_clone_lays_out_commits_pushes_and_installs_the_hook() {
    let env = Env::new();
    let remote = env.path("r.git");
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            remote.to_str().unwrap(),
        ],
    );
    let clone = env.clone(remote.to_str().unwrap(), "c");
    env.git(&clone, &["checkout", "--quiet", "-b", "main"]);
    std::fs::write(clone.join("README.md"), "mine\n").unwrap(); // untracked: must stay untracked
    env.dgrid_ok(&clone, &["init", "--push"], 0);
    assert_eq!(
        env.git(&remote, &["ls-tree", "-r", "--name-only", "main"])
            .lines()
            .collect::<Vec<_>>(),
        SKELETON
    );
    assert!(env
        .git(&clone, &["status", "--porcelain"])
        .contains("?? README.md"));
    assert!(clone.join(".git/hooks/pre-push").exists());
    let again = env.dgrid_ok(&clone, &["init"], 0);
    assert!(again.contains("already here"), "{again}");
    assert_eq!(env.git(&clone, &["rev-list", "--count", "HEAD"]), "1");
}

#[test]
fn pre_push_hook_refuses_invalid_tasks_and_passes_valid_ones() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    let before = env.git(&grid, &["rev-parse", "main"]);

    commit_file(
        &env,
        &clone,
        "tasks/queue/bad.json",
        &TaskJson::file("bad").timeout("abc").to_string(),
    );
    let out = push(&env, &clone, &["origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the push went through: {stderr}");
    assert!(
        stderr.contains(
            "tasks/queue/bad.json: \"timeout\": expected an integer from 1 to 86400, got \"abc\""
        ),
        "{stderr}"
    );
    assert_eq!(
        env.git(&grid, &["rev-parse", "main"]),
        before,
        "the remote changed"
    );

    commit_file(
        &env,
        &clone,
        "tasks/queue/bad.json",
        &TaskJson::file("bad").to_string(),
    );
    let out = push(&env, &clone, &["origin", "main"]);
    assert_success(&out);
    assert_ne!(env.git(&grid, &["rev-parse", "main"]), before);

    // A new branch is checked against what the remote already has; a deletion is not checked.
    env.git(&clone, &["checkout", "--quiet", "-b", "topic"]);
    commit_file(
        &env,
        &clone,
        "tasks/queue/t2.json",
        &TaskJson::file("wrong-name").to_string(),
    );
    let out = push(&env, &clone, &["origin", "topic"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tasks/queue/t2.json: \"id\""));
    env.git(&clone, &["reset", "--quiet", "--hard", "HEAD~1"]);
    commit_file(
        &env,
        &clone,
        "tasks/queue/t2.json",
        &TaskJson::file("t2").to_string(),
    );
    assert!(push(&env, &clone, &["origin", "topic"]).status.success());
    assert!(push(&env, &clone, &["origin", ":topic"]).status.success());
}

#[test]
fn an_existing_user_hook_is_chained_and_restored() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let hooks = clone.join(".git/hooks");
    let log = env.path("user-hook.log");
    let user_hook = format!(
        "#!/bin/sh\necho \"user hook: $1\" >> {0}\ncat >> {0}\nexit 0\n",
        log.display()
    );
    std::fs::write(hooks.join("pre-push"), &user_hook).unwrap();
    std::fs::set_permissions(
        hooks.join("pre-push"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let out = env.dgrid_ok(&clone, &["install-hooks"], 0);
    assert!(out.contains("kept as"), "{out}");
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-push.dgrid-chained")).unwrap(),
        user_hook
    );
    let again = env.dgrid_ok(&clone, &["install-hooks"], 0);
    assert!(again.contains("is installed"), "{again}");

    commit_file(
        &env,
        &clone,
        "tasks/queue/ok.json",
        &TaskJson::file("ok").to_string(),
    );
    let out = push(&env, &clone, &["origin", "main"]);
    assert_success(&out);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("user hook: origin"), "{logged}");
    assert!(
        logged.contains("refs/heads/main"),
        "the user hook got git's ref lines: {logged}"
    );

    env.dgrid_ok(&clone, &["install-hooks", "--uninstall"], 0);
    assert_eq!(
        std::fs::read_to_string(hooks.join("pre-push")).unwrap(),
        user_hook
    );
    assert!(!hooks.join("pre-push.dgrid-chained").exists());
}

#[test]
fn a_failing_user_hook_still_blocks_the_push() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let hook = clone.join(".git/hooks/pre-push");
    std::fs::write(&hook, "#!/bin/sh\necho 'user hook says no' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    commit_file(
        &env,
        &clone,
        "tasks/queue/ok.json",
        &TaskJson::file("ok").to_string(),
    );
    let out = push(&env, &clone, &["origin", "main"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("user hook says no"));
}

#[test]
fn hooks_path_is_respected_and_foreign_hooks_survive_uninstall() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let custom = env.path("my-hooks");
    env.git(
        &clone,
        &["config", "core.hooksPath", custom.to_str().unwrap()],
    );
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    assert!(custom.join("pre-push").exists());
    assert!(!clone.join(".git/hooks/pre-push").exists());
    // Not ours any more: uninstall leaves it alone.
    std::fs::write(custom.join("pre-push"), "#!/bin/sh\nexit 0\n").unwrap();
    let out = env.dgrid_ok(&clone, &["install-hooks", "--uninstall"], 0);
    assert!(out.contains("not git-dgrid's hook"), "{out}");
    assert!(custom.join("pre-push").exists());
}

#[test]
fn the_hook_says_how_to_install_git_dgrid_when_missing() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    commit_file(
        &env,
        &clone,
        "tasks/queue/ok.json",
        &TaskJson::file("ok").to_string(),
    );
    let git_dir = std::path::Path::new(&which_git())
        .parent()
        .unwrap()
        .to_path_buf();
    let out = env
        .cmd("git", &clone)
        .env("PATH", format!("{}:/usr/bin:/bin", git_dir.display()))
        .args(["push", "origin", "main"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'git-dgrid' was not found on your PATH"));
}

fn which_git() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

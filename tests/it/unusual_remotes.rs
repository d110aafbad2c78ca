//! Remotes a new user meets: a server whose empty repositories have HEAD on `master` (`init`
//! still lays out `main`), and a remote that is not a grid (`submit` refuses it).

use crate::common::Env;

fn bare_on_master(env: &Env, name: &str) -> std::path::PathBuf {
    let remote = env.path(name);
    env.git(
        env.tmp.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=master",
            remote.to_str().unwrap(),
        ],
    );
    remote
}

#[test]
fn init_push_creates_main_even_when_the_servers_head_is_master() {
    let env = Env::new();
    let remote = bare_on_master(&env, "r.git");
    let clone = env.clone(remote.to_str().unwrap(), "c");
    // A fresh clone of an empty repository whose HEAD is master is on an unborn master.
    env.git(&clone, &["symbolic-ref", "HEAD", "refs/heads/master"]);
    let out = env.dgrid_ok(&clone, &["init", "--push"], 0);
    assert!(out.contains("main"), "{out}");
    let heads = env.git(
        &remote,
        &["for-each-ref", "--format=%(refname)", "refs/heads"],
    );
    assert_eq!(
        heads, "refs/heads/main",
        "only main is created on the remote"
    );
    let tree = env.git(&remote, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(tree.contains("tasks/queue/.gitkeep"), "{tree}");
    // The grid works: a submit lands on main.
    env.dgrid_ok(
        &clone,
        &[
            "submit",
            "--id",
            "first",
            "--image",
            "dgrid/busybox:latest",
            "--",
            "true",
        ],
        0,
    );
    assert_eq!(env.ids_in(&remote, "main", "queue"), ["first"]);
}

#[test]
fn submit_refuses_a_remote_that_is_not_a_grid() {
    let env = Env::new();
    // No main at all: nothing is created.
    let empty = bare_on_master(&env, "empty.git");
    let clone = env.clone(empty.to_str().unwrap(), "c1");
    let out = env.dgrid(
        &clone,
        &[
            "submit",
            "--id",
            "x",
            "--image",
            "dgrid/busybox:latest",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("git dgrid init --push"), "{stderr}");
    let heads = env.git(&empty, &["for-each-ref", "refs/heads"]);
    assert!(heads.is_empty(), "nothing pushed: {heads}");

    // A main that is some other project's branch: refused, main unchanged.
    let other = bare_on_master(&env, "other.git");
    let work = env.clone(other.to_str().unwrap(), "c2");
    std::fs::write(work.join("README.md"), "another project\n").unwrap();
    env.git(&work, &["add", "README.md"]);
    env.git(&work, &["commit", "--quiet", "-m", "readme"]);
    env.git(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
    );
    let before = env.git(&other, &["rev-parse", "main"]);
    let out = env.dgrid(
        &work,
        &[
            "submit",
            "--id",
            "x",
            "--image",
            "dgrid/busybox:latest",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a grid"));
    assert_eq!(env.git(&other, &["rev-parse", "main"]), before);
}

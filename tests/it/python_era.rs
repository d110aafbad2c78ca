//! Python-era task files: `task_id`, `script`, `timeout_seconds`, and no
//! `image`, `created_at` or `submitted_by`, pushed with plain git as the earlier implementation
//! wrote them, validate, show the commit's author and time, and run on a worker's default image.

use crate::common::{docker_ready, find_task, Env};
use std::path::Path;

const AUTHOR_TIME: &str = "2024-05-06T07:08:09Z";

/// A grid, and a clone that pushed `tasks/queue/<id>.json` (flat, as the Python implementation
/// wrote it) with plain git through the pre-push hook, authored by Py Thon at [`AUTHOR_TIME`].
fn grid_with_python_era_file(
    env: &Env,
    id: &str,
    script: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let file = format!("tasks/queue/{id}.json");
    let body = serde_json::json!({"task_id": id, "script": script, "timeout_seconds": 60});
    std::fs::write(clone.join(&file), body.to_string()).unwrap();
    env.git(&clone, &["add", &file]);
    let out = env
        .cmd("git", &clone)
        .args(["commit", "--quiet", "-m", "add a task, Python style"])
        .env("GIT_AUTHOR_NAME", "Py Thon")
        .env("GIT_AUTHOR_EMAIL", "py@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-06T09:08:09+02:00")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Through the pre-push hook, which judges the file as validate does.
    env.dgrid_ok(&clone, &["install-hooks"], 0);
    env.git(&clone, &["push", "--quiet", "origin", "HEAD:main"]);
    (grid, clone)
}

fn show(env: &Env, dir: &Path, id: &str) -> serde_json::Value {
    serde_json::from_str(&env.dgrid_ok(dir, &["show", id, "--json"], 0)).unwrap()
}

#[test]
fn a_python_era_file_validates_and_shows_who_added_it_and_when() {
    let env = Env::new();
    let (_grid, clone) = grid_with_python_era_file(&env, "old-1", "echo hi");
    env.dgrid_ok(&clone, &["validate"], 0);
    env.dgrid_ok(&clone, &["validate", "--rev", "HEAD~1..HEAD"], 0);
    let shown = show(&env, &clone, "old-1");
    assert_eq!(shown["state"], "queue");
    let spec = &shown["spec"];
    assert_eq!(spec["id"], "old-1");
    assert_eq!(spec["command"], "echo hi");
    assert_eq!(spec["timeout"], 60);
    assert_eq!(spec["created_at"], AUTHOR_TIME);
    assert_eq!(spec["submitted_by"], "py@example.com");
    assert_eq!(
        spec["image"], "python:3.11-alpine",
        "the earlier implementation's image"
    );
    // The reader's setting names the image, through the environment or git config.
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .args(["show", "old-1", "--json"])
        .env("DGRID_DEFAULT_IMAGE", "alpine:3")
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["spec"]["image"], "alpine:3");
    env.git(&clone, &["config", "dgrid.defaultImage", "busybox:1"]);
    assert_eq!(show(&env, &clone, "old-1")["spec"]["image"], "busybox:1");
    // status orders and ages it by the commit's time.
    let status = env.dgrid_ok(&clone, &["status", "--json"], 0);
    assert!(status.contains(AUTHOR_TIME), "{status}");
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_worker_runs_a_python_era_file_on_its_default_image() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let id = format!("py-era-{}", std::process::id());
    let (grid, clone) =
        grid_with_python_era_file(&env, &id, "echo from the python era; echo $((6 * 7))");
    let node = format!("py-node-{}", std::process::id());
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args([
            "work",
            "--repo",
            grid.to_str().unwrap(),
            "--state-dir",
            env.path("state").to_str().unwrap(),
            "--node-id",
            &node,
            "--default-image",
            "dgrid/busybox:latest",
            "--until-empty",
            "--poll-interval",
            "1",
        ])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let (state, result) = find_task(&env, &grid, &id).expect("the task is on the grid");
    assert_eq!(state, "completed", "{result:#}\n{log}");
    assert_eq!(result["task_id"], id.as_str());
    assert_eq!(result["status"], "success");
    assert_eq!(result["stdout"], "from the python era\n42\n");
    // The claim wrote the task whole: the image the worker chose, the commit's author and time.
    assert_eq!(result["task"]["image"], "dgrid/busybox:latest");
    assert_eq!(result["task"]["created_at"], AUTHOR_TIME);
    assert_eq!(result["task"]["submitted_by"], "py@example.com");
    env.dgrid_ok(&grid, &["validate"], 0);
    let shown = show(&env, &clone, &id);
    assert_eq!(shown["state"], "completed");
    assert_eq!(shown["spec"]["submitted_by"], "py@example.com");
}

#[test]
fn status_orders_python_era_files_by_the_time_their_commits_added_them() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    // Added newest id first, so that id order and time order disagree.
    let added = [
        ("p-3", "2024-01-01T00:00:00Z"),
        ("p-2", "2024-02-01T00:00:00Z"),
        ("p-1", "2024-03-01T00:00:00Z"),
    ];
    for (id, when) in added {
        let file = format!("tasks/queue/{id}.json");
        let body = serde_json::json!({"task_id": id, "script": "true", "timeout_seconds": 5});
        std::fs::write(clone.join(&file), body.to_string()).unwrap();
        env.git(&clone, &["add", &file]);
        let out = env
            .cmd("git", &clone)
            .args(["commit", "--quiet", "-m", id])
            .env("GIT_AUTHOR_DATE", when)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    env.git(&clone, &["push", "--quiet", "origin", "HEAD:main"]);
    let status: serde_json::Value =
        serde_json::from_str(&env.dgrid_ok(&clone, &["status", "--json"], 0)).unwrap();
    let next: Vec<(String, String)> = status["queue"]["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                t["created_at"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = added
        .iter()
        .map(|(id, when)| (id.to_string(), when.to_string()))
        .collect();
    assert_eq!(next, expected, "oldest first, each at its commit's time");
    assert_eq!(
        show(&env, &clone, "p-2")["spec"]["submitted_by"],
        "tess@example.com"
    );
}

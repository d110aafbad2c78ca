//! The dashboard workflow fetches only the last two days of `main` (`--shallow-since`, then one
//! commit deeper): the charts built from such a clone are those of a full clone.

use crate::common::Env;
use git_dgrid::dashboard::history;
use git_dgrid::layout::{task_path, State};
use std::path::Path;

/// A grid's history over `hours` hours, a commit every 3 hours (oldest first): each records a
/// result and queues a task, and every other one takes a task from the queue.
fn grid_with_history(env: &Env, dir: &Path, now: i64, hours: i64) {
    env.git(
        dir.parent().unwrap(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    let mut queued: Vec<String> = Vec::new();
    for (n, h) in (0..=hours).rev().step_by(3).enumerate() {
        let write = |path: String| {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, "{}\n").unwrap();
        };
        write(task_path(State::Completed, &format!("done-{h}")));
        if n % 3 == 0 {
            write(task_path(State::Failed, &format!("failed-{h}")));
        }
        let id = format!("queued-{h}");
        write(task_path(State::Queue, &id));
        queued.push(id);
        if n % 2 == 1 {
            let gone = queued.remove(0);
            std::fs::remove_file(dir.join(task_path(State::Queue, &gone))).unwrap();
        }
        let date = format!("@{} +0000", now - h * 3600);
        let status = env.cmd("git", dir).args(["add", "-A"]).status().unwrap();
        assert!(status.success());
        let status = env
            .cmd("git", dir)
            .args(["commit", "-q", "-m", &format!("dgrid: step {n}")])
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn charts(repo: &Path, now: chrono::DateTime<chrono::Utc>) -> history::Series {
    let repo = gix::open(repo).unwrap();
    let tip = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_id()
        .unwrap()
        .detach();
    history::series(&repo, Some(tip), now, 48).unwrap()
}

#[test]
fn charts_from_a_two_day_shallow_clone_equal_those_of_a_full_clone() {
    let env = Env::new();
    let now = chrono::Utc::now();
    let origin = env.path("origin");
    grid_with_history(&env, &origin, now.timestamp(), 96);
    let url = format!("file://{}", origin.display());
    let full = env.path("full.git");
    env.git(
        env.tmp.path(),
        &["clone", "-q", "--bare", &url, full.to_str().unwrap()],
    );
    // As the workflow fetches: the last 49 hours, then the parent of the oldest commit, so that
    // every commit of the 48-hour window can be diffed against its parent.
    let shallow = env.path("shallow.git");
    let since = format!("--shallow-since=@{}", now.timestamp() - 49 * 3600);
    env.git(
        env.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &since,
            &url,
            shallow.to_str().unwrap(),
        ],
    );
    assert!(shallow.join("shallow").exists(), "the clone is shallow");
    let depth = |repo: &Path| env.git(repo, &["rev-list", "--count", "main"]);
    let before = depth(&shallow);
    env.git(&shallow, &["fetch", "-q", "--deepen=1", "origin", "main"]);
    assert_ne!(
        depth(&shallow),
        depth(&full),
        "the shallow clone lacks the old history"
    );
    assert_ne!(
        before,
        depth(&shallow),
        "--deepen=1 fetched one more commit"
    );

    let expected = charts(&full, now);
    let finished: u32 = expected.finished_per_hour.iter().map(|h| h.1 + h.2).sum();
    assert!(finished >= 16, "the window has results: {expected:?}");
    assert_eq!(charts(&shallow, now), expected);

    // A clone that holds less than the window: its oldest commit, inside the window, cannot be
    // diffed (its parent is missing); the dashboard still builds, from what is there.
    let short = env.path("short.git");
    let since = format!("--shallow-since=@{}", now.timestamp() - 40 * 3600);
    env.git(
        env.tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &since,
            &url,
            short.to_str().unwrap(),
        ],
    );
    let partial = charts(&short, now);
    let seen: u32 = partial.finished_per_hour.iter().map(|h| h.1 + h.2).sum();
    assert!(seen > 0 && seen < finished, "{seen} of {finished} results");
    let repo = gix::open(&short).unwrap();
    let tip = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .peel_to_id()
        .unwrap()
        .detach();
    assert!(!history::recent_results(&repo, Some(tip), 50)
        .unwrap()
        .is_empty());
}

//! The compare-and-swap loop against a local bare remote (a path, no network): commits land on
//! `main`, each commit is unique, a lost race re-plans on the new tip, a refusal is an error, and
//! the backoffs stay in their windows.

use super::*;
use crate::grid::testkit::{grid, task};
use crate::layout::{self, State};
use std::path::Path;

/// A bare remote with no `main` yet, and two workers' cache clones of it.
struct Remote {
    dir: tempfile::TempDir,
}

impl Remote {
    fn new() -> Remote {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "--quiet", "--bare", "remote.git"]);
        Remote { dir }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("remote.git")
    }

    /// A grid through a cache clone under its own state dir (so each has its own lock).
    fn grid(&self, name: &str) -> Grid {
        let url = self.path().display().to_string();
        Grid::cache_clone(&url, &self.dir.path().join(name)).unwrap()
    }

    fn main(&self) -> String {
        git(&self.path(), &["rev-parse", "main"])
    }

    fn message(&self, commit: &str) -> String {
        git(&self.path(), &["log", "-1", "--format=%B", commit])
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = crate::gitcmd::test_env::git(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn add(id: &str) -> Change<String> {
    Change {
        edits: vec![Edit::Write {
            path: layout::task_path(State::Queue, id),
            content: serde_json::to_vec(&task(id)).unwrap(),
        }],
        summary: format!("submit {id}"),
        value: id.to_string(),
    }
}

fn me() -> Identity {
    Identity::node("me")
}

#[test]
fn a_change_lands_on_main_and_the_next_one_builds_on_it() {
    let remote = Remote::new();
    let grid = remote.grid("a");
    let first = grid.transact(&me(), |_| Ok(Some(add("one")))).unwrap();
    let Outcome::Committed {
        commit,
        value,
        stats,
    } = first
    else {
        panic!("committed: {first:?}")
    };
    assert_eq!(value, "one");
    assert_eq!((stats.pushes, stats.lost_races), (1, 0));
    assert_eq!(remote.main(), commit.to_string());

    let mut seen = Vec::new();
    let second = grid
        .transact(&me(), |snapshot| {
            seen.push(snapshot.get("one").map(|t| t.state));
            Ok(Some(add("two")))
        })
        .unwrap();
    assert!(matches!(second, Outcome::Committed { .. }), "{second:?}");
    assert_eq!(
        seen,
        [Some(State::Queue)],
        "planned on the tip with the first change"
    );
    assert_eq!(
        git(&remote.path(), &["rev-parse", "main^"]),
        commit.to_string()
    );
}

#[test]
fn identical_changes_on_one_tip_make_distinct_commits() {
    let remote = Remote::new();
    let ours = remote.grid("ours");
    let twin = remote.grid("twin");
    ours.transact(&me(), |_| Ok(Some(add("base")))).unwrap();
    let mut plans = 0;
    let outcome = ours
        .transact(&me(), |_| {
            plans += 1;
            if plans == 1 {
                // The same author, edits and summary on the same tip within the same second: without
                // the nonce both commits would be one, and our push would be told "up to date".
                twin.transact(&me(), |_| Ok(Some(add("same")))).unwrap();
            }
            Ok(Some(add("same")))
        })
        .unwrap();
    let Outcome::Committed { commit, stats, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (plans, stats.lost_races),
        (2, 1),
        "ours lost the race to the twin"
    );
    let message = remote.message(&commit.to_string());
    assert!(
        message.starts_with("dgrid: submit same\n\nDgrid-Nonce: "),
        "{message}"
    );
    assert_eq!(
        git(&remote.path(), &["rev-list", "--count", "main"]),
        "3",
        "both landed, one on top of the other"
    );
}

#[test]
fn a_lost_race_plans_again_on_the_rivals_tip() {
    let remote = Remote::new();
    let ours = remote.grid("ours");
    let rival = remote.grid("rival");
    ours.transact(&me(), |_| Ok(Some(add("base")))).unwrap();
    let mut plans = 0;
    let outcome = ours
        .transact(&me(), |snapshot| {
            plans += 1;
            if plans == 1 {
                // Someone else lands a change after our fetch, before our push.
                rival
                    .transact(&Identity::node("rival"), |_| Ok(Some(add("theirs"))))
                    .unwrap();
                assert!(snapshot.get("theirs").is_none());
            } else {
                assert!(
                    snapshot.get("theirs").is_some(),
                    "re-planned on the new tip"
                );
            }
            Ok(Some(add("mine")))
        })
        .unwrap();
    let Outcome::Committed { stats, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(plans, 2);
    assert_eq!((stats.pushes, stats.lost_races), (2, 1));
    let tree = git(&remote.path(), &["ls-tree", "-r", "--name-only", "main"]);
    for id in ["base", "theirs", "mine"] {
        assert!(tree.contains(&format!("/{id}.json")), "{id} in {tree}");
    }
}

#[test]
fn nothing_to_write_settles_and_no_intent_is_not_applicable() {
    let remote = Remote::new();
    let grid = remote.grid("a");
    let settled = grid
        .transact(&me(), |_| {
            Ok(Some(Change {
                edits: vec![],
                summary: String::new(),
                value: 7,
            }))
        })
        .unwrap();
    assert!(
        matches!(settled, Outcome::Settled { value: 7, stats } if stats.pushes == 0),
        "{settled:?}"
    );
    let none = grid.transact::<()>(&me(), |_| Ok(None)).unwrap();
    assert!(
        matches!(none, Outcome::NotApplicable { stats } if stats.pushes == 0),
        "{none:?}"
    );
    assert!(
        crate::gitcmd::test_env::git(&remote.path())
            .args(["rev-parse", "--verify", "--quiet", "main"])
            .output()
            .unwrap()
            .stdout
            .is_empty(),
        "nothing was pushed"
    );
}

#[test]
fn a_declining_hook_is_a_refusal_not_a_retry() {
    let remote = Remote::new();
    let grid = remote.grid("a");
    let hook = remote.path().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'no tasks on Fridays' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut plans = 0;
    let err = grid
        .transact(&me(), |_| {
            plans += 1;
            Ok(Some(add("one")))
        })
        .unwrap_err();
    assert_eq!(plans, 1, "not retried");
    let refused = err
        .downcast_ref::<RemoteRefused>()
        .expect("a RemoteRefused");
    assert!(refused.0.contains("declined the push"), "{refused}");
    assert!(refused.0.contains("no tasks on Fridays"), "{refused}");
}

#[test]
fn a_remote_that_is_gone_is_an_error_that_names_it() {
    let remote = Remote::new();
    let grid = remote.grid("a");
    std::fs::remove_dir_all(remote.path()).unwrap();
    let err = grid.transact(&me(), |_| Ok(Some(add("one")))).unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.starts_with("cannot fetch from origin ("),
        "{message}"
    );
    assert!(message.contains("remote.git"), "{message}");
}

#[test]
fn backoffs_stay_in_their_windows() {
    fastrand::seed(9);
    let round_trip = Duration::from_millis(50);
    for losses in 1..12 {
        let window = round_trip
            .saturating_mul(1 << losses.min(6))
            .min(BACKOFF_CAP);
        for _ in 0..50 {
            let wait = contention_backoff(round_trip, losses);
            assert!(wait <= window, "{losses} losses: {wait:?} > {window:?}");
        }
        let exp = BACKOFF_BASE
            .saturating_mul(1 << losses.min(10))
            .min(BACKOFF_CAP);
        for _ in 0..50 {
            let wait = backoff(losses);
            assert!(
                wait <= exp && wait >= exp / 2 - Duration::from_millis(1),
                "{losses}: {wait:?} vs {exp:?}"
            );
        }
    }
    // A fast remote still waits on the scale of the base, not of a microsecond round trip.
    let waits: Vec<Duration> = (0..200)
        .map(|_| contention_backoff(Duration::from_micros(1), 3))
        .collect();
    assert!(waits.iter().any(|w| *w > BACKOFF_BASE));
    assert!(waits.iter().all(|w| *w <= BACKOFF_BASE * 8));
}

/// A push whose answer was lost, then compacted away: `landed_before_compaction` finds it.
#[test]
fn a_lost_answer_is_recognised_in_the_compacted_tree() {
    let fx = grid(&[]);
    let dir = fx.repo.path();
    let me = Identity::node("w1");
    let write = |path: &str, content: &str| Edit::Write {
        path: path.into(),
        content: content.as_bytes().to_vec(),
    };
    let base = fx.snapshot.tip;
    let claim = odb::write_commit(
        &fx.repo,
        base,
        &[write("nodes/w1.json", "claimed")],
        &me,
        "c\n",
    )
    .unwrap();
    // Not rewritten: the nonce rule (ancestry) decides, not this one.
    assert!(!landed_before_compaction(dir, claim, claim));
    let tree = |c: ObjectId| fx.repo.find_commit(c).unwrap().tree_id().unwrap().detach();
    let root_with = |c: ObjectId| {
        let tree = tree(c);
        let out = crate::gitcmd::output(dir, &["commit-tree", &tree.to_string(), "-m", "compact"]);
        crate::odb::parse_oid(out.unwrap().trim()).unwrap()
    };
    // The claim landed, then main was compacted (and moved on).
    let root = root_with(claim);
    let later = odb::write_commit(
        &fx.repo,
        Some(root),
        &[write("nodes/w2.json", "x")],
        &me,
        "l\n",
    )
    .unwrap();
    assert!(landed_before_compaction(dir, claim, later));
    // Compacted without it: not landed, re-planned.
    let root = root_with(base.unwrap());
    assert!(!landed_before_compaction(dir, claim, root));
}

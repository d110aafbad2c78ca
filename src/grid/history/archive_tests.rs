use super::*;
use crate::grid::testkit::{self, file, grid, result, task_result, with};
use crate::odb::{write_commit, Identity};
use serde_json::json;

fn finished_at(id: &str, at: &str, status: &str) -> (String, serde_json::Value) {
    let state = if status == "success" {
        State::Completed
    } else {
        State::Failed
    };
    let r = with(
        with(result(id, "w1", status, 1), "finished_at", json!(at)),
        "timestamp",
        json!(at),
    );
    file(state, id, r)
}

#[test]
fn retain_parses_counts_durations_and_both() {
    let r: Retain = "10000,7d".parse().unwrap();
    assert_eq!(r.keep, Some(10_000));
    assert_eq!(r.older_than, Some(chrono::Duration::days(7)));
    assert_eq!("12h".parse::<Retain>().unwrap().keep, None);
    assert_eq!("5".parse::<Retain>().unwrap().older_than, None);
    for bad in ["", "7x", "1,2", "7d,1h", "abc", ",", "99999999999999999999"] {
        assert!(bad.parse::<Retain>().is_err(), "{bad:?} accepted");
    }
}

/// Commits `edits` on the archive at `view` and returns a view of the result.
fn apply<'r>(repo: &'r gix::Repository, view: &View, edits: &[Edit]) -> View<'r> {
    let c = write_commit(repo, view.commit, edits, &Identity::node("a"), "a\n").unwrap();
    View::at(repo, Some(c)).unwrap()
}

#[test]
fn the_newest_are_kept_and_the_rest_land_in_day_files_with_an_index_and_totals() {
    let files: Vec<_> = (0..6)
        .map(|i| {
            finished_at(
                &format!("t{i}"),
                &format!("2026-01-0{}T10:00:00Z", i + 1),
                if i == 1 { "failed" } else { "success" },
            )
        })
        .chain([file(State::Queue, "q", testkit::task("q"))])
        .collect();
    let fx = grid(&files);
    let limits = Limits::default();
    let empty = View::at(&fx.repo, None).unwrap();
    let retain = Retain {
        keep: Some(2),
        older_than: None,
    };
    let plan = plan(&fx.snapshot, &empty, retain, &limits, testkit::now())
        .unwrap()
        .unwrap();
    assert_eq!(plan.moved, 4);
    assert_eq!(
        plan.totals,
        Totals {
            completed: 3,
            failed: 1
        }
    );
    let after = fx.after(&plan.main);
    let left: Vec<_> = after
        .tasks
        .iter()
        .filter(|t| t.state.holds_results())
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(left, vec!["t4", "t5"], "the two newest stay on main");
    assert!(after.get("q").is_some(), "queued tasks are never archived");

    let view = apply(&fx.repo, &empty, &plan.archive);
    assert_eq!(view.totals().unwrap().completed, 3);
    let found = view.find("t1").unwrap().expect("t1 archived");
    assert_eq!(found.state, State::Failed);
    assert_eq!(
        found.file,
        format!("results/2026-01-02/{}.jsonl", layout::shard("t1"))
    );
    assert_eq!(found.result(&limits).unwrap().task_id, "t1");
    assert!(view.find("t5").unwrap().is_none());

    // A second run with the same rule finds nothing more to move.
    let next = Snapshot::read(&fx.repo, after.tip).unwrap();
    assert!(plan_again(&next, &view, retain).is_none());
}

fn plan_again(snapshot: &Snapshot, view: &View, retain: Retain) -> Option<Plan> {
    plan(snapshot, view, retain, &Limits::default(), testkit::now()).unwrap()
}

#[test]
fn count_and_age_each_keep_what_they_keep() {
    // NOW is 2026-01-01T12:00Z; results 1..4 days old.
    let files: Vec<_> = (1..=4)
        .map(|d| {
            let t = testkit::now() - chrono::Duration::days(d);
            finished_at(&format!("d{d}"), &crate::time::rfc3339(t), "success")
        })
        .collect();
    let fx = grid(&files);
    let empty = View::at(&fx.repo, None).unwrap();
    let both = "1,2d".parse().unwrap();
    // d1 kept by count; d1 and d2 by age (exactly 2 days is not older than 2 days).
    let plan = plan_again(&fx.snapshot, &empty, both).unwrap();
    assert_eq!(plan.moved, 2);
    let count_keeps_more = "3,1h".parse().unwrap();
    assert_eq!(
        plan_again(&fx.snapshot, &empty, count_keeps_more)
            .unwrap()
            .moved,
        1
    );
    let age_keeps_more = "1,30d".parse().unwrap();
    assert!(plan_again(&fx.snapshot, &empty, age_keeps_more).is_none());
}

#[test]
fn a_result_for_an_archived_id_joins_its_late_results_and_is_not_counted_twice() {
    let fx = grid(&[finished_at("x", "2025-12-01T10:00:00Z", "success")]);
    let limits = Limits::default();
    let empty = View::at(&fx.repo, None).unwrap();
    let all = Retain {
        keep: Some(0),
        older_than: None,
    };
    let first = plan_again(&fx.snapshot, &empty, all).unwrap();
    let view = apply(&fx.repo, &empty, &first.archive);
    // The same id turns up on main again (pushed around the hook), from another node.
    let after = fx.after(&first.main);
    let commit = write_commit(
        &fx.repo,
        after.tip,
        &[Edit::Write {
            path: layout::task_path(State::Failed, "x"),
            content: serde_json::to_vec(&with(
                result("x", "w2", "failed", 2),
                "finished_at",
                json!("2025-12-02T10:00:00Z"),
            ))
            .unwrap(),
        }],
        &Identity::node("t"),
        "t\n",
    )
    .unwrap();
    let main = Snapshot::read(&fx.repo, Some(commit)).unwrap();
    let second = plan(&main, &view, all, &limits, testkit::now())
        .unwrap()
        .unwrap();
    assert_eq!(second.totals, first.totals, "the id is counted once");
    let view = apply(&fx.repo, &view, &second.archive);
    let found = view.find("x").unwrap().unwrap();
    let kept = found.result(&limits).unwrap();
    assert_eq!(kept.node_id, "w1", "the archived result stays the result");
    assert_eq!(kept.late_results.len(), 1);
    assert_eq!(kept.late_results[0].node_id, "w2");

    // A worker's late result for the archived task (plan_late): added once, recognised after.
    let late = task_result("x", "w3", "success", 3);
    let (edits, held) = plan_late(&view, std::slice::from_ref(&late), &limits).unwrap();
    assert_eq!(held, vec!["x"]);
    let view = apply(&fx.repo, &view, &edits);
    assert_eq!(
        view.find("x")
            .unwrap()
            .unwrap()
            .result(&limits)
            .unwrap()
            .late_results
            .len(),
        2
    );
    let (edits, held) = plan_late(&view, &[late], &limits).unwrap();
    assert!(edits.is_empty(), "already there");
    assert_eq!(held, vec!["x"]);
    let unknown = task_result("nope", "w3", "success", 1);
    assert_eq!(plan_late(&view, &[unknown], &limits).unwrap().1.len(), 0);
    assert_eq!(view.totals().unwrap().completed, 1);
}

#[test]
fn broken_archive_files_are_named() {
    let fx = grid(&[]);
    let empty = View::at(&fx.repo, None).unwrap();
    let shard = layout::shard("x");
    let view = apply(
        &fx.repo,
        &empty,
        &[
            Edit::Write {
                path: TOTALS_PATH.into(),
                content: b"[1]".to_vec(),
            },
            Edit::Write {
                path: format!("index/{shard}.json"),
                content: b"{\"x\": {\"file\": \"results/d/00.jsonl\", \"state\": \"completed\"}}"
                    .to_vec(),
            },
        ],
    );
    let e = format!("{:#}", view.totals().unwrap_err());
    assert!(e.contains("totals.json"), "{e}");
    let e = format!("{:#}", testkit::error(view.find("x")));
    assert!(
        e.contains("results/d/00.jsonl") && e.contains("no line for x"),
        "{e}"
    );
}

#[test]
fn main_totals_name_a_broken_file() {
    let fx = grid(&[]);
    assert_eq!(
        main_totals(&fx.repo, fx.snapshot.tip).unwrap(),
        Totals::default()
    );
    let bad = fx.after(&[Edit::Write {
        path: MAIN_TOTALS_PATH.into(),
        content: b"{\"completed\": -1}".to_vec(),
    }]);
    let e = format!("{:#}", main_totals(&fx.repo, bad.tip).unwrap_err());
    assert!(
        e.contains("dgrid-archive.json") && e.contains("completed"),
        "{e}"
    );
}

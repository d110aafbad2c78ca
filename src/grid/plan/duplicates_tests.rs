//! Ids with more than one file (pushed around the hook) and files that cannot be read: claiming
//! never picks such an id, and recording a result never fails on another file of its id.

use super::*;
use crate::grid::testkit::{
    self, claimed, file, grid, plain, result, task, task_result, FakeReaper, WorkerIntent as Case,
};
use crate::layout::State;
use serde_json::{json, Value};

const ME: &str = testkit::ME;

fn flat(state: State, id: &str, content: Value) -> (String, Value) {
    (format!("{}/{id}.json", state.dir()), content)
}

fn claims(files: &[(String, Value)]) -> Vec<String> {
    let fx = grid(files);
    let case = Case {
        claim: Some(claim::Request {
            node_id: ME.into(),
            max: 4,
            ahead: 0,
            lease: testkit::LEASE,
            labels: vec![],
            allow_network: false,
            admission: Default::default(),
        }),
        ..Case::default()
    };
    let applied = case
        .plan(&fx, &mut FakeReaper::default())
        .expect("the transition plans")
        .map(|c| c.value)
        .unwrap_or_default();
    applied.claimed.iter().map(|s| s.id.to_string()).collect()
}

#[test]
fn an_id_with_two_files_is_never_claimed() {
    let rows: Vec<(&str, Vec<(String, Value)>)> = vec![
        (
            "flat and sharded in the queue",
            vec![
                file(State::Queue, "dup", task("dup")),
                flat(State::Queue, "dup", task("dup")),
            ],
        ),
        (
            "queued and completed",
            vec![
                file(State::Queue, "dup", task("dup")),
                file(State::Completed, "dup", result("dup", "x", "success", 1)),
            ],
        ),
        (
            "queued and failed",
            vec![
                file(State::Queue, "dup", task("dup")),
                flat(State::Failed, "dup", result("dup", "x", "failed", 1)),
            ],
        ),
        (
            "queued and in progress",
            vec![
                file(State::Queue, "dup", task("dup")),
                file(
                    State::InProgress,
                    "dup",
                    claimed(task("dup"), "x", 1, "2026-01-01T12:05:00Z"),
                ),
            ],
        ),
    ];
    for (name, mut files) in rows {
        files.push(file(State::Queue, "single", task("single")));
        assert_eq!(claims(&files), ["single"], "{name}");
    }
}

/// The files of task `id` after `case` is planned and committed on `files`: (path, JSON).
fn after(files: &[(String, Value)], case: &Case, id: &str) -> Vec<(String, Value)> {
    let fx = grid(files);
    let change = case
        .plan(&fx, &mut FakeReaper::default())
        .expect("one file never fails the transition")
        .expect("something to write");
    assert_eq!(
        plain(&change.value.recorded),
        [(id.to_string(), 1)],
        "the result counts as recorded"
    );
    let snapshot = fx.after(&change.edits);
    snapshot
        .places(id)
        .map(|t| {
            let blob = fx.repo.find_blob(t.blob).expect("the blob");
            (t.path.clone(), serde_json::from_slice(&blob.data).unwrap())
        })
        .collect()
}

fn finishing(id: &str) -> Case {
    Case {
        results: vec![task_result(id, ME, "success", 1)],
        held: vec![id.into()],
        ..Case::default()
    }
}

#[test]
fn a_result_replaces_a_result_file_that_cannot_be_read() {
    let running = file(
        State::InProgress,
        "dup",
        claimed(task("dup"), ME, 1, "2026-01-01T12:05:00Z"),
    );
    for garbage in [
        flat(State::Completed, "dup", json!({"not": "a result"})),
        file(State::Completed, "dup", json!([1, 2])),
        flat(State::Failed, "dup", json!({"task_id": "dup"})),
    ] {
        let files = after(
            &[running.clone(), garbage.clone()],
            &finishing("dup"),
            "dup",
        );
        assert_eq!(files.len(), 1, "{garbage:?}: one file left: {files:?}");
        assert_eq!(files[0].0, layout::task_path(State::Completed, "dup"));
        assert_eq!(files[0].1["node_id"], ME, "{garbage:?}");
    }
    // Without the in-progress file (taken back meanwhile) the result still lands.
    let files = after(
        &[flat(State::Completed, "dup", json!({"x": 1}))],
        &finishing("dup"),
        "dup",
    );
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1["node_id"], ME);
}

#[test]
fn a_result_beside_a_readable_one_is_a_late_result_and_the_copy_run_is_removed() {
    let files = after(
        &[
            file(
                State::InProgress,
                "dup",
                claimed(task("dup"), ME, 1, "2026-01-01T12:05:00Z"),
            ),
            file(
                State::Completed,
                "dup",
                result("dup", "other", "success", 1),
            ),
        ],
        &finishing("dup"),
        "dup",
    );
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, layout::task_path(State::Completed, "dup"));
    assert_eq!(files[0].1["node_id"], "other");
    assert_eq!(files[0].1["late_results"][0]["node_id"], ME);
}

#[test]
fn a_queued_copy_beside_a_claim_of_a_node_with_no_record_runs() {
    // Pushed by hand: "dup" queued and claimed by "ghost", which has no record, lease far ahead.
    let files = [
        file(State::Queue, "dup", task("dup")),
        file(
            State::InProgress,
            "dup",
            claimed(task("dup"), "ghost", 1, "9999-01-01T00:00:00Z"),
        ),
    ];
    let fx = testkit::grid_as_is(&files);
    let case = Case::default();
    let change = case
        .plan(&fx, &mut FakeReaper::default())
        .expect("the transition plans")
        .expect("the ghost's claim is taken back");
    let snapshot = fx.after(&change.edits);
    let places: Vec<State> = snapshot.places("dup").map(|t| t.state).collect();
    assert_eq!(places, [State::Queue], "one queued file: claimable again");
    // And the next transition claims it.
    let mut after: Vec<(String, Value)> = vec![];
    for t in snapshot.places("dup") {
        let blob = fx.repo.find_blob(t.blob).expect("the blob");
        after.push((t.path.clone(), serde_json::from_slice(&blob.data).unwrap()));
    }
    assert_eq!(claims(&after), ["dup"]);
}

//! Maintainers' transitions: cancel of queued and running tasks, retry of failed ones.

use super::*;
use crate::grid::testkit::{claimed, error, file, grid, result, task, with, Fixture, NOW};
use serde_json::{json, Value};

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn conflict(err: anyhow::Error) -> String {
    err.downcast_ref::<Conflict>()
        .unwrap_or_else(|| panic!("a Conflict, not {err:#}"))
        .0
        .clone()
}

fn cancelled(fx: &Fixture, id: &str, reason: &str) -> (State, Value) {
    let change = cancel(
        &fx.repo,
        &fx.snapshot,
        &ids(&[id]),
        "maintainer",
        reason,
        &Limits::default(),
        crate::grid::testkit::now(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(change.summary, format!("cancel {id}"));
    fx.task_in(&fx.after(&change.edits), id).unwrap()
}

#[test]
fn cancelling_a_queued_task_fails_it_with_who_and_why() {
    let fx = grid(&[file(State::Queue, "q", task("q"))]);
    let (state, content) = cancelled(&fx, "q", "by mistake");
    assert_eq!(state, State::Failed);
    assert_eq!(content["status"], "cancelled");
    assert_eq!(content["node_id"], Value::Null, "no node ran it");
    assert_eq!(content["stderr"], "cancelled by maintainer: by mistake");
    assert_eq!(content["finished_at"], NOW);
    assert!(content.get("attempt").is_none());
    assert!(content.get("started_at").is_none());
    assert_eq!(content["task"], task("q"));
}

#[test]
fn cancelling_a_running_task_keeps_its_node_and_attempt_and_drops_the_claim() {
    let fx = grid(&[file(
        State::InProgress,
        "r",
        claimed(task("r"), "n1", 2, "2026-01-01T12:05:00Z"),
    )]);
    let (state, content) = cancelled(&fx, "r", "");
    assert_eq!(state, State::Failed);
    assert_eq!(content["node_id"], "n1");
    assert_eq!(content["attempt"], 2);
    assert_eq!(content["started_at"], "2026-01-01T11:50:00Z");
    assert_eq!(content["stderr"], "cancelled by maintainer");
    assert_eq!(content["task"], task("r"), "the spec without its claim");
}

#[test]
fn cancel_refuses_finished_and_unknown_tasks() {
    let fx = grid(&[
        file(State::Completed, "done", result("done", "n", "success", 1)),
        file(State::Failed, "bad", result("bad", "n", "failed", 1)),
        file(State::Queue, "q", task("q")),
    ]);
    let run = |id: &str| {
        error(cancel(
            &fx.repo,
            &fx.snapshot,
            &ids(&["q", id]),
            "m",
            "",
            &Limits::default(),
            crate::grid::testkit::now(),
        ))
    };
    assert_eq!(
        conflict(run("done")),
        "done is already completed: nothing to cancel"
    );
    assert_eq!(
        conflict(run("bad")),
        "bad is already failed: nothing to cancel"
    );
    assert_eq!(conflict(run("nope")), "no task \"nope\" on the grid");
}

#[test]
fn retry_queues_a_failed_task_again_with_fresh_attempts() {
    let spent = with(task("f"), "attempts", json!(2));
    let fx = grid(&[file(
        State::Failed,
        "f",
        with(result("f", "n", "lost", 3), "task", spent),
    )]);
    let change = retry(&fx.repo, &fx.snapshot, &ids(&["f"]), &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(change.summary, "retry f");
    let (state, content) = fx.task_in(&fx.after(&change.edits), "f").unwrap();
    assert_eq!(state, State::Queue);
    assert_eq!(content, task("f"), "no attempts used, no claim");
}

#[test]
fn retry_refuses_what_is_not_failed_or_cannot_be_queued_again() {
    let mut bare = result("bare", "n", "failed", 1);
    bare.as_object_mut().unwrap().remove("task");
    let fx = grid(&[
        file(State::Completed, "done", result("done", "n", "success", 1)),
        file(State::Queue, "q", task("q")),
        file(State::Failed, "bare", bare),
    ]);
    let run = |id: &str| {
        conflict(error(retry(
            &fx.repo,
            &fx.snapshot,
            &ids(&[id]),
            &Limits::default(),
        )))
    };
    assert_eq!(
        run("done"),
        "done is completed: only failed tasks are retried"
    );
    assert_eq!(run("q"), "q is queued: only failed tasks are retried");
    assert_eq!(
        run("bare"),
        "bare: its result does not carry the task spec, so it cannot be queued again"
    );
    assert_eq!(run("nope"), "no task \"nope\" on the grid");
}

#[test]
fn cancelling_a_replicated_task_in_progress_fails_it_and_ends_every_instance() {
    let entry = |n: u32, node: &str| {
        json!({"instance": n, "round": 1, "node_id": node, "claimed_at": "2026-01-01T11:50:00Z",
            "lease_expires_at": "2026-01-01T12:05:00Z", "attempt": 1})
    };
    let running = with(
        with(task("r"), "replicas", json!(3)),
        "instances",
        json!([entry(1, "a"), entry(2, "b")]),
    );
    let fx = grid(&[file(State::InProgress, "r", running)]);
    let (state, content) = cancelled(&fx, "r", "");
    assert_eq!(state, State::Failed);
    assert_eq!(content["status"], "cancelled");
    // Every instance's node finds the file gone from in_progress, and stops (`grid::replicated::quorum`).
    assert_eq!(
        content["task"]["instances"].as_array().map(Vec::len),
        Some(2)
    );
    let bytes = serde_json::to_vec(&content).unwrap();
    crate::task::parse_result("r.json", &bytes, &Limits::default()).expect("a valid result");
}

//! The worker's transition over hand-made snapshots, what happens to results: a result recorded
//! onto each state a task can be in, a result and a claim in one commit, late results, and the
//! reaping of a dead node's tasks.

use super::*;
use crate::grid::testkit::{
    self, claimed, file, grid, node, node_file, plain, result, task, task_result, with, FakeReaper,
    WorkerIntent as Case, NOW,
};
use crate::layout::State;
use serde_json::{json, Value};
use std::time::Duration;

const ME: &str = testkit::ME;
const OTHER: &str = "other";
const LEASE_UNTIL: &str = "2026-01-01T12:05:00Z";
const LEASE: Duration = testkit::LEASE;

fn late_nodes(file: &Value) -> Vec<(&str, u64, &str)> {
    file["late_results"].as_array().map_or(Vec::new(), |late| {
        late.iter()
            .map(|l| {
                (
                    l["node_id"].as_str().unwrap(),
                    l["attempt"].as_u64().unwrap(),
                    l["status"].as_str().unwrap(),
                )
            })
            .collect()
    })
}

#[test]
fn a_result_is_recorded_according_to_where_the_task_is() {
    struct Row {
        name: &'static str,
        on_grid: Vec<(String, Value)>,
        status: &'static str,
        /// Where the task is afterwards, and which node's result its file holds.
        after: Option<(State, &'static str)>,
        late: Vec<(&'static str, u64, &'static str)>,
        recorded: bool,
        writes: bool,
    }
    let queued = task("t");
    let rows = [
        Row {
            name: "queued (its claim was taken back, then my result came)",
            on_grid: vec![file(State::Queue, "t", queued.clone())],
            status: "success",
            after: Some((State::Completed, ME)),
            late: vec![],
            recorded: true,
            writes: true,
        },
        Row {
            name: "in progress by me",
            on_grid: vec![file(
                State::InProgress,
                "t",
                claimed(queued.clone(), ME, 1, LEASE_UNTIL),
            )],
            status: "success",
            after: Some((State::Completed, ME)),
            late: vec![],
            recorded: true,
            writes: true,
        },
        Row {
            name: "in progress by me, failed",
            on_grid: vec![file(
                State::InProgress,
                "t",
                claimed(queued.clone(), ME, 1, LEASE_UNTIL),
            )],
            status: "failed",
            after: Some((State::Failed, ME)),
            late: vec![],
            recorded: true,
            writes: true,
        },
        Row {
            name: "in progress by another node (took it over): my real work wins",
            on_grid: vec![file(
                State::InProgress,
                "t",
                claimed(queued.clone(), OTHER, 2, LEASE_UNTIL),
            )],
            status: "success",
            after: Some((State::Completed, ME)),
            late: vec![],
            recorded: true,
            writes: true,
        },
        Row {
            name: "completed by another node: appended as a late result",
            on_grid: vec![file(
                State::Completed,
                "t",
                result("t", OTHER, "success", 2),
            )],
            status: "success",
            after: Some((State::Completed, OTHER)),
            late: vec![(ME, 1, "success")],
            recorded: true,
            writes: true,
        },
        Row {
            name: "failed (lost) by another node: appended, the task stays failed",
            on_grid: vec![file(State::Failed, "t", result("t", OTHER, "lost", 1))],
            status: "success",
            after: Some((State::Failed, OTHER)),
            late: vec![(ME, 1, "success")],
            recorded: true,
            writes: true,
        },
        Row {
            name: "completed by me already (a push that seemed to fail)",
            on_grid: vec![file(State::Completed, "t", result("t", ME, "success", 1))],
            status: "success",
            after: Some((State::Completed, ME)),
            late: vec![],
            recorded: true,
            writes: false,
        },
        Row {
            name: "already among the late results",
            on_grid: vec![file(
                State::Completed,
                "t",
                with(
                    result("t", OTHER, "success", 2),
                    "late_results",
                    json!([{"node_id": ME, "attempt": 1, "status": "success", "exit_code": 0,
                            "finished_at": "2026-01-01T11:55:00Z"}]),
                ),
            )],
            status: "success",
            after: Some((State::Completed, OTHER)),
            late: vec![(ME, 1, "success")],
            recorded: true,
            writes: false,
        },
        Row {
            name: "completed, with a late result already: mine comes after it",
            on_grid: vec![file(
                State::Completed,
                "t",
                with(
                    result("t", OTHER, "success", 3),
                    "late_results",
                    json!([{"node_id": "third", "attempt": 2, "status": "failed", "exit_code": 1,
                            "finished_at": "2026-01-01T11:52:00Z"}]),
                ),
            )],
            status: "timeout",
            after: Some((State::Completed, OTHER)),
            late: vec![("third", 2, "failed"), (ME, 1, "timeout")],
            recorded: true,
            writes: true,
        },
        Row {
            name: "gone (removed by a maintainer)",
            on_grid: vec![],
            status: "success",
            after: None,
            late: vec![],
            recorded: false,
            writes: false,
        },
    ];
    for row in rows {
        let fx = grid(&row.on_grid);
        let case = Case {
            results: vec![task_result("t", ME, row.status, 1)],
            ..Case::default()
        };
        // Every other node is dead: a task a result is recorded for is never also reaped.
        let mut reaper = FakeReaper::dead(&[OTHER]);
        let change = case
            .plan(&fx, &mut reaper)
            .unwrap()
            .unwrap_or_else(|| panic!("{}: the caller learns what became of its result", row.name));
        let applied = &change.value;
        assert_eq!(
            plain(&applied.recorded),
            if row.recorded {
                vec![("t".to_string(), 1)]
            } else {
                vec![]
            },
            "{}",
            row.name
        );
        assert_eq!(
            applied.orphaned.is_empty(),
            row.recorded,
            "{}: orphaned {:?}",
            row.name,
            applied.orphaned
        );
        assert!(applied.reaped.is_empty(), "{}", row.name);
        assert_eq!(!change.edits.is_empty(), row.writes, "{}", row.name);
        let after = fx.after(&change.edits);
        let found = fx.task_in(&after, "t");
        match (row.after, &found) {
            (None, None) => {}
            (Some((state, node)), Some((found_state, content))) => {
                assert_eq!(*found_state, state, "{}", row.name);
                assert_eq!(content["node_id"], node, "{}", row.name);
                assert!(content.get("claim").is_none(), "{}", row.name);
                assert_eq!(late_nodes(content), row.late, "{}", row.name);
            }
            (expected, found) => panic!("{}: expected {expected:?}, found {found:?}", row.name),
        }
        // One file per task, whatever happened.
        assert_eq!(
            after.tasks.len(),
            usize::from(row.after.is_some()),
            "{}",
            row.name
        );
    }
}

#[test]
fn a_result_and_a_claim_share_one_commit_with_the_heartbeat() {
    let fx = grid(&[
        file(
            State::InProgress,
            "done",
            claimed(task("done"), ME, 1, LEASE_UNTIL),
        ),
        file(State::Queue, "next", task("next")),
    ]);
    let case = Case {
        results: vec![task_result("done", ME, "success", 1)],
        held: vec!["done".into()],
        node_running: vec!["done".into()],
        claim: Some(claim::Request {
            node_id: ME.into(),
            max: 1,
            ahead: 0,
            lease: LEASE,
            labels: vec![],
            allow_network: false,
            admission: Default::default(),
        }),
        started: true,
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(change.summary, "complete done, claim next by me");
    let claimed_ids: Vec<&str> = change.value.claimed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(claimed_ids, ["next"]);
    let after = fx.after(&change.edits);
    assert_eq!(fx.task_in(&after, "done").unwrap().0, State::Completed);
    let (state, next) = fx.task_in(&after, "next").unwrap();
    assert_eq!(state, State::InProgress);
    assert_eq!(next["claim"]["node_id"], ME);
    assert_eq!(next["claim"]["attempt"], 1);
    assert_eq!(next["claim"]["claimed_at"], NOW);
    assert_eq!(next["claim"]["lease_expires_at"], "2026-01-01T12:15:00Z");
    let record = fx.node_in(&after, ME).unwrap();
    assert_eq!(record["running"], json!(["done", "next"]));
}

#[test]
fn a_dead_nodes_task_is_requeued_or_failed_when_its_attempts_are_used_up() {
    struct Row {
        name: &'static str,
        task: Value,
        attempt: u32,
        dead: bool,
        /// Where it is afterwards and the attempts its file counts (queue) or its status (failed).
        after: (State, Value),
    }
    let rows = [
        Row {
            name: "first attempt lost: back in the queue, one attempt used",
            task: task("t"),
            attempt: 1,
            dead: true,
            after: (State::Queue, json!(1)),
        },
        Row {
            name: "second of three: two used",
            task: task("t"),
            attempt: 2,
            dead: true,
            after: (State::Queue, json!(2)),
        },
        Row {
            name: "third of three (the default): failed as lost",
            task: task("t"),
            attempt: 3,
            dead: true,
            after: (State::Failed, json!("lost")),
        },
        Row {
            name: "max_attempts 1: failed as lost at once",
            task: with(task("t"), "max_attempts", json!(1)),
            attempt: 1,
            dead: true,
            after: (State::Failed, json!("lost")),
        },
        Row {
            name: "the policy says the node lives: left alone",
            task: task("t"),
            attempt: 1,
            dead: false,
            after: (State::InProgress, Value::Null),
        },
    ];
    for row in rows {
        let fx = grid(&[
            file(
                State::InProgress,
                "t",
                claimed(row.task.clone(), OTHER, row.attempt, LEASE_UNTIL),
            ),
            node_file(OTHER, node(OTHER, "2026-01-01T09:00:00Z", "theirs")),
        ]);
        let mut reaper = FakeReaper::dead(if row.dead { &[OTHER] } else { &[] });
        let case = Case {
            heartbeat: true,
            started: true,
            ..Case::default()
        };
        let change = case.plan(&fx, &mut reaper).unwrap().unwrap();
        assert_eq!(reaper.asked, ["t"], "{}", row.name);
        let after = fx.after(&change.edits);
        let (state, content) = fx.task_in(&after, "t").unwrap();
        assert_eq!(state, row.after.0, "{}", row.name);
        match state {
            State::Queue => {
                assert_eq!(content["attempts"], row.after.1, "{}", row.name);
                assert!(content.get("claim").is_none(), "{}", row.name);
            }
            State::Failed => {
                assert_eq!(content["status"], row.after.1, "{}", row.name);
                assert_eq!(content["node_id"], OTHER, "{}", row.name);
                assert_eq!(content["attempt"], row.attempt, "{}", row.name);
                assert_eq!(content["finished_at"], NOW, "{}", row.name);
                let stderr = content["stderr"].as_str().unwrap();
                assert!(
                    stderr.starts_with("lost: node other stopped heartbeating"),
                    "{}: {stderr}",
                    row.name
                );
                assert!(content["task"].get("claim").is_none(), "{}", row.name);
            }
            _ => assert_eq!(content["claim"]["node_id"], OTHER, "{}", row.name),
        }
        if row.dead {
            assert_eq!(
                change.value.reaped,
                [("t".to_string(), OTHER.to_string())],
                "{}",
                row.name
            );
            assert_eq!(change.summary, "reap t from other by me", "{}", row.name);
        } else {
            assert!(change.value.reaped.is_empty(), "{}", row.name);
            assert_eq!(change.summary, "heartbeat me", "{}", row.name);
        }
    }
}

//! The worker's transition over hand-made snapshots: a result recorded onto each state a task can
//! be in, reaping, releases, lease renewal, late results, unheld claims and the heartbeat.

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
const SESSION: &str = testkit::SESSION;
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

#[test]
fn a_claim_of_this_node_that_it_does_not_hold_goes_back() {
    // (started, attempt, held) -> (state, attempts counted, unheld, reaped)
    let rows: [(bool, u32, bool, State, Value, bool, bool); 5] = [
        // A push of this process that seemed to fail: the task never started, no attempt used.
        (true, 1, false, State::Queue, Value::Null, true, false),
        (true, 2, false, State::Queue, json!(1), true, false),
        // The node's previous run held it and may have run it: that attempt counts.
        (false, 1, false, State::Queue, json!(1), false, true),
        (false, 3, false, State::Failed, Value::Null, false, true),
        // Held: running here, left alone.
        (true, 1, true, State::InProgress, Value::Null, false, false),
    ];
    for (started, attempt, held, state, attempts, unheld, reaped) in rows {
        let name = format!("started {started}, attempt {attempt}, held {held}");
        let fx = grid(&[file(
            State::InProgress,
            "t",
            claimed(task("t"), ME, attempt, LEASE_UNTIL),
        )]);
        let case = Case {
            held: if held { vec!["t".into()] } else { vec![] },
            heartbeat: true,
            started,
            ..Case::default()
        };
        let mut reaper = FakeReaper::default();
        let change = case.plan(&fx, &mut reaper).unwrap().unwrap();
        assert!(
            reaper.asked.is_empty(),
            "{name}: its own claims are never the policy's call"
        );
        let after = fx.after(&change.edits);
        let (found, content) = fx.task_in(&after, "t").unwrap();
        assert_eq!(found, state, "{name}");
        if state == State::Queue {
            assert_eq!(
                content.get("attempts").cloned().unwrap_or(Value::Null),
                attempts,
                "{name}"
            );
        }
        assert_eq!(!change.value.unheld.is_empty(), unheld, "{name}");
        assert_eq!(!change.value.reaped.is_empty(), reaped, "{name}");
        if unheld {
            assert_eq!(change.summary, "release t by me", "{name}");
        }
    }
}

#[test]
fn a_claim_the_previous_run_noted_as_never_started_goes_back_without_using_its_attempt() {
    // (noted claimed_at, attempt noted) -> attempts counted in the queue file
    let rows = [
        // Noted: claimed ahead, never started, then the worker was killed.
        ("2026-01-01T11:50:00Z", 2, json!(1)),
        // A note of another claim (an earlier one of the same task): this claim may have run.
        ("2026-01-01T11:40:00Z", 2, json!(2)),
        ("2026-01-01T11:50:00Z", 1, json!(2)),
    ];
    for (noted_at, noted_attempt, attempts) in rows {
        let name = format!("noted {noted_at} attempt {noted_attempt}");
        let fx = grid(&[file(
            State::InProgress,
            "t",
            claimed(task("t"), ME, 2, LEASE_UNTIL),
        )]);
        let case = Case {
            heartbeat: true,
            never_started: vec![("t".into(), noted_attempt, noted_at.into())],
            ..Case::default()
        };
        let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
        let after = fx.after(&change.edits);
        let (found, content) = fx.task_in(&after, "t").unwrap();
        assert_eq!(found, State::Queue, "{name}");
        assert_eq!(
            content.get("attempts").cloned(),
            Some(attempts.clone()),
            "{name}"
        );
        let noted = attempts == json!(1);
        assert_eq!(!change.value.never_started.is_empty(), noted, "{name}");
        assert_eq!(change.value.reaped.is_empty(), noted, "{name}");
    }
}

#[test]
fn a_release_puts_the_task_back_without_using_the_attempt() {
    // (claimed by, claim attempt, released attempt) -> released?
    let rows = [
        (ME, 2, 2, true),
        (ME, 1, 1, true),
        (ME, 2, 1, false),
        (OTHER, 1, 1, false),
    ];
    for (by, claim_attempt, released, expect) in rows {
        let name = format!("claimed by {by} for {claim_attempt}, released {released}");
        let fx = grid(&[file(
            State::InProgress,
            "t",
            claimed(task("t"), by, claim_attempt, LEASE_UNTIL),
        )]);
        let case = Case {
            releases: vec![("t".into(), released)],
            held: vec!["t".into()],
            started: true,
            ..Case::default()
        };
        let change = case.plan(&fx, &mut FakeReaper::default()).unwrap();
        if !expect {
            assert!(change.is_none(), "{name}: nothing to write");
            continue;
        }
        let change = change.unwrap();
        assert_eq!(change.summary, "release t by me", "{name}");
        let (state, content) = fx.task_in(&fx.after(&change.edits), "t").unwrap();
        assert_eq!(state, State::Queue, "{name}");
        assert!(content.get("claim").is_none(), "{name}");
        let used = content.get("attempts").and_then(Value::as_u64).unwrap_or(0);
        assert_eq!(used, u64::from(claim_attempt - 1), "{name}");
    }
}

#[test]
fn running_tasks_have_their_lease_renewed_or_are_reported_lost() {
    let fx = grid(&[
        file(
            State::InProgress,
            "mine",
            claimed(task("mine"), ME, 1, LEASE_UNTIL),
        ),
        file(
            State::InProgress,
            "taken",
            claimed(task("taken"), OTHER, 2, LEASE_UNTIL),
        ),
    ]);
    let case = Case {
        running: vec![("mine".into(), 1), ("taken".into(), 1), ("gone".into(), 1)],
        held: vec!["mine".into(), "taken".into(), "gone".into()],
        node_running: vec!["mine".into(), "taken".into(), "gone".into()],
        started: true,
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(change.value.lost_claims, ["taken", "gone"]);
    assert_eq!(change.summary, "heartbeat me");
    let after = fx.after(&change.edits);
    let (state, mine) = fx.task_in(&after, "mine").unwrap();
    assert_eq!(state, State::InProgress);
    assert_eq!(
        mine["claim"],
        json!({"node_id": ME, "claimed_at": "2026-01-01T11:50:00Z",
               "lease_expires_at": "2026-01-01T12:15:00Z", "attempt": 1})
    );
    let (_, taken) = fx.task_in(&after, "taken").unwrap();
    assert_eq!(
        taken["claim"]["node_id"], OTHER,
        "someone else's claim is not touched"
    );
    assert_eq!(
        fx.node_in(&after, ME).unwrap()["running"],
        json!(["mine"]),
        "the record no longer lists what runs elsewhere"
    );
}

#[test]
fn a_heartbeat_alone_writes_only_the_node_record_and_nothing_to_do_is_no_change() {
    let fx = grid(&[file(State::Queue, "waiting", task("waiting"))]);
    let quiet = Case {
        started: true,
        ..Case::default()
    };
    assert!(quiet
        .plan(&fx, &mut FakeReaper::default())
        .unwrap()
        .is_none());

    let beat = Case {
        heartbeat: true,
        started: true,
        ..Case::default()
    };
    let change = beat.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(change.summary, "heartbeat me");
    let paths: Vec<&str> = change
        .edits
        .iter()
        .map(|e| match e {
            Edit::Write { path, .. } | Edit::Remove { path } => path.as_str(),
        })
        .collect();
    assert_eq!(paths, ["nodes/me.json"]);
    let after = fx.after(&change.edits);
    let record = fx.node_in(&after, ME).unwrap();
    assert_eq!(record["last_heartbeat"], NOW);
    assert_eq!(record["session"], SESSION);
    assert_eq!(fx.task_in(&after, "waiting").unwrap().0, State::Queue);
}

#[test]
fn another_live_session_under_this_node_id_stops_the_transition() {
    // (their last heartbeat, this process started) -> may write?
    let rows = [
        ("2026-01-01T11:59:00Z", true, false),
        ("2026-01-01T11:59:00Z", false, false),
        // Silent for longer than a lease and the skew margin: taken over at start.
        ("2026-01-01T09:00:00Z", false, true),
        // Once running, any other session means this one was taken over.
        ("2026-01-01T09:00:00Z", true, false),
    ];
    for (heartbeat, started, may_write) in rows {
        let fx = grid(&[node_file(ME, node(ME, heartbeat, "someone-else"))]);
        let case = Case {
            heartbeat: true,
            started,
            ..Case::default()
        };
        let planned = case.plan(&fx, &mut FakeReaper::default());
        assert_eq!(
            planned.is_ok(),
            may_write,
            "heartbeat {heartbeat}, started {started}"
        );
        if let Err(e) = planned {
            assert!(
                e.downcast_ref::<crate::grid::plan::ownership::NodeIdInUse>()
                    .is_some(),
                "{e:#}"
            );
        }
    }
}

#[test]
fn a_record_dated_in_the_future_refuses_a_start_only_until_it_has_looked_the_same_for_a_lease() {
    // A dead worker whose clock ran two days ahead, or a forgery: its heartbeat date never runs
    // out, so silence is also judged by how long this state dir has seen the record unchanged.
    let fx = grid(&[node_file(
        ME,
        node(ME, "2026-01-03T12:00:00Z", "someone-else"),
    )]);
    let blob = fx.snapshot.nodes[0].blob;
    let other_blob = gix::ObjectId::empty_blob(gix::hash::Kind::Sha1);
    // (the record watched, for how long) -> may write?
    let rows = [
        (None, false),
        (Some((blob, Duration::from_secs(900))), false),
        (Some((other_blob, Duration::from_secs(5000))), false),
        // The silence is 960 s here (lease and skew).
        (Some((blob, Duration::from_secs(961))), true),
    ];
    for (watched, may_write) in rows {
        let case = Case {
            heartbeat: true,
            watched,
            ..Case::default()
        };
        let planned = case.plan(&fx, &mut FakeReaper::default());
        assert_eq!(planned.is_ok(), may_write, "{watched:?}");
        if let Err(e) = planned {
            let message = format!("{e:#}");
            assert!(
                message.contains("dated 172800 s in the future"),
                "{message}"
            );
        }
    }
}

#[test]
fn a_record_of_another_session_while_this_one_writes_is_replaced_not_obeyed() {
    // A forged record (or a misconfigured worker's) under this node id, while this process wrote
    // a moment ago: no rightful takeover is possible, so this one keeps its id and says so.
    let fx = grid(&[node_file(ME, node(ME, NOW, "someone-else"))]);
    let case = Case {
        heartbeat: true,
        started: true,
        since_last_write: Some(Duration::from_secs(5)),
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(change.value.notices.len(), 1);
    assert!(
        change.value.notices[0].contains("forged"),
        "{}",
        change.value.notices[0]
    );
    let after = fx.after(&change.edits);
    assert_eq!(fx.node_in(&after, ME).unwrap()["session"], SESSION);
    // Silent for longer than a lease (the silence is 960 s here): a takeover, so it stops.
    let silent = Case {
        since_last_write: Some(Duration::from_secs(1000)),
        ..case
    };
    assert!(silent.plan(&fx, &mut FakeReaper::default()).is_err());
}

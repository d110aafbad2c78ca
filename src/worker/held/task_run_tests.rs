//! The phases of a held task, driven by hand: no container, no thread, no grid.

use super::*;
use crate::exec::capture::Captured;
use crate::task::{Limits, StreamInfo};
use chrono::{DateTime, Utc};

const NODE: &str = "node-a";

fn spec(id: &str) -> TaskSpec {
    let json = format!(
        r#"{{"id": "{id}", "image": "busybox", "command": "echo hi", "created_at": "2026-01-01T00:00:00Z", "timeout": 60, "submitted_by": "test"}}"#
    );
    task::parse_task(
        "t.json",
        json.as_bytes(),
        &Limits::default(),
        task::Origin::Required,
    )
    .expect("a valid test task")
}

fn captured(text: &str) -> Captured {
    Captured {
        kept: text.as_bytes().to_vec(),
        info: StreamInfo {
            total_bytes: text.len() as u64,
            sha256: String::new(),
            truncated: false,
        },
    }
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ran(id: &str, attempt: u32, status: Status) -> Exited {
    Exited {
        spec: spec(id),
        attempt: Attempt::new(attempt).unwrap(),
        outcome: Ok(Execution {
            status,
            exit_code: Some(0),
            stdout: captured("hi\n"),
            stderr: captured(""),
            started_at: time("2026-01-01T00:00:00Z"),
            finished_at: time("2026-01-01T00:00:02Z"),
        }),
    }
}

fn could_not_run(id: &str, attempt: u32) -> Exited {
    Exited {
        spec: spec(id),
        attempt: Attempt::new(attempt).unwrap(),
        outcome: Err(InfraError("docker is gone".into())),
    }
}

fn key(id: &str, attempt: u32) -> (TaskId, Attempt) {
    (TaskId::parse(id).unwrap(), Attempt::new(attempt).unwrap())
}

/// Ends `exited` and, like the worker, spools (here: keeps) a reported result.
fn end(held: &mut HeldTasks, exited: Exited) -> Option<TaskEnd> {
    let end = held.exited(exited, NODE, None);
    if let Some(TaskEnd::Report(result)) = &end {
        held.finished(TaskResult::clone(result));
    }
    end
}

#[test]
fn a_running_task_is_held_takes_a_slot_and_has_its_lease_renewed() {
    let mut held = HeldTasks::default();
    let kill = held.track(&key("t1", 2).0, key("t1", 2).1, None);
    assert_eq!(held.running(), [key("t1", 2)]);
    assert_eq!(held.held(), ["t1"]);
    assert_eq!(held.containers(), 1);
    assert!(held.results().is_empty() && held.releases().is_empty());
    assert!(!held.owed_to_grid(), "a lease renewal rides on a heartbeat");
    assert!(!kill.load(Ordering::SeqCst));
}

#[test]
fn a_task_that_ran_waits_with_its_result_until_the_grid_records_it() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 2).0, key("t1", 2).1, None);
    let Some(TaskEnd::Report(result)) = end(&mut held, ran("t1", 2, Status::Success)) else {
        panic!("a task that ran reports");
    };
    assert_eq!(
        (
            result.task_id.as_str(),
            result.node_id.as_str(),
            result.attempt().number()
        ),
        ("t1", NODE, 2)
    );
    assert_eq!(result.duration_ms, Some(2000));
    assert_eq!(result.stdout, "hi\n");
    let task = result.task.as_ref().expect("the result keeps its task");
    assert!(task.claim.is_none() && task.attempts.is_none());
    assert_eq!(held.results(), [*result]);
    assert!(held.owed_to_grid());
    assert!(held.running().is_empty());
    assert_eq!(held.containers(), 0, "its slot is free");
    assert_eq!(
        held.held(),
        ["t1"],
        "still held: no other claim of it is taken back"
    );

    held.settle(&Applied::default());
    assert_eq!(held.results().len(), 1, "not recorded yet");
    held.settle(&Applied {
        recorded: vec![key("t1", 2)],
        ..Applied::default()
    });
    assert!(held.is_empty());
}

#[test]
fn a_result_whose_task_was_removed_leaves_too() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    end(&mut held, ran("t1", 1, Status::Failed));
    held.settle(&Applied {
        orphaned: vec![key("t1", 1)],
        ..Applied::default()
    });
    assert!(held.is_empty());
}

#[test]
fn spooled_results_are_held_by_task_and_attempt() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    let Some(TaskEnd::Report(first)) = held.exited(ran("t1", 1, Status::Success), NODE, None)
    else {
        panic!("a task that ran reports");
    };
    let mut second = TaskResult::clone(&first);
    second.recorded_attempt = Some(Attempt::new(2).unwrap());
    let mut held = HeldTasks::from_spooled(vec![second.clone(), *first.clone()]);
    assert_eq!(held.results(), [*first, second]);
    assert_eq!(held.held(), ["t1", "t1"]);
    held.settle(&Applied {
        recorded: vec![key("t1", 2)],
        ..Applied::default()
    });
    assert_eq!(held.results().len(), 1);
}

#[test]
fn at_shutdown_a_killed_task_goes_back_to_the_queue_once() {
    let mut held = HeldTasks::default();
    let kill = held.track(&key("t1", 1).0, key("t1", 1).1, None);
    assert_eq!(held.stop_for_shutdown(), ["t1"]);
    assert!(kill.load(Ordering::SeqCst), "its container is killed");
    assert!(held.running().is_empty(), "its lease is no longer renewed");
    assert_eq!(held.containers(), 1, "its container still takes a slot");
    assert!(held.stop_for_shutdown().is_empty(), "killed once");

    assert!(matches!(
        end(&mut held, ran("t1", 1, Status::Cancelled)),
        Some(TaskEnd::Released)
    ));
    assert_eq!(held.releases(), [key("t1", 1)]);
    assert!(held.owed_to_grid());
    assert_eq!(held.held(), ["t1"]);
    held.settle(&Applied::default());
    assert!(held.is_empty(), "a release is pushed once");
}

#[test]
fn at_shutdown_a_task_that_finished_before_the_kill_reports_its_result() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    held.stop_for_shutdown();
    assert!(matches!(
        end(&mut held, ran("t1", 1, Status::Success)),
        Some(TaskEnd::Report(_))
    ));
    assert!(held.releases().is_empty());
    assert_eq!(held.results().len(), 1);
}

#[test]
fn a_task_whose_claim_was_lost_is_killed_and_reports_nothing() {
    let mut held = HeldTasks::default();
    let lost = held.track(&key("t1", 1).0, key("t1", 1).1, None);
    let kept = held.track(&key("t2", 1).0, key("t2", 1).1, None);
    held.settle(&Applied {
        lost_claims: vec![key("t1", 1).0],
        ..Applied::default()
    });
    assert!(lost.load(Ordering::SeqCst) && !kept.load(Ordering::SeqCst));
    assert_eq!(held.running(), [key("t2", 1)]);
    assert!(matches!(
        end(&mut held, ran("t1", 1, Status::Success)),
        Some(TaskEnd::NotOurs)
    ));
    assert_eq!(held.held(), ["t2"]);
    assert!(held.results().is_empty() && held.releases().is_empty());
}

#[test]
fn a_task_stopped_for_shutdown_is_still_released_when_its_claim_is_lost_meanwhile() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    held.stop_for_shutdown();
    held.settle(&Applied {
        lost_claims: vec![key("t1", 1).0],
        ..Applied::default()
    });
    assert!(matches!(
        end(&mut held, ran("t1", 1, Status::Cancelled)),
        Some(TaskEnd::Released)
    ));
}

#[test]
fn a_task_docker_could_not_run_goes_back_to_the_queue() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 3).0, key("t1", 3).1, None);
    let Some(TaskEnd::CannotRun(why)) = end(&mut held, could_not_run("t1", 3)) else {
        panic!("an infrastructure failure is reported as such");
    };
    assert_eq!(why.0, "docker is gone");
    assert_eq!(held.releases(), [key("t1", 3)]);
    assert!(held.results().is_empty());
}

#[test]
fn the_end_of_a_container_that_is_not_running_here_changes_nothing() {
    let mut held = HeldTasks::default();
    assert!(end(&mut held, ran("t1", 1, Status::Success)).is_none());
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    assert!(end(&mut held, ran("t1", 2, Status::Success)).is_none());
    assert_eq!(held.running(), [key("t1", 1)]);
    end(&mut held, could_not_run("t1", 1));
    assert!(end(&mut held, ran("t1", 1, Status::Success)).is_none());
    assert_eq!(
        held.releases(),
        [key("t1", 1)],
        "a release is not a container"
    );
}

#[test]
fn kill_all_kills_every_container_and_forget_drops_them() {
    let mut held = HeldTasks::default();
    let a = held.track(&key("t1", 1).0, key("t1", 1).1, None);
    let b = held.track(&key("t2", 1).0, key("t2", 1).1, None);
    held.stop_for_shutdown();
    let c = held.track(&key("t3", 1).0, key("t3", 1).1, None);
    held.kill_all();
    assert!([a, b, c].iter().all(|k| k.load(Ordering::SeqCst)));
    for id in ["t1", "t2", "t3"] {
        held.forget(&ran(id, 1, Status::Cancelled));
    }
    assert!(held.is_empty());
}

#[test]
fn a_task_claimed_ahead_waits_with_its_lease_renewed_and_goes_back_on_shutdown() {
    let mut held = HeldTasks::default();
    let mut urgent = spec("urgent");
    urgent.priority = Some(5);
    held.hold(spec("later"), Attempt::FIRST);
    held.hold(urgent, Attempt::FIRST);
    held.hold(spec("gone"), Attempt::FIRST);
    assert_eq!(held.waiting(), 3);
    assert_eq!(held.containers(), 0, "no container yet: no slot taken");
    assert_eq!(held.leased().len(), 3, "leases renewed while waiting");
    assert!(held.running().is_empty(), "not in the node's running list");
    assert_eq!(held.claimed().count(), 3, "a cancel is looked for");
    assert!(!held.owed_to_grid());
    // A cancel reaches a waiting task: it is dropped, nothing to report.
    let dropped = held.settle(&Applied {
        lost_claims: vec![TaskId::parse("gone").unwrap()],
        ..Applied::default()
    });
    assert_eq!(dropped, [TaskId::parse("gone").unwrap()]);
    assert_eq!(held.waiting(), 2);
    // The highest priority starts first.
    let (next, attempt) = held.next_waiting().unwrap();
    assert_eq!((next.id.as_str(), attempt), ("urgent", Attempt::FIRST));
    assert_eq!(held.waiting(), 1);
    // A higher priority queued: the lower ones waiting go back (here: none below 0).
    assert!(held.release_waiting_below(0).is_empty());
    // Shutdown: back to the queue without using the attempt (a release).
    assert_eq!(held.release_waiting(), [TaskId::parse("later").unwrap()]);
    assert_eq!(held.releases(), [key("later", 1)]);
    assert!(held.settled_by_one_push(true));
    assert!(!held.settled_by_one_push(false));
}

#[test]
fn waiting_tasks_below_a_queued_priority_go_back() {
    let mut held = HeldTasks::default();
    let mut high = spec("high");
    high.priority = Some(9);
    held.hold(high, Attempt::FIRST);
    held.hold(spec("low"), Attempt::FIRST);
    assert_eq!(
        held.release_waiting_below(5),
        [TaskId::parse("low").unwrap()]
    );
    assert_eq!(held.waiting(), 1);
    assert_eq!(held.releases(), [key("low", 1)]);
}

#[test]
fn a_result_awaiting_its_quorum_stays_held_and_sent_but_owes_no_push() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    let Some(TaskEnd::Report(result)) = end(&mut held, ran("t1", 1, Status::Success)) else {
        panic!("a task that ran reports");
    };
    assert!(held.owed_to_grid(), "its commitment is owed");
    held.settle(&Applied {
        awaiting: vec![key("t1", 1)],
        ..Applied::default()
    });
    assert_eq!(
        held.results(),
        [*result.clone()],
        "sent again with each transition"
    );
    assert_eq!(held.awaiting(), [*result]);
    assert!(
        !held.owed_to_grid(),
        "waiting for others is no reason to push"
    );
    assert!(!held.settled_by_one_push(true));
    assert_eq!(held.held(), ["t1"], "its entry is not taken back");
    assert_eq!(
        held.claimed().collect::<Vec<_>>(),
        ["t1"],
        "its entry's lease is renewed; its task leaving in_progress is news"
    );
    // Still awaiting after the next transition; then discarded (its entry was dropped).
    held.settle(&Applied {
        awaiting: vec![key("t1", 1)],
        ..Applied::default()
    });
    assert_eq!(held.awaiting().len(), 1);
    held.settle(&Applied {
        discarded: vec![key("t1", 1)],
        ..Applied::default()
    });
    assert!(held.is_empty());
}

#[test]
fn a_result_awaiting_its_quorum_leaves_when_the_task_settles() {
    let mut held = HeldTasks::default();
    held.track(&key("t1", 1).0, key("t1", 1).1, None);
    end(&mut held, ran("t1", 1, Status::Success));
    held.settle(&Applied {
        awaiting: vec![key("t1", 1)],
        ..Applied::default()
    });
    held.settle(&Applied {
        recorded: vec![key("t1", 1)],
        ..Applied::default()
    });
    assert!(held.is_empty());
}

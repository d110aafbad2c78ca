//! The worker's transition over hand-made snapshots, what happens to claims and the node record:
//! unheld claims and never-started ones taken back, releases, lease renewal, the heartbeat, and
//! another session under this node id; a node record dated in the future.

use super::*;
use crate::grid::testkit::{
    self, claimed, file, grid, node, node_file, task, with, FakeReaper, WorkerIntent as Case, NOW,
};
use crate::layout::State;
use serde_json::{json, Value};
use std::time::Duration;

const ME: &str = testkit::ME;
const OTHER: &str = "other";
const SESSION: &str = testkit::SESSION;
const LEASE_UNTIL: &str = "2026-01-01T12:05:00Z";

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
    assert_eq!(paths, [crate::layout::node_path(ME)]);
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

/// A queued file whose resources docker refuses on any node (`cpus` 0.001, `memory` "1k") goes to
/// `failed/` as `invalid` with its problems, in a push the worker makes anyway (a heartbeat here);
/// a file only this node's policy refuses, or one a newer version may read, stays queued, and
/// with nothing else to push nothing is pushed for it.
#[test]
fn a_file_no_node_will_run_fails_as_invalid_in_a_push_made_anyway() {
    let asking = |id: &str, resources: Value| with(task(id), "resources", resources);
    let fx = grid(&[
        file(
            State::Queue,
            "tiny",
            asking("tiny", json!({"cpus": 0.001, "memory": "1k"})),
        ),
        file(State::Queue, "big", asking("big", json!({"cpus": 64}))),
        file(
            State::Queue,
            "newer",
            asking("newer", json!({"cpus": 0.001, "gpus": 1})),
        ),
    ]);
    let mut gate = crate::grid::policy::admission::Admission::default();
    gate.max_cpus = Some(2.0);
    let request = crate::grid::plan::claim::Request {
        node_id: ME.into(),
        max: 1,
        ahead: 0,
        lease: Duration::from_secs(900),
        labels: Vec::new(),
        allow_network: false,
        admission: std::sync::Arc::new(gate),
    };
    let quiet = Case {
        claim: Some(request.clone()),
        ..Case::default()
    };
    assert!(
        quiet
            .plan(&fx, &mut FakeReaper::default())
            .unwrap()
            .is_none(),
        "no push of its own"
    );
    let beat = Case {
        claim: Some(request),
        heartbeat: true,
        ..Case::default()
    };
    let change = beat.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let after = fx.after(&change.edits);
    let (state, result) = fx.task_in(&after, "tiny").unwrap();
    assert_eq!(state, State::Failed);
    assert_eq!(result["status"], "invalid");
    assert_eq!(result["node_id"], ME);
    let stderr = result["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("\"resources.cpus\"") && stderr.contains("\"resources.memory\""),
        "{stderr}"
    );
    let failed: Vec<String> = (change.value.invalid.iter())
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(failed, ["tiny"]);
    for stays in ["big", "newer"] {
        assert_eq!(
            fx.task_in(&after, stays).unwrap().0,
            State::Queue,
            "{stays}"
        );
    }
    // What the worker wrote reads back as a result.
    let tiny = after.get("tiny").unwrap();
    let read = crate::grid::read::snapshot::load_result(&fx.repo, tiny, &Default::default());
    assert_eq!(read.unwrap().status, crate::task::Status::Invalid);
}

/// Bytes of the tree objects in `tree` that `before` does not have: what a commit adds to the
/// repository besides blobs.
fn new_tree_bytes(repo: &gix::Repository, before: gix::ObjectId, tree: gix::ObjectId) -> u64 {
    fn all(repo: &gix::Repository, tree: gix::ObjectId, into: &mut Vec<(gix::ObjectId, u64)>) {
        let object = repo.find_tree(tree).unwrap();
        into.push((tree, object.data.len() as u64));
        for entry in object.decode().unwrap().entries {
            if entry.mode.is_tree() {
                all(repo, entry.oid.to_owned(), into);
            }
        }
    }
    let (mut old, mut new) = (Vec::new(), Vec::new());
    all(repo, before, &mut old);
    all(repo, tree, &mut new);
    let old: std::collections::HashSet<_> = old.into_iter().map(|(id, _)| id).collect();
    new.iter()
        .filter(|(id, _)| !old.contains(id))
        .map(|(_, n)| n)
        .sum()
}

/// After a flood of flat node records (the seed's layout, or thousands pushed around the hook),
/// the next push a worker makes moves them to their shards unchanged, a flat record shadowed by a
/// sharded one goes, and every push after that rewrites small trees only (the flat folder was
/// rewritten whole by every heartbeat; `tests/it/node_records.rs` floods a real grid with 30,000).
#[test]
fn flat_node_records_move_to_their_shards_and_later_writes_stay_small() {
    const FLOOD: usize = 3_000;
    let mut files: Vec<(String, Value)> = (0..FLOOD)
        .map(|i| {
            let id = format!("flood-{i}");
            let record = node(&id, "2026-01-01T11:59:00Z", "s");
            (crate::layout::flat_node_path(&id), record)
        })
        .collect();
    files.push(node_file(OTHER, node(OTHER, NOW, "fresh")));
    files.push((
        crate::layout::flat_node_path(OTHER),
        node(OTHER, "2026-01-01T08:00:00Z", "stale"),
    ));
    let mut fx = grid(&files);
    let other = fx.snapshot.nodes.iter().find(|n| n.id == OTHER).unwrap();
    assert!(other.sharded, "the sharded record is the one read");
    assert_eq!(fx.snapshot.nodes.len(), FLOOD + 1);
    let tree = |fx: &testkit::Fixture, commit: Option<gix::ObjectId>| {
        crate::odb::commit_tree(&fx.repo, commit.unwrap()).unwrap()
    };
    let mut sizes = Vec::new();
    for push in 0..3 {
        // Each heartbeat says something new (here: what runs), as a real one does.
        let beat = Case {
            heartbeat: true,
            node_running: vec![format!("task-{push}")],
            ..Case::default()
        };
        let change = beat.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
        let after = fx.after(&change.edits);
        let (old, new) = (tree(&fx, fx.snapshot.tip), tree(&fx, after.tip));
        sizes.push(new_tree_bytes(&fx.repo, old, new));
        assert!(after.shadowed_nodes.is_empty(), "push {push}");
        assert!(after.nodes.iter().all(|n| n.sharded), "push {push}");
        assert_eq!(
            after.nodes.len(),
            FLOOD + 2,
            "push {push}: every node, and me"
        );
        fx.snapshot = after;
    }
    assert_eq!(fx.node_in(&fx.snapshot, OTHER).unwrap()["session"], "fresh");
    // Flat, the folder of 3,000 records is a tree of ~130 KB that every heartbeat rewrites;
    // sharded, a heartbeat rewrites the root, nodes/ (at most 256 entries) and one shard.
    assert!(
        sizes[1] < 32 << 10 && sizes[2] < 32 << 10,
        "bytes of new trees per push: {sizes:?}"
    );
}

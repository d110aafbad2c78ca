//! The replicated transitions through the worker's cycle (`cycle::plan`) over snapshots: a claim
//! writes an entry and no claim, an open slot is claimed by a node without an entry, a result
//! lands as a commitment and awaits, the settling commit updates every voter's reputation, a
//! heartbeat keeps the reputation, a dead node's entry is dropped, a settled vote is recorded.

use super::*;
use crate::grid::replicated::quorum::{assess, claimed_attempt, open_to};
use crate::grid::testkit::{
    self, file, grid, node, node_file, task, task_result, with, FakeReaper, WorkerIntent as Case,
    ME, NOW, REVEAL_KEY,
};
use crate::grid::ClaimRequest as Request;
use crate::layout::State;
use crate::quorum::{self, result_digest, salt, Assessment, Rule};
use crate::task::Attempt;
use serde_json::{json, Value};
use std::time::Duration;

const UNTIL: &str = "2026-01-01T12:05:00Z";

fn request() -> Request {
    Request {
        node_id: ME.into(),
        max: 1,
        ahead: 0,
        lease: Duration::from_secs(600),
        labels: vec![],
        allow_network: false,
        admission: Default::default(),
    }
}

fn replicated(n: u32) -> Value {
    with(task("t"), "replicas", json!(n))
}

fn entry(number: u32, node: &str) -> Value {
    json!({"instance": number, "round": 1, "node_id": node, "claimed_at": "2026-01-01T11:50:00Z",
        "lease_expires_at": UNTIL, "attempt": 1})
}

/// `node`'s entry, sealed and revealed with `digest`.
fn revealed(number: u32, node: &str, digest: &str) -> Value {
    let salt = quorum::sha256_hex(node.as_bytes());
    let mut e = entry(number, node);
    e["commitment"] = json!(quorum::commitment(node, &salt, digest));
    e["sealed"] = json!(true);
    e["digest"] = json!(digest);
    e["salt"] = json!(salt);
    e["exit_code"] = json!(0);
    e["status"] = json!("success");
    e
}

fn in_progress_with(entries: Vec<Value>) -> (String, Value) {
    file(
        State::InProgress,
        "t",
        with(replicated(3), "instances", Value::Array(entries)),
    )
}

fn reputation(valid: u64, invalid: u64, cv: u64) -> Value {
    json!({"valid": valid, "invalid": invalid, "consecutive_valid": cv})
}

fn node_with_reputation(id: &str, rep: Value) -> (String, Value) {
    let session = if id == ME { testkit::SESSION } else { "s" };
    node_file(id, with(node(id, NOW, session), "reputation", rep))
}

#[test]
fn a_queued_replicated_task_is_claimed_as_an_entry_and_its_open_slots_by_other_nodes() {
    let fx = grid(&[file(State::Queue, "t", replicated(3))]);
    let case = Case {
        claim: Some(request()),
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    assert_eq!(state, State::InProgress);
    assert!(content.get("claim").is_none(), "{content}");
    assert_eq!(content["instances"][0]["node_id"], ME);
    assert_eq!(content["instances"][0]["instance"], 1);
    assert_eq!(content["instances"][0]["attempt"], 1);
    assert_eq!(
        claimed_attempt(&change.value.claimed[0], ME),
        Attempt::FIRST
    );

    // Another node's entry leaves two slots: this node may take one; with its own entry, none.
    let open = grid(&[in_progress_with(vec![entry(1, "a")])]);
    let change = case
        .plan(&open, &mut FakeReaper::default())
        .unwrap()
        .unwrap();
    let after = open.after(&change.edits);
    let (_, content) = open.task_in(&after, "t").unwrap();
    let nodes: Vec<&str> = content["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["a", ME]);
    assert_eq!(content["instances"][1]["instance"], 2);
    let again = Case {
        claim: Some(request()),
        held: vec!["t".into()],
        ..Case::default()
    };
    let fx2 = grid(&[in_progress_with(vec![entry(1, "a"), entry(2, ME)])]);
    let change = again.plan(&fx2, &mut FakeReaper::default()).unwrap();
    assert!(change.is_none_or(|c| c.value.claimed.is_empty()));
}

#[test]
fn a_result_lands_as_a_commitment_and_awaits_with_its_lease_renewed() {
    let fx = grid(&[in_progress_with(vec![entry(1, "a"), entry(2, ME)])]);
    let mine = task_result("t", ME, "success", 1);
    let case = Case {
        results: vec![mine.clone()],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(testkit::plain(&change.value.awaiting), [("t".into(), 1)]);
    assert!(change.value.recorded.is_empty());
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    assert_eq!(state, State::InProgress);
    let e = &content["instances"][1];
    let salt = salt(REVEAL_KEY, "t", Attempt::FIRST);
    assert_eq!(
        e["commitment"],
        json!(quorum::commitment(ME, &salt, &result_digest(&mine)))
    );
    assert!(
        e.get("digest").is_none(),
        "nothing is revealed before the seal"
    );
    assert_eq!(e["lease_expires_at"], "2026-01-01T12:15:00Z");
}

#[test]
fn the_settling_commit_updates_every_voters_reputation_and_a_heartbeat_keeps_it() {
    let mine = task_result("t", ME, "success", 1);
    let honest = result_digest(&mine);
    let lie = quorum::digest(Some(0), &quorum::sha256_hex(b"lie"));
    let salt = salt(REVEAL_KEY, "t", Attempt::FIRST);
    let mut my_entry = entry(3, ME);
    my_entry["commitment"] = json!(quorum::commitment(ME, &salt, &honest));
    my_entry["sealed"] = json!(true);
    let fx = grid(&[
        in_progress_with(vec![
            revealed(1, "a", &honest),
            revealed(2, "b", &lie),
            my_entry,
        ]),
        node_with_reputation("a", reputation(3, 0, 3)),
        node_file("b", node("b", NOW, "s")),
        node_with_reputation(ME, reputation(1, 1, 0)),
    ]);
    let case = Case {
        results: vec![mine],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(testkit::plain(&change.value.recorded), [("t".into(), 1)]);
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    assert_eq!(state, State::Completed);
    assert_eq!(content["node_id"], ME);
    assert_eq!(content["quorum"]["agreeing"], json!(["a", ME]));
    assert_eq!(content["quorum"]["dissenting"], json!(["b"]));
    assert_eq!(
        fx.node_in(&after, "a").unwrap()["reputation"],
        reputation(4, 0, 4)
    );
    assert_eq!(
        fx.node_in(&after, "b").unwrap()["reputation"],
        reputation(0, 1, 0)
    );
    assert_eq!(
        fx.node_in(&after, ME).unwrap()["reputation"],
        reputation(2, 1, 1)
    );

    // My next heartbeat keeps the record's reputation (the worker's own copy has none).
    let later = grid(&[
        file(State::Completed, "t", content),
        node_with_reputation(ME, reputation(2, 1, 1)),
    ]);
    let beat = Case {
        heartbeat: true,
        ..Case::default()
    };
    let change = beat
        .plan(&later, &mut FakeReaper::default())
        .unwrap()
        .unwrap();
    let after_beat = later.after(&change.edits);
    assert_eq!(
        later.node_in(&after_beat, ME).unwrap()["reputation"],
        reputation(2, 1, 1)
    );

    // My result sent again (another agreeing node's, racing) finds its vote recorded: nothing
    // written, no second file, no late result.
    let again = Case {
        results: vec![task_result("t", ME, "success", 1)],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = again
        .plan(&later, &mut FakeReaper::default())
        .unwrap()
        .unwrap();
    assert!(change.edits.is_empty());
    assert_eq!(testkit::plain(&change.value.recorded), [("t".into(), 1)]);
}

#[test]
fn a_dead_nodes_entry_is_dropped_and_a_single_task_beside_it_is_reaped_as_before() {
    let fx = grid(&[
        in_progress_with(vec![entry(1, "a"), entry(2, "dead")]),
        file(
            State::InProgress,
            "u",
            testkit::claimed(task("u"), "dead", 1, UNTIL),
        ),
    ]);
    let case = Case::default();
    let change = case
        .plan(&fx, &mut FakeReaper::dead(&["dead"]))
        .unwrap()
        .unwrap();
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    assert_eq!(state, State::InProgress);
    assert_eq!(content["instances"][0].get("dropped"), None);
    assert_eq!(
        content["instances"][1]["dropped"],
        "node dead stopped heartbeating"
    );
    assert_eq!(fx.task_in(&after, "u").unwrap().0, State::Queue);
    let mut reaped = change.value.reaped.clone();
    reaped.sort();
    assert_eq!(
        reaped,
        [("t".into(), "dead".into()), ("u".into(), "dead".into())]
    );
}

#[test]
fn a_running_instance_whose_entry_is_gone_is_a_lost_claim() {
    let mut dropped = entry(2, ME);
    dropped["dropped"] = json!("node me stopped heartbeating");
    let fx = grid(&[in_progress_with(vec![
        entry(1, "a"),
        dropped,
        entry(3, "c"),
    ])]);
    let case = Case {
        running: vec![("t".into(), 1)],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(change.value.lost_claims, ["t"]);
}

fn adaptive_with(entries: Vec<Value>, wanted: Option<u32>) -> Value {
    let mut t = with(task("t"), "replicas", json!("adaptive"));
    t["instances"] = Value::Array(entries);
    if let Some(w) = wanted {
        t["instances_wanted"] = json!(w);
    }
    t
}

/// `n` results settled with `node` agreeing, each with its `quorum` object.
fn settled_by(node: &str, n: u32) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            let id = format!("s{i}");
            let mut r = testkit::result(&id, node, "success", 1);
            r["finished_at"] = json!(format!("2026-01-01T10:{i:02}:00Z"));
            let digest = quorum::digest(Some(0), &quorum::sha256_hex(id.as_bytes()));
            r["quorum"] = json!({"replicas": 2, "digest": digest, "agreeing": [node],
                "dissenting": [],
                "votes": [{"node_id": node, "instance": 1, "attempt": 1, "digest": digest}]});
            file(State::Completed, &id, r)
        })
        .collect()
}

/// Whether node ME, its record saying `record_cv` valid results in a row and `settled` results
/// on main backing it, claims a queued adaptive task alone.
fn claims_alone(record_cv: u64, settled: u32) -> bool {
    let mut files = settled_by(ME, settled);
    files.push(file(
        State::Queue,
        "t",
        with(task("t"), "replicas", json!("adaptive")),
    ));
    files.push(node_with_reputation(
        ME,
        reputation(record_cv + 5, 1, record_cv),
    ));
    let fx = grid(&files);
    let case = Case {
        claim: Some(request()),
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let spec = change
        .value
        .claimed
        .iter()
        .find(|s| s.id.as_str() == "t")
        .unwrap();
    assert_eq!(spec.instances.len(), 1);
    spec.instances_wanted == Some(1)
}

#[test]
fn a_node_with_ten_valid_results_in_a_row_claims_an_adaptive_task_alone() {
    assert!(claims_alone(10, 10));
    assert!(!claims_alone(9, 10), "its own record may lower it");
    assert!(!claims_alone(9, 9));
}

#[test]
fn a_reputation_only_the_node_s_own_record_claims_is_not_trusted() {
    // Written with plain git into its own record: no settled result backs it.
    assert!(!claims_alone(1_000_000, 0));
    assert!(!claims_alone(1_000_000, 9));
}

#[test]
fn a_solo_instance_settles_on_a_draw_from_the_first_commit_another_node_lands_after_its_reveal() {
    let mine = task_result("t", ME, "success", 1);
    let digest = result_digest(&mine);
    let salt = salt(REVEAL_KEY, "t", Attempt::FIRST);
    let mut committed = entry(1, ME);
    committed["commitment"] = json!(quorum::commitment(ME, &salt, &digest));
    committed["sealed"] = json!(true);
    let mut revealed = committed.clone();
    revealed["digest"] = json!(digest);
    revealed["salt"] = json!(salt);
    revealed["exit_code"] = json!(0);
    revealed["status"] = json!("success");
    let path = layout::task_path(State::InProgress, "t");
    // Ten settled results back the record's run: the draw's odds come from them.
    let mut files = settled_by(ME, 10);
    files.push((path.clone(), adaptive_with(vec![committed], Some(1))));
    files.push(node_with_reputation(ME, reputation(12, 0, 10)));
    let mut fx = grid(&files);
    let write = |v: &Value| Edit::Write {
        path: path.clone(),
        content: serde_json::to_vec(v).unwrap(),
    };
    let me = crate::odb::Identity::node(ME);
    let reveal = fx.commit_as(
        fx.snapshot.tip,
        &[write(&adaptive_with(vec![revealed], Some(1)))],
        &me,
    );
    let case = Case {
        results: vec![mine],
        held: vec!["t".into()],
        ..Case::default()
    };
    // Only my own commit since the reveal: no draw yet, nothing settles.
    fx.snapshot = Snapshot::read(&fx.repo, Some(reveal)).unwrap();
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert_eq!(testkit::plain(&change.value.awaiting), [("t".into(), 1)]);
    let mine_again = fx.commit_as(Some(reveal), &[], &me);
    // A made-up author (no node record) pushed next: any pusher can, the solo node too.
    let ghost = fx.commit_as(Some(mine_again), &[], &crate::odb::Identity::node("ghost"));
    let other = fx.commit_as(
        Some(ghost),
        &[node_file("other", node("other", NOW, "s"))]
            .iter()
            .map(|(p, v)| Edit::Write {
                path: p.clone(),
                content: serde_json::to_vec(v).unwrap(),
            })
            .collect::<Vec<_>>(),
        &crate::odb::Identity::node("other"),
    );
    let later = fx.commit_as(Some(other), &[], &crate::odb::Identity::node("third"));
    fx.snapshot = Snapshot::read(&fx.repo, Some(later)).unwrap();
    assert_eq!(
        quorum_adaptive::draw_commit(&fx.repo, &fx.snapshot, &path, ME),
        Some(other),
        "the first commit by another node with a record after the reveal, not a later one"
    );
    let drawn = quorum::adaptive::check_drawn("t", &other.to_string(), 10);
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    if drawn {
        assert_eq!(state, State::InProgress);
        assert_eq!(content["instances_wanted"], 2, "a checking instance");
    } else {
        assert_eq!(state, State::Completed);
        assert_eq!(content["quorum"]["unchecked"], true);
        assert_eq!(content["quorum"]["agreeing"], json!([ME]));
    }
}

#[test]
fn a_drawn_check_opens_a_second_instance_and_a_checker_settles_it() {
    let mine = task_result("t", ME, "success", 1);
    let digest = result_digest(&mine);
    // The solo node "solo" was drawn for a check: its entry is revealed, two are wanted.
    let solo = revealed(1, "solo", &digest);
    let fx = grid(&[(
        layout::task_path(State::InProgress, "t"),
        adaptive_with(vec![solo.clone()], Some(2)),
    )]);
    let case = Case {
        claim: Some(request()),
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let claimed = &change.value.claimed[0];
    assert_eq!(claimed.instances[1].instance, 2);
    assert_eq!(claimed.instances[1].round, 2);
    let mut checker = entry(2, ME);
    checker["round"] = json!(2);
    let fx = grid(&[(
        layout::task_path(State::InProgress, "t"),
        adaptive_with(vec![solo, checker], Some(2)),
    )]);
    let case = Case {
        results: vec![mine],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    let after = fx.after(&change.edits);
    let (state, content) = fx.task_in(&after, "t").unwrap();
    assert_eq!(state, State::Completed);
    assert_eq!(content["quorum"]["agreeing"], json!(["solo", ME]));
    assert!(content["quorum"].get("unchecked").is_none());
}

#[test]
fn a_dissenting_vote_sends_the_nodes_unchecked_solo_results_back_for_a_check() {
    let mine = task_result("t", ME, "success", 1);
    let honest = result_digest(&mine);
    let lie = quorum::digest(Some(0), &quorum::sha256_hex(b"lie"));
    let salt = salt(REVEAL_KEY, "t", Attempt::FIRST);
    let mut my_entry = entry(3, ME);
    my_entry["commitment"] = json!(quorum::commitment(ME, &salt, &honest));
    my_entry["sealed"] = json!(true);
    let solo_digest = quorum::digest(Some(0), &quorum::sha256_hex(b"solo"));
    let mut unchecked = testkit::result("u", "liar", "success", 1);
    unchecked["task"]["replicas"] = json!("adaptive");
    unchecked["quorum"] = json!({"replicas": 2, "digest": solo_digest, "agreeing": ["liar"],
        "dissenting": [], "unchecked": true,
        "votes": [{"node_id": "liar", "instance": 1, "attempt": 1, "digest": solo_digest}]});
    let mut checked = unchecked.clone();
    checked["task_id"] = json!("v");
    checked["task"]["id"] = json!("v");
    checked["quorum"]["unchecked"] = json!(false);
    let fx = grid(&[
        in_progress_with(vec![
            revealed(1, "a", &honest),
            revealed(2, "liar", &lie),
            my_entry,
        ]),
        file(State::Completed, "u", unchecked),
        file(State::Completed, "v", checked),
    ]);
    let case = Case {
        results: vec![mine],
        held: vec!["t".into()],
        ..Case::default()
    };
    let change = case.plan(&fx, &mut FakeReaper::default()).unwrap().unwrap();
    assert!(
        change.summary.contains("recheck liar"),
        "{}",
        change.summary
    );
    let after = fx.after(&change.edits);
    assert_eq!(fx.task_in(&after, "t").unwrap().0, State::Completed);
    assert_eq!(
        fx.task_in(&after, "v").unwrap().0,
        State::Completed,
        "checked: stays"
    );
    let (state, content) = fx.task_in(&after, "u").unwrap();
    assert_eq!(state, State::InProgress);
    assert_eq!(content["instances_wanted"], 2);
    assert_eq!(content["instances"][0]["node_id"], "liar");
    assert_eq!(content["instances"][0]["digest"], json!(solo_digest));
    let spec = crate::grid::testkit::task_spec(&content);
    let rule = Rule::of(&spec).unwrap();
    assert_eq!(assess(&spec, &rule), Assessment::Collecting { open: 1 });
    assert!(open_to(&spec, ME) && !open_to(&spec, "liar"));
}

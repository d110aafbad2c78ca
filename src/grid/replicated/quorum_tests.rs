//! The replicated transitions over task files in memory: nodes claim entries, land commitments,
//! seal, reveal and settle, with liars, colluders, dead nodes and a late copier.

use super::*;
use crate::grid::replicated::quorum_upkeep::{among_votes, take_back_spec, updated, EntryEnding};
use crate::grid::testkit::{now, task, task_result, task_spec, with};
use crate::node::Reputation;
use crate::quorum::{result_digest, salt};
use crate::task::Replicas;
use serde_json::json;

const AT: &str = "2026-01-01T11:50:00Z";
const UNTIL: &str = "2026-01-01T12:05:00Z";
const HONEST: &str = "42\n";
const LIE: &str = "41\n";

/// Task `t` with `replicas`, `quorum` and `max_instances` as given (the parser's part is q1's:
/// the fields are set on the spec directly).
fn replicated(replicas: u32, quorum: Option<u32>, max: Option<u32>) -> (TaskSpec, Rule) {
    let mut spec = task_spec(&with(task("t"), "max_attempts", json!(2)));
    spec.replicas = Some(Replicas::Fixed(replicas));
    spec.quorum = quorum;
    spec.max_instances = max;
    let rule = Rule::of(&spec).expect("a replicated task");
    (spec, rule)
}

fn claim(spec: &mut TaskSpec, rule: &Rule, node: &str) {
    assert!(open_to(spec, node), "{node} may claim an instance");
    add_entry(spec, rule, node, AT, UNTIL);
}

fn key(node: &str) -> Vec<u8> {
    format!("reveal key of {node}").into_bytes()
}

/// `node`'s result for `attempt` with `stdout`, as its worker holds it.
fn result(node: &str, attempt: u32, stdout: &str) -> TaskResult {
    let mut r = task_result("t", node, "success", attempt);
    r.stdout = stdout.to_string();
    r.stdout_info = None;
    r
}

/// `node`'s transition with its result: the task's next state and what it settled.
fn send(spec: TaskSpec, rule: &Rule, node: &str, attempt: u32, stdout: &str) -> (Next, Effects) {
    let key = key(node);
    let ctx = Ctx {
        me: node,
        reveal_key: &key,
        now: now(),
        expires: UNTIL.into(),
        draw: None,
        consecutive_valid: 0,
    };
    let mut fx = Effects::default();
    let next = step(spec, rule, &result(node, attempt, stdout), &ctx, &mut fx)
        .expect("the node's entry is live");
    (next, fx)
}

fn in_progress(next: Next) -> TaskSpec {
    match next {
        Next::InProgress { spec, .. } => *spec,
        Next::Finished(state, r) => panic!("finished early: {state} {r:?}"),
    }
}

fn finished(next: Next) -> (State, TaskResult) {
    match next {
        Next::Finished(state, r) => (state, *r),
        Next::InProgress { spec, .. } => panic!("still in progress: {:?}", spec.instances),
    }
}

fn nodes(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

#[test]
fn three_instances_with_a_liar_settle_on_the_honest_majority_with_the_liar_dissenting() {
    let (mut spec, rule) = replicated(3, None, None);
    for node in ["a", "b", "c"] {
        claim(&mut spec, &rule, node);
    }
    assert!(!open_to(&spec, "d"), "three entries fill a task of three");
    assert_eq!(
        spec.instances
            .iter()
            .map(|e| e.instance)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    assert!(spec.instances[0].commitment.is_some() && spec.instances[0].digest.is_none());
    let spec = in_progress(send(spec, &rule, "b", 1, HONEST).0);
    assert!(
        spec.instances.iter().all(|e| !e.sealed),
        "c has not committed"
    );
    // The last commitment seals the round, and its node reveals in the same commit.
    let (next, fx) = send(spec, &rule, "c", 1, LIE);
    let spec = in_progress(next);
    assert!(spec.instances.iter().all(|e| e.sealed));
    assert!(spec.instances[2].digest.is_some() && spec.instances[0].digest.is_none());
    assert_eq!(fx.summary, ["commit t", "seal t", "reveal t"]);
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    assert_eq!(assess(&spec, &rule), Assessment::Revealing);
    // b's reveal decides it; b agrees, so b settles with its own result.
    let (next, fx) = send(spec, &rule, "b", 1, HONEST);
    let (state, settled) = finished(next);
    assert_eq!(state, State::Completed);
    assert_eq!(settled.node_id, "b");
    assert_eq!(settled.stdout, HONEST);
    let q = settled.quorum.as_ref().expect("a quorum object");
    assert_eq!(q.replicas, 3);
    assert_eq!(nodes(&q.agreeing), ["a", "b"]);
    assert_eq!(nodes(&q.dissenting), ["c"]);
    assert_eq!(q.votes.len(), 3);
    assert_eq!(
        q.digest.as_deref(),
        Some(quorum::digest(Some(0), &quorum::sha256_hex(HONEST.as_bytes())).as_str())
    );
    let task = settled.task.as_ref().expect("the task as run");
    assert!(task.instances.is_empty() && task.claim.is_none());
    let mut votes = fx.votes.clone();
    votes.sort();
    assert_eq!(
        votes,
        [("a".into(), true), ("b".into(), true), ("c".into(), false)]
    );
    assert_eq!(
        updated(None, "c", &fx.votes),
        Some(Reputation {
            valid: 0,
            invalid: 1,
            consecutive_valid: 0
        })
    );
    let before = Reputation {
        valid: 4,
        invalid: 0,
        consecutive_valid: 4,
    };
    assert_eq!(
        updated(Some(before), "a", &fx.votes),
        Some(Reputation {
            valid: 5,
            invalid: 0,
            consecutive_valid: 5
        })
    );
    assert_eq!(updated(Some(before), "z", &fx.votes), Some(before));
}

#[test]
fn a_dissenting_node_never_settles_and_writes_only_its_lease() {
    let (mut spec, rule) = replicated(3, None, None);
    for node in ["a", "b", "c"] {
        claim(&mut spec, &rule, node);
    }
    let spec = in_progress(send(spec, &rule, "c", 1, LIE).0);
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    let spec = in_progress(send(spec, &rule, "b", 1, HONEST).0); // seals, reveals b
    let spec = in_progress(send(spec, &rule, "c", 1, LIE).0); // reveals c
    let decided = send(spec.clone(), &rule, "a", 1, HONEST); // a would settle: it agrees
    assert!(matches!(decided.0, Next::Finished(State::Completed, _)));
    // Revealed in full, but say a never came back: c, dissenting, cannot settle.
    let mut revealed = spec;
    revealed.instances[0].sealed = true;
    let a_key = key("a");
    let salt_a = salt(&a_key, "t", Attempt::FIRST);
    let d = result_digest(&result("a", 1, HONEST));
    revealed.instances[0].digest = Some(d);
    revealed.instances[0].salt = Some(salt_a);
    assert!(matches!(
        assess(&revealed, &rule),
        Assessment::Decided { .. }
    ));
    let (next, fx) = send(revealed.clone(), &rule, "c", 1, LIE);
    let after = in_progress(next);
    assert_eq!(after.instances, revealed.instances);
    assert!(fx.votes.is_empty() && fx.summary.is_empty());
}

/// Runs one round: each (node, stdout) claims, then all send until nothing changes.
fn round(mut spec: TaskSpec, rule: &Rule, runs: &[(&str, &str)]) -> Next {
    for (node, _) in runs {
        claim(&mut spec, rule, node);
    }
    let mut next = Next::InProgress {
        spec: Box::new(spec),
        changed: true,
    };
    for _ in 0..2 {
        for (node, stdout) in runs {
            let spec = match next {
                Next::InProgress { spec, .. } => *spec,
                done => return done,
            };
            next = send(spec, rule, node, 1, stdout).0;
        }
    }
    next
}

#[test]
fn two_colluders_of_three_with_quorum_three_recruit_then_fail_as_no_quorum() {
    let (spec, rule) = replicated(3, Some(3), Some(4));
    let spec = in_progress(round(spec, &rule, &[("a", HONEST), ("b", LIE), ("c", LIE)]));
    assert_eq!(
        spec.instances_wanted,
        Some(4),
        "one more instance may still make a quorum"
    );
    assert!(open_to(&spec, "d") && !open_to(&spec, "b"));
    // The recruit agrees with the honest node: two against two, and no instance left.
    let next = round(spec, &rule, &[("d", HONEST)]);
    let (state, failed) = finished(next);
    assert_eq!(state, State::Failed);
    assert_eq!(failed.status, Status::NoQuorum);
    assert_eq!(failed.exit_code, None);
    assert!(
        failed.stdout.is_empty() && failed.stderr.contains("no quorum"),
        "{}",
        failed.stderr
    );
    let q = failed.quorum.expect("a quorum object");
    assert_eq!(q.digest, None);
    assert!(q.agreeing.is_empty() && q.dissenting.is_empty());
    assert_eq!(q.votes.len(), 4, "every instance's digest is recorded");
    let recruit = q.votes.iter().find(|v| v.node_id == "d").unwrap();
    assert_eq!(recruit.instance, 4);
}

#[test]
fn colluders_lose_to_recruits_that_agree_with_the_honest_node() {
    let (spec, rule) = replicated(3, Some(3), Some(5));
    let spec = in_progress(round(spec, &rule, &[("a", HONEST), ("b", LIE), ("c", LIE)]));
    let spec = in_progress(round(spec, &rule, &[("d", HONEST)]));
    assert_eq!(spec.instances_wanted, Some(5));
    let (state, settled) = finished(round(spec, &rule, &[("e", HONEST)]));
    assert_eq!(state, State::Completed);
    let q = settled.quorum.unwrap();
    assert_eq!(nodes(&q.agreeing), ["a", "d", "e"]);
    assert_eq!(nodes(&q.dissenting), ["b", "c"]);
    assert_eq!(
        spec_rounds(&q.votes),
        [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]
    );
}

fn spec_rounds(votes: &[Vote]) -> Vec<(&str, u32)> {
    votes
        .iter()
        .map(|v| (v.node_id.as_str(), v.instance))
        .collect()
}

#[test]
fn a_dead_nodes_entry_is_dropped_and_its_instance_reissued_with_attempt_two() {
    let (mut spec, rule) = replicated(3, None, None);
    for node in ["a", "b", "c"] {
        claim(&mut spec, &rule, node);
    }
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    let spec = in_progress(take_back_spec(spec, &[(1, EntryEnding::Dropped)], now()));
    assert_eq!(
        spec.instances[1].dropped.as_deref(),
        Some("node b stopped heartbeating")
    );
    assert_eq!(assess(&spec, &rule), Assessment::Collecting { open: 1 });
    assert!(
        !open_to(&spec, "b"),
        "a node never holds two entries of a task"
    );
    let mut spec = spec;
    claim(&mut spec, &rule, "d");
    let reissued = spec.instances.last().unwrap();
    assert_eq!(
        (reissued.instance, reissued.attempt.number(), reissued.round),
        (2, 2, 1)
    );
    assert!(
        spec.instances[0].commitment.is_some(),
        "a's commitment stays"
    );
    // max_attempts 2: the re-issue dying too fails the task as lost.
    let last = spec.instances.len() - 1;
    let (state, lost) = finished(take_back_spec(spec, &[(last, EntryEnding::Dropped)], now()));
    assert_eq!((state, lost.status), (State::Failed, Status::Lost));
    assert_eq!(lost.node_id, "d");
}

#[test]
fn a_released_entry_is_removed_without_using_its_attempt() {
    let (mut spec, rule) = replicated(2, None, None);
    claim(&mut spec, &rule, "a");
    let spec = in_progress(take_back_spec(spec, &[(0, EntryEnding::Removed)], now()));
    assert!(spec.instances.is_empty());
    let mut spec = spec;
    claim(&mut spec, &rule, "a");
    assert_eq!(spec.instances[0].attempt, Attempt::FIRST);
}

#[test]
fn a_commitment_that_lands_after_the_seal_is_not_counted() {
    let (mut spec, rule) = replicated(3, None, None);
    for node in ["a", "b", "c"] {
        claim(&mut spec, &rule, node);
    }
    let spec = in_progress(send(spec, &rule, "a", 1, LIE).0);
    let spec = in_progress(send(spec, &rule, "b", 1, HONEST).0);
    let spec = in_progress(send(spec, &rule, "c", 1, LIE).0); // seals, reveals c
    let mut spec = in_progress(send(spec, &rule, "b", 1, HONEST).0); // reveals b
                                                                     // A copier pushes an entry of its own with b's revealed digest, committed after the seal
                                                                     // (a fourth number, and a second entry numbered 2): neither is sealed nor counted.
    let copied = spec.instances[1].digest.clone().unwrap();
    for number in [4, 2] {
        let salt = "copied".to_string();
        spec.instances.push(Instance {
            instance: number,
            node_id: format!("x{number}"),
            commitment: Some(quorum::commitment(&format!("x{number}"), &salt, &copied)),
            digest: Some(copied.clone()),
            salt: Some(salt),
            ..spec.instances[1].clone()
        });
    }
    spec.instances[4].sealed = false;
    spec.instances[3].sealed = false;
    let (next, _) = send(spec, &rule, "a", 1, LIE);
    let (_, settled) = finished(next);
    let q = settled.quorum.unwrap();
    assert_eq!(nodes(&q.agreeing), ["a", "c"]);
    assert_eq!(nodes(&q.dissenting), ["b"]);
    assert_eq!(q.votes.len(), 3, "{:?}", q.votes);
}

#[test]
fn a_digest_copied_after_the_reveals_does_not_match_its_commitment_and_is_not_counted() {
    let (mut spec, rule) = replicated(3, None, None);
    for node in ["a", "b", "c"] {
        claim(&mut spec, &rule, node);
    }
    // The lazy node c commits to garbage at once, then reveals the digest the others revealed.
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    let spec = in_progress(send(spec, &rule, "b", 1, HONEST).0);
    let mut spec = in_progress(send(spec, &rule, "c", 1, "garbage").0);
    spec.instances[2].digest = None; // undo c's honest-to-its-commitment reveal
    spec.instances[2].salt = None;
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    let mut spec = spec;
    let copied = spec.instances[0].digest.clone().unwrap();
    spec.instances[2].digest = Some(copied);
    spec.instances[2].salt = Some(salt(&key("c"), "t", Attempt::FIRST));
    let (next, _) = send(spec, &rule, "b", 1, HONEST);
    let (_, settled) = finished(next);
    let q = settled.quorum.unwrap();
    assert_eq!(nodes(&q.agreeing), ["a", "b"]);
    assert_eq!(
        nodes(&q.dissenting),
        ["c"],
        "an invalid reveal counts against c"
    );
    assert_eq!(q.votes.len(), 2);
}

#[test]
fn a_task_settles_once_a_second_agreeing_node_finds_its_vote_recorded() {
    let (spec, rule) = replicated(3, None, None);
    let (_, settled) = finished(round(
        spec,
        &rule,
        &[("a", HONEST), ("b", HONEST), ("c", HONEST)],
    ));
    assert!(among_votes(&settled, "a", Attempt::FIRST));
    assert!(among_votes(&settled, "c", Attempt::FIRST));
    assert!(!among_votes(&settled, "c", Attempt::new(2).unwrap()));
    assert!(!among_votes(&settled, "x", Attempt::FIRST));
}

#[test]
fn a_reveal_that_does_not_match_its_commitment_is_dropped_and_counts_against_its_node() {
    let (mut spec, rule) = replicated(2, Some(2), Some(2));
    claim(&mut spec, &rule, "a");
    claim(&mut spec, &rule, "b");
    let spec = in_progress(send(spec, &rule, "a", 1, HONEST).0);
    // b committed with another key than the one it reveals with (a key lost and remade).
    let mut spec = in_progress(send(spec, &rule, "b", 1, HONEST).0);
    spec.instances[1].digest = None;
    spec.instances[1].salt = None;
    spec.instances[1].commitment = Some("0".repeat(64));
    spec.instances[1].exit_code = None;
    spec.instances[1].status = None;
    let (next, _) = send(spec, &rule, "b", 1, HONEST);
    let spec = in_progress(next);
    assert_eq!(spec.instances[1].dropped.as_deref(), Some(REVEAL_MISMATCH));
    assert_eq!(assess(&spec, &rule), Assessment::Collecting { open: 1 });
}

//! The claim transition over hand-made queues: order, labels, network, max, dependencies.
//! The pick among equals is random (fastrand's thread-local RNG): tests seed it, or check what holds
//! for every pick.

use super::*;
use crate::grid::testkit::{file, grid, now, result, task, with, Fixture, NOW};
use serde_json::{json, Value};

fn request(max: usize) -> Request {
    Request {
        node_id: "me".into(),
        max,
        ahead: 0,
        lease: Duration::from_secs(600),
        labels: vec![],
        allow_network: false,
        admission: Default::default(),
    }
}

fn picked(fx: &Fixture, request: &Request) -> Vec<String> {
    select(
        &fx.repo,
        &fx.snapshot,
        request,
        &Limits::default(),
        now(),
        &HashSet::new(),
    )
    .into_iter()
    .map(|(spec, _)| spec.id.to_string())
    .collect()
}

fn queued(id: &str, fields: &[(&str, Value)]) -> (String, Value) {
    let spec = fields
        .iter()
        .fold(task(id), |t, (k, v)| with(t, k, v.clone()));
    file(State::Queue, id, spec)
}

#[test]
fn higher_priority_goes_first_whatever_the_pick() {
    let fx = grid(&[
        queued("low-old", &[("created_at", json!("2026-01-01T01:00:00Z"))]),
        queued("high", &[("priority", json!(5))]),
        queued("low", &[]),
        queued("highest", &[("priority", json!(9))]),
        queued("negative", &[("priority", json!(-1))]),
    ]);
    for seed in 0..20 {
        fastrand::seed(seed);
        let order = picked(&fx, &request(5));
        assert_eq!(&order[..2], ["highest", "high"], "seed {seed}");
        let mut middle = order[2..4].to_vec();
        middle.sort();
        assert_eq!(middle, ["low", "low-old"], "seed {seed}");
        assert_eq!(order[4], "negative", "seed {seed}");
    }
}

#[test]
fn claims_ahead_are_of_the_highest_priority_only() {
    let fx = grid(&[
        queued("high-1", &[("priority", json!(5))]),
        queued("high-2", &[("priority", json!(5))]),
        queued("low-1", &[]),
        queued("low-2", &[]),
    ]);
    let ahead = |max, ahead| {
        let mut r = request(max);
        r.ahead = ahead;
        let mut ids = picked(&fx, &r);
        ids.sort();
        ids
    };
    assert_eq!(ahead(0, 4), ["high-1", "high-2"], "no hoarding of low ones");
    assert_eq!(ahead(1, 4), ["high-1", "high-2"]);
    let three = ahead(3, 4);
    assert_eq!(
        (three.len(), &three[..2]),
        (3, &["high-1".to_string(), "high-2".to_string()][..]),
        "free slots take what there is, as before; nothing low ahead: {three:?}"
    );
    assert_eq!(ahead(0, 1).len(), 1);
    let flat = grid(&[queued("a", &[]), queued("b", &[]), queued("c", &[])]);
    let mut r = request(1);
    r.ahead = 5;
    assert_eq!(picked(&flat, &r).len(), 3, "equals: all of them");
    assert_eq!(
        count_claimable_except(
            &flat.repo,
            &flat.snapshot,
            &r,
            &Limits::default(),
            &HashSet::new()
        ),
        3
    );
}

#[test]
fn among_equals_the_pick_is_from_the_oldest_and_a_seed_replays_it() {
    // 40 equal tasks, created a minute apart: the window is the oldest 32.
    let files: Vec<(String, Value)> = (0..40)
        .map(|i| {
            queued(
                &format!("t{i:02}"),
                &[("created_at", json!(format!("2026-01-01T10:{i:02}:00Z")))],
            )
        })
        .collect();
    let fx = grid(&files);
    let mut seen = HashSet::new();
    for seed in 0..50 {
        fastrand::seed(seed);
        let first = picked(&fx, &request(1));
        fastrand::seed(seed);
        assert_eq!(picked(&fx, &request(1)), first, "seed {seed} replays");
        let n: usize = first[0][1..].parse().unwrap();
        assert!(n < 32, "seed {seed} picked {first:?}, past the window");
        seen.insert(n);
    }
    assert!(
        seen.len() > 5,
        "racing claimers spread over the front: {seen:?}"
    );
}

#[test]
fn a_claim_names_the_node_the_times_and_the_next_attempt() {
    let fx = grid(&[queued("retried", &[("attempts", json!(2))])]);
    let change = plan(
        &fx.repo,
        &fx.snapshot,
        &request(1),
        &Limits::default(),
        now(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(change.summary, "claim retried by me");
    let spec = &change.value[0];
    assert_eq!(spec.attempts, None, "the count moves into the claim");
    let claim = spec.claim.as_ref().unwrap();
    assert_eq!(claim.node_id, "me");
    assert_eq!(claim.claimed_at, NOW);
    assert_eq!(claim.lease_expires_at, "2026-01-01T12:10:00Z");
    assert_eq!(claim.attempt.number(), 3);
    let paths: Vec<String> = change
        .edits
        .iter()
        .map(|e| match e {
            Edit::Write { path, .. } => format!("+{path}"),
            Edit::Remove { path } => format!("-{path}"),
        })
        .collect();
    assert_eq!(
        paths,
        [
            format!("-{}", layout::task_path(State::Queue, "retried")),
            format!("+{}", layout::task_path(State::InProgress, "retried")),
            // A node with no record gets one with its claim.
            format!("+{}", layout::node_path("me")),
        ]
    );
}

#[test]
fn labels_network_and_dependencies_decide_what_is_eligible() {
    struct Row {
        name: &'static str,
        fields: Vec<(&'static str, Value)>,
        /// Other files on the grid.
        others: Vec<(String, Value)>,
        labels: Vec<&'static str>,
        allow_network: bool,
        claimable: bool,
    }
    let dep_in = |state: State| {
        if state.holds_results() {
            file(state, "dep", result("dep", "n", "success", 1))
        } else {
            // Not claimable itself, so that only the dependent task is in question.
            file(
                state,
                "dep",
                with(task("dep"), "labels", json!(["elsewhere"])),
            )
        }
    };
    let rows = [
        Row {
            name: "plain",
            fields: vec![],
            others: vec![],
            labels: vec![],
            allow_network: false,
            claimable: true,
        },
        Row {
            name: "a label the node lacks",
            fields: vec![("labels", json!(["gpu"]))],
            others: vec![],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "all its labels among the node's",
            fields: vec![("labels", json!(["gpu", "big"]))],
            others: vec![],
            labels: vec!["big", "gpu", "ssd"],
            allow_network: false,
            claimable: true,
        },
        Row {
            name: "one of two labels",
            fields: vec![("labels", json!(["gpu", "big"]))],
            others: vec![],
            labels: vec!["gpu"],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "network bridge, not allowed",
            fields: vec![("network", json!("bridge"))],
            others: vec![],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "network bridge, allowed",
            fields: vec![("network", json!("bridge"))],
            others: vec![],
            labels: vec![],
            allow_network: true,
            claimable: true,
        },
        Row {
            name: "network none",
            fields: vec![("network", json!("none"))],
            others: vec![],
            labels: vec![],
            allow_network: false,
            claimable: true,
        },
        Row {
            name: "depends on a completed task",
            fields: vec![("depends_on", json!(["dep"]))],
            others: vec![dep_in(State::Completed)],
            labels: vec![],
            allow_network: false,
            claimable: true,
        },
        Row {
            name: "depends on a queued task",
            fields: vec![("depends_on", json!(["dep"]))],
            others: vec![dep_in(State::Queue)],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "depends on a running task",
            fields: vec![("depends_on", json!(["dep"]))],
            others: vec![file(
                State::InProgress,
                "dep",
                crate::grid::testkit::claimed(task("dep"), "n", 1, NOW),
            )],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "depends on a failed task",
            fields: vec![("depends_on", json!(["dep"]))],
            others: vec![dep_in(State::Failed)],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
        Row {
            name: "depends on a task that is not there",
            fields: vec![("depends_on", json!(["dep"]))],
            others: vec![],
            labels: vec![],
            allow_network: false,
            claimable: false,
        },
    ];
    for row in rows {
        let mut files = row.others.clone();
        files.push(queued("t", &row.fields));
        let fx = grid(&files);
        let mut request = request(5);
        request.labels = row.labels.iter().map(|l| l.to_string()).collect();
        request.allow_network = row.allow_network;
        let expected: Vec<String> = if row.claimable {
            vec!["t".into()]
        } else {
            vec![]
        };
        assert_eq!(picked(&fx, &request), expected, "{}", row.name);
        assert_eq!(
            any_claimable(&fx.repo, &fx.snapshot, &request, &Limits::default()),
            row.claimable,
            "{}: any_claimable agrees",
            row.name
        );
    }
}

#[test]
fn at_most_max_tasks_and_nothing_when_nothing_is_claimable() {
    let files: Vec<(String, Value)> = (0..5).map(|i| queued(&format!("t{i}"), &[])).collect();
    let fx = grid(&files);
    for max in [0, 1, 2, 5, 9] {
        assert_eq!(picked(&fx, &request(max)).len(), max.min(5), "max {max}");
    }
    let exclude: HashSet<String> = ["t0", "t1", "t2", "t3"].map(String::from).into();
    let rest = select(
        &fx.repo,
        &fx.snapshot,
        &request(5),
        &Limits::default(),
        now(),
        &exclude,
    );
    assert_eq!(
        rest.len(),
        1,
        "excluded tasks (touched in this cycle) are not claimed"
    );
    assert_eq!(rest[0].0.id, "t4");

    let none = |fx: &Fixture| {
        plan(
            &fx.repo,
            &fx.snapshot,
            &request(3),
            &Limits::default(),
            now(),
        )
    };
    assert!(none(&grid(&[])).unwrap().is_none(), "empty grid");
    let only_gpu = grid(&[queued("gpu", &[("labels", json!(["gpu"]))])]);
    assert!(
        none(&only_gpu).unwrap().is_none(),
        "nothing this node may run"
    );
}

#[test]
fn invalid_or_misnamed_queue_files_are_never_claimed() {
    let fx = grid(&[
        queued("bad", &[("timeout", json!("soon"))]),
        // A file whose id is not its name.
        (
            layout::task_path(State::Queue, "misnamed"),
            task("other-id"),
        ),
        queued("good", &[]),
    ]);
    assert_eq!(picked(&fx, &request(5)), ["good"]);
}

#[test]
fn a_task_whose_attempts_are_used_up_or_past_the_maximum_is_not_claimed() {
    let fx = grid(&[
        queued("past-max", &[("attempts", json!(1000))]),
        queued("used-up", &[("attempts", json!(3))]),
        queued(
            "used-up-of-5",
            &[("attempts", json!(5)), ("max_attempts", json!(5))],
        ),
        queued("last-try", &[("attempts", json!(2))]),
        queued(
            "last-of-5",
            &[("attempts", json!(4)), ("max_attempts", json!(5))],
        ),
    ]);
    let picked = select(
        &fx.repo,
        &fx.snapshot,
        &request(5),
        &Limits::default(),
        now(),
        &HashSet::new(),
    );
    let mut attempts: Vec<(String, u32)> = picked
        .iter()
        .map(|(spec, _)| {
            (
                spec.id.to_string(),
                spec.claim.as_ref().unwrap().attempt.number(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        [("last-of-5".to_string(), 5), ("last-try".to_string(), 3)]
    );
    // Read back, a claim names an attempt the reader takes; past the maximum, the reader says why.
    for (spec, _) in &picked {
        let bytes = spec.to_json();
        crate::task::parse_task(
            "t.json",
            &bytes,
            &Limits::default(),
            crate::task::Origin::Required,
        )
        .expect("reads back");
    }
    let problems = snapshot::load_spec(
        &fx.repo,
        fx.snapshot.get("past-max").unwrap(),
        &Limits::default(),
    )
    .map(|_| ())
    .expect_err("attempts past the maximum are refused")
    .to_string();
    assert!(
        problems.contains("\"attempts\"") && problems.contains("past-max.json"),
        "{problems}"
    );
}

#[test]
fn a_claimed_file_near_the_size_limit_reads_back() {
    // 20,000 argv items and an env value padding the file, as pretty-printed on the grid, to just
    // under the limit: the claim adds its object, and the rewritten file must still be readable.
    let argv: Vec<String> = vec!["a".to_string(); 20_000];
    let big = |pad: usize| {
        let t = with(task("big"), "command", json!(argv));
        with(t, "env", json!({ "PAD": "x".repeat(pad) }))
    };
    let pretty_len = |v: &Value| serde_json::to_vec_pretty(v).unwrap().len() + 1;
    let pad = MAX_FILE_BYTES as usize - 60 - pretty_len(&big(0));
    assert!(pretty_len(&big(pad)) as u64 <= MAX_FILE_BYTES);
    let fx = grid(&[file(State::Queue, "big", big(pad))]);
    let picked = select(
        &fx.repo,
        &fx.snapshot,
        &request(1),
        &Limits::default(),
        now(),
        &HashSet::new(),
    );
    assert_eq!(picked.len(), 1, "the task is claimed");
    let [_, Edit::Write { content, .. }] = claim_edits(&picked[0].0, &picked[0].1) else {
        panic!("a claim moves the file");
    };
    crate::task::parse_task(
        "big.json",
        &content,
        &Limits::default(),
        crate::task::Origin::Required,
    )
    .expect("the claimed file reads back");
    let result = crate::grid::testkit::task_result("big", "me", "success", 1);
    assert!(result.to_json().len() < 4096, "results are compact too");
}

#[test]
fn a_claim_by_a_node_with_no_record_lands_with_one() {
    // Else every worker would take the claim back at once (`reap::may_take_back`).
    let fx = grid(&[queued("t", &[])]);
    let change = plan(
        &fx.repo,
        &fx.snapshot,
        &request(1),
        &Limits::default(),
        now(),
    )
    .unwrap()
    .expect("t is claimed");
    let after = fx.after(&change.edits);
    let node = after.nodes.iter().find(|n| n.id == "me").expect("a record");
    let record = snapshot::load_node(&fx.repo, node).expect("the record reads");
    assert_eq!(record.running, ["t"]);
    assert_eq!(record.lease, Some(600));
    // With a record there, the claim leaves it alone.
    let again = grid(&[
        queued("u", &[]),
        crate::grid::testkit::node_file("me", crate::grid::testkit::node("me", NOW, "s")),
    ]);
    let change = plan(
        &again.repo,
        &again.snapshot,
        &request(1),
        &Limits::default(),
        now(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(change.edits.len(), 2, "the move only");
}

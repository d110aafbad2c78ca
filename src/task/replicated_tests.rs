//! The fields of replicated tasks, through the whole-file parsers: `replicas`,
//! `quorum`, `max_instances`, the `instances` entries and `instances_wanted`, a result's `quorum`
//! object and `no_quorum`, the warning for an unpinned image, what the signature covers.

use crate::problem::Problem;
use crate::task::{
    parse_result, parse_task, Limits, Origin, Replicas, Status, TaskResult, TaskSpec,
};

fn problems(result: Result<TaskSpec, Vec<Problem>>) -> Vec<String> {
    result
        .expect_err("the file is refused")
        .iter()
        .map(|p| p.to_string())
        .collect()
}

const BASE: &str = r#""id":"r","image":"alpine:3","command":"x","timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"a""#;
const HEX_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HEX_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn task_with(extra: &str) -> Result<TaskSpec, Vec<Problem>> {
    let file = format!("{{{BASE}{extra}}}");
    parse_task(
        "t.json",
        file.as_bytes(),
        &Limits::default(),
        Origin::Required,
    )
}

/// The problems of a file that must be refused, each expected one found by its text.
fn refused_with(extra: &str, expected: &[&str]) {
    let found = problems(task_with(extra));
    for want in expected {
        assert!(
            found.iter().any(|p| p.contains(want)),
            "{extra}: expected {want:?} in {found:?}"
        );
    }
}

fn entry(instance: u32, node: &str, more: &str) -> String {
    format!(
        r#"{{"instance":{instance},"round":1,"node_id":"{node}","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:05:00Z","attempt":1{more}}}"#
    )
}

#[test]
fn replicas_is_one_to_nine_or_adaptive() {
    let spec = task_with(r#","replicas":3"#).unwrap();
    assert_eq!(spec.replicas, Some(Replicas::Fixed(3)));
    assert_eq!((spec.quorum, spec.max_instances), (None, None));
    let spec = task_with(r#","replicas":"adaptive""#).unwrap();
    assert_eq!(spec.replicas, Some(Replicas::Adaptive));
    assert_eq!(task_with("").unwrap().replicas, None);
    assert_eq!(
        task_with(r#","replicas":1"#).unwrap().replicas,
        Some(Replicas::Fixed(1))
    );
    // A wrong `replicas` is one problem, not one more for each field bounded by it.
    let found = problems(task_with(
        r#","replicas":"many","quorum":5,"max_instances":2"#,
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    for bad in [
        "0",
        "10",
        "-1",
        "2.5",
        "\"three\"",
        "\"Adaptive\"",
        "null",
        "[3]",
    ] {
        refused_with(
            &format!(r#","replicas":{bad}"#),
            &["\"replicas\": expected an integer from 1 to 9 or \"adaptive\""],
        );
    }
}

#[test]
fn quorum_is_at_most_replicas_and_refused_for_adaptive() {
    let spec = task_with(r#","replicas":5,"quorum":4"#).unwrap();
    assert_eq!(spec.quorum, Some(4));
    task_with(r#","replicas":5,"quorum":1"#).unwrap();
    task_with(r#","replicas":5,"quorum":5"#).unwrap();
    refused_with(
        r#","replicas":3,"quorum":4"#,
        &["\"quorum\": expected an integer from 1 to 3, got 4"],
    );
    refused_with(r#","replicas":3,"quorum":0"#, &["\"quorum\": expected"]);
    // Without replicas the task runs once: a quorum above 1 cannot be met.
    refused_with(
        r#","quorum":2"#,
        &["\"quorum\": expected an integer from 1 to 1"],
    );
    refused_with(
        r#","replicas":"adaptive","quorum":1"#,
        &["\"quorum\": is chosen per run for \"replicas\": \"adaptive\""],
    );
}

#[test]
fn max_instances_is_from_replicas_to_twenty() {
    let spec = task_with(r#","replicas":3,"max_instances":3"#).unwrap();
    assert_eq!(spec.max_instances, Some(3));
    task_with(r#","replicas":3,"max_instances":20"#).unwrap();
    refused_with(
        r#","replicas":3,"max_instances":2"#,
        &["\"max_instances\": expected an integer from 3 to 20, got 2"],
    );
    refused_with(
        r#","replicas":9,"max_instances":21"#,
        &["\"max_instances\": expected an integer from 9 to 20"],
    );
    refused_with(
        r#","replicas":"adaptive","max_instances":1"#,
        &["\"max_instances\": expected an integer from 2 to 20"],
    );
}

#[test]
fn instance_entries_round_trip_through_the_file() {
    let sealed = format!(r#","commitment":"{HEX_A}","sealed":true"#);
    let revealed = format!(
        r#","commitment":"{HEX_A}","sealed":true,"digest":"{HEX_B}","salt":"{HEX_A}","exit_code":0,"status":"success""#
    );
    let dropped = r#","dropped":"node n9 stopped heartbeating""#;
    let extra = format!(
        r#","replicas":3,"instances_wanted":4,"instances":[{},{},{},{}]"#,
        entry(1, "n1", &revealed),
        entry(2, "n2", &sealed),
        entry(3, "n9", dropped),
        entry(3, "n3", ""),
    );
    let spec = task_with(&extra).unwrap();
    assert_eq!(spec.instances.len(), 4);
    assert_eq!(spec.instances_wanted, Some(4));
    let first = &spec.instances[0];
    assert_eq!(first.digest.as_deref(), Some(HEX_B));
    assert_eq!(first.status, Some(Status::Success));
    assert!(first.sealed && spec.instances[1].sealed && !spec.instances[3].sealed);
    assert_eq!(
        spec.instances[2].dropped.as_deref(),
        Some("node n9 stopped heartbeating")
    );
    let back = parse_task(
        "t.json",
        &spec.to_json(),
        &Limits::default(),
        Origin::Required,
    )
    .unwrap();
    assert_eq!(back, spec);
}

#[test]
fn instance_problems_name_the_entry_and_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            entry(1, "n1", r#","colour":"red""#),
            "\"instances[0].colour\": unknown field",
        ),
        (
            entry(1, "n1", "").replace(r#""attempt":1"#, r#""attempt":0"#),
            "\"instances[0].attempt\": expected an integer from 1 to 1000",
        ),
        (
            entry(1, "n1", "").replace(r#","round":1"#, ""),
            "\"instances[0].round\": is required",
        ),
        (
            entry(1, "../x", ""),
            "\"instances[0].node_id\": may only contain",
        ),
        (
            entry(1, "n1", r#","commitment":"ABC""#),
            "\"instances[0].commitment\": expected 64 lower-case hex digits",
        ),
        (
            entry(1, "n1", r#","sealed":"yes""#),
            "\"instances[0].sealed\": expected true or false",
        ),
        (
            entry(1, "n1", r#","sealed":true"#),
            "\"instances[0].commitment\": is required once an entry is sealed",
        ),
        (
            entry(1, "n1", r#","status":"won""#),
            "\"instances[0].status\": expected one of",
        ),
        (
            entry(1, "n1", "").replace("2026-01-01T00:05:00Z", "soon"),
            "\"instances[0].lease_expires_at\": expected an RFC 3339 time",
        ),
        (
            entry(6, "n1", ""),
            "\"instances[0].instance\": expected an integer from 1 to 5",
        ),
        (
            "42".to_string(),
            "\"instances[0]\": expected an instance entry",
        ),
    ];
    for (bad, why) in cases {
        refused_with(&format!(r#","replicas":3,"instances":[{bad}]"#), &[why]);
    }
    // The later entry is named, not just the list.
    refused_with(
        &format!(
            r#","replicas":3,"instances":[{},{}]"#,
            entry(1, "n1", ""),
            entry(2, "n2", r#","salt":"x""#)
        ),
        &["\"instances[1].salt\""],
    );
    refused_with(
        r#","replicas":3,"instances":{}"#,
        &["\"instances\": expected a list"],
    );
}

#[test]
fn entries_are_one_live_per_instance_and_per_node() {
    refused_with(
        &format!(
            r#","replicas":3,"instances":[{},{}]"#,
            entry(1, "n1", ""),
            entry(2, "n1", "")
        ),
        &["\"instances[1].node_id\": \"n1\" has another live entry"],
    );
    refused_with(
        &format!(
            r#","replicas":3,"instances":[{},{}]"#,
            entry(1, "n1", ""),
            entry(1, "n2", "")
        ),
        &["\"instances[1].instance\": instance 1 has another live entry"],
    );
    // A dropped entry is history: its number is re-issued to another node.
    let reissued = format!(
        r#","replicas":3,"instances":[{},{}]"#,
        entry(1, "n1", r#","dropped":"node n1 stopped heartbeating""#),
        entry(1, "n2", "")
    );
    task_with(&reissued).unwrap();
}

#[test]
fn only_a_replicated_task_has_instances_and_never_with_a_claim() {
    for replicas in ["", r#","replicas":1"#] {
        refused_with(
            &format!(r#"{replicas},"instances":[{}]"#, entry(1, "n1", "")),
            &["\"instances\": only a replicated task"],
        );
        refused_with(
            &format!(r#"{replicas},"instances_wanted":2"#),
            &["\"instances_wanted\": only a replicated task"],
        );
    }
    let claim = r#","claim":{"node_id":"n1","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:05:00Z","attempt":1}"#;
    refused_with(
        &format!(
            r#","replicas":3{claim},"instances":[{}]"#,
            entry(1, "n1", "")
        ),
        &["\"instances\": a task has either a \"claim\""],
    );
    task_with(r#","replicas":3,"instances_wanted":5"#).unwrap();
    refused_with(
        r#","replicas":3,"instances_wanted":6"#,
        &["\"instances_wanted\": expected an integer from 1 to 5"],
    );
    refused_with(
        r#","replicas":3,"max_instances":7,"instances_wanted":8"#,
        &["\"instances_wanted\": expected an integer from 1 to 7"],
    );
}

fn result_with(status: &str, quorum: &str) -> Result<TaskResult, Vec<Problem>> {
    let file = format!(
        r#"{{"task_id":"r","node_id":"n1","exit_code":0,"stdout":"","stderr":"","timestamp":"2026-01-01T00:00:00Z","status":"{status}"{quorum}}}"#
    );
    parse_result("r.json", file.as_bytes(), &Limits::default())
}

fn result_problems(status: &str, quorum: &str) -> Vec<String> {
    result_with(status, quorum)
        .expect_err("the result is refused")
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn a_result_s_quorum_object_round_trips_and_names_its_problems() {
    let votes = format!(
        r#"[{{"node_id":"n1","instance":1,"attempt":1,"digest":"{HEX_A}"}},{{"node_id":"n2","instance":2,"attempt":2,"digest":"{HEX_A}"}},{{"node_id":"liar","instance":3,"attempt":1,"digest":"{HEX_B}"}}]"#
    );
    let ok = format!(
        r#","quorum":{{"replicas":3,"digest":"{HEX_A}","agreeing":["n1","n2"],"dissenting":["liar"],"votes":{votes}}}"#
    );
    let result = result_with("success", &ok).unwrap();
    let quorum = result.quorum.as_ref().unwrap();
    assert_eq!(quorum.dissenting, ["liar"]);
    assert_eq!(quorum.votes.len(), 3);
    assert_eq!(quorum.votes[1].attempt.number(), 2);
    assert!(!quorum.unchecked);
    let back = parse_result("r.json", &result.to_json(), &Limits::default()).unwrap();
    assert_eq!(back, result);

    let cases = [
        (
            ok.replace(r#""replicas":3,"#, ""),
            "\"quorum.replicas\": is required",
        ),
        (
            ok.replace(r#""dissenting""#, r#""against""#),
            "\"quorum.against\": unknown field",
        ),
        (
            ok.replacen(HEX_B, "nothex", 1),
            "\"quorum.votes[2].digest\": expected 64 lower-case hex digits",
        ),
        (
            ok.replace(r#""instance":2"#, r#""instance":"two""#),
            "\"quorum.votes[1].instance\": expected an integer",
        ),
        (
            ok.replace(r#""attempt":2,"#, r#""attempt":2,"extra":1,"#),
            "\"quorum.votes[1].extra\": unknown field",
        ),
        (
            ok.replace(r#"["n1","n2"]"#, r#"["n1","a/b"]"#),
            "\"quorum.agreeing[1]\": may only contain",
        ),
        (
            ok.replace(
                &format!(r#""digest":"{HEX_A}","agreeing""#),
                r#""agreeing""#,
            ),
            "\"quorum.digest\": is required: a \"success\" result",
        ),
        (
            r#","quorum":[]"#.to_string(),
            "\"quorum\": expected an object",
        ),
    ];
    for (bad, why) in cases {
        let found = result_problems("success", &bad);
        assert!(found.iter().any(|p| p.contains(why)), "{why}: {found:?}");
    }
}

#[test]
fn a_failure_other_than_no_quorum_may_record_votes_without_a_digest() {
    let votes = format!(
        r#","quorum":{{"replicas":3,"agreeing":[],"dissenting":[],"votes":[{{"node_id":"a","instance":1,"attempt":1,"digest":"{HEX_A}"}}]}}"#
    );
    for status in ["lost", "cancelled", "failed"] {
        let result = result_with(status, &votes).unwrap();
        assert_eq!(result.quorum.unwrap().votes.len(), 1, "{status}");
    }
}

#[test]
fn no_quorum_records_every_vote_and_no_digest() {
    let none = format!(
        r#","quorum":{{"replicas":5,"agreeing":[],"dissenting":[],"votes":[{{"node_id":"a","instance":1,"attempt":1,"digest":"{HEX_A}"}},{{"node_id":"b","instance":2,"attempt":1,"digest":"{HEX_B}"}}]}}"#
    );
    let result = result_with("no_quorum", &none).unwrap();
    assert_eq!(result.status, Status::NoQuorum);
    assert_eq!(result.status.name(), "no_quorum");
    assert_eq!(result.quorum.as_ref().unwrap().digest, None);
    let found = result_problems("no_quorum", "");
    assert!(
        found
            .iter()
            .any(|p| p.contains("\"quorum\": is required for status \"no_quorum\"")),
        "{found:?}"
    );
    let with_digest = none.replace(
        r#""replicas":5,"#,
        &format!(r#""replicas":5,"digest":"{HEX_A}","#),
    );
    let found = result_problems("no_quorum", &with_digest);
    assert!(
        found
            .iter()
            .any(|p| p.contains("\"quorum.digest\": a \"no_quorum\" result has no agreed digest")),
        "{found:?}"
    );
}

#[test]
fn a_replicated_task_with_an_unpinned_image_is_warned_not_refused() {
    let pinned = format!(
        r#""id":"r","image":"alpine@sha256:{HEX_A}","command":"x","timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"a""#
    );
    for (file, warned) in [
        (format!(r#"{{{BASE},"replicas":3}}"#), true),
        (format!(r#"{{{BASE},"replicas":"adaptive"}}"#), true),
        (format!(r#"{{{BASE},"replicas":1}}"#), false),
        (format!("{{{BASE}}}"), false),
        (format!(r#"{{{pinned},"replicas":3}}"#), false),
    ] {
        let spec = parse_task(
            "t.json",
            file.as_bytes(),
            &Limits::default(),
            Origin::Required,
        )
        .expect("a warning never refuses the file");
        let warnings = crate::task::task_warnings("t.json", &spec);
        assert_eq!(!warnings.is_empty(), warned, "{file}: {warnings:?}");
        if warned {
            assert_eq!(warnings[0].field.as_deref(), Some("image"));
            assert!(warnings[0].message.contains("@sha256:"), "{warnings:?}");
        }
    }
}

#[test]
fn the_signature_covers_replicas_quorum_and_max_instances_but_not_instances() {
    let bytes = |extra: &str| crate::trust::canonical_bytes(&task_with(extra).unwrap());
    let signed = bytes(r#","replicas":3,"quorum":2,"max_instances":5"#);
    for changed in [
        r#","replicas":4,"quorum":2,"max_instances":5"#,
        r#","replicas":3,"quorum":3,"max_instances":5"#,
        r#","replicas":3,"quorum":2,"max_instances":6"#,
        r#","replicas":"adaptive""#,
    ] {
        assert_ne!(bytes(changed), signed, "{changed}");
    }
    // What workers write into a running replicated task leaves the signed bytes as they were.
    let running = format!(
        r#","replicas":3,"quorum":2,"max_instances":5,"instances_wanted":4,"instances":[{}]"#,
        entry(1, "n1", "")
    );
    assert_eq!(bytes(&running), signed);
    // A task without the fields signs as it always did.
    assert!(!String::from_utf8(bytes("")).unwrap().contains("replicas"));
}

//! What a task file may leave out (issue 10, item 21): the Python implementation's files have no
//! `image`, `created_at` or `submitted_by`; the reader fills them.

use super::*;
use crate::task::Replicas;
use std::cell::Cell;

const PYTHON_ERA: &[u8] = br#"{"task_id": "old-1", "script": "echo hi", "timeout_seconds": 120}"#;

fn added() -> Result<AddedBy, String> {
    Ok(AddedBy {
        created_at: "2024-05-06T07:08:09Z".into(),
        submitted_by: "py@example.com".into(),
    })
}

fn problems(result: Result<TaskSpec, Vec<Problem>>) -> Vec<String> {
    result
        .expect_err("the file is refused")
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn a_python_era_file_gets_the_default_image_and_its_commit_s_author_and_time() {
    let spec = parse_task(
        "t.json",
        PYTHON_ERA,
        &Limits::default(),
        Origin::Added(&added),
    )
    .unwrap();
    assert_eq!(spec.id.as_str(), "old-1");
    assert_eq!(
        spec.image, "python:3.11-alpine",
        "the earlier implementation's image"
    );
    assert_eq!(spec.command, TaskCommand::Shell("echo hi".into()));
    assert_eq!(spec.timeout, 120);
    assert_eq!(spec.created_at, "2024-05-06T07:08:09Z");
    assert_eq!(spec.submitted_by, "py@example.com");
    // Written back (a claim), it is a whole seed-format file that needs no default any more.
    let back = parse_task(
        "t.json",
        &spec.to_json(),
        &Limits::default(),
        Origin::Required,
    );
    assert_eq!(back.unwrap(), spec);
}

#[test]
fn the_default_image_is_the_reader_s_and_a_named_image_wins() {
    let limits = Limits {
        default_image: "dgrid/busybox:latest".into(),
        ..Limits::default()
    };
    let spec = parse_task("t.json", PYTHON_ERA, &limits, Origin::Added(&added)).unwrap();
    assert_eq!(spec.image, "dgrid/busybox:latest");
    let named =
        br#"{"task_id": "old-1", "image": "alpine:3", "script": "true", "timeout_seconds": 1}"#;
    let spec = parse_task("t.json", named, &limits, Origin::Added(&added)).unwrap();
    assert_eq!(spec.image, "alpine:3");
    // A default that is no image reference is reported like a bad image in the file.
    let limits = Limits {
        default_image: "Not An Image".into(),
        ..Limits::default()
    };
    let found = problems(parse_task(
        "t.json",
        PYTHON_ERA,
        &limits,
        Origin::Added(&added),
    ));
    assert!(found.iter().any(|p| p.contains("\"image\"")), "{found:?}");
}

#[test]
fn the_commit_is_asked_once_and_only_for_what_is_missing() {
    let calls = Cell::new(0);
    let counted = || {
        calls.set(calls.get() + 1);
        added()
    };
    parse_task(
        "t.json",
        PYTHON_ERA,
        &Limits::default(),
        Origin::Added(&counted),
    )
    .unwrap();
    assert_eq!(calls.get(), 1, "both fields from one look-up");
    let whole = br#"{"id": "t", "image": "alpine:3", "command": "true", "timeout": 1,
        "created_at": "2026-01-01T00:00:00Z", "submitted_by": "me"}"#;
    let spec = parse_task("t.json", whole, &Limits::default(), Origin::Added(&counted)).unwrap();
    assert_eq!(calls.get(), 1, "a file that says both is not looked up");
    assert_eq!(
        (spec.created_at.as_str(), spec.submitted_by.as_str()),
        ("2026-01-01T00:00:00Z", "me")
    );
    // One given, one missing: the file's value stays, the commit gives the other.
    let half = br#"{"task_id": "t", "script": "true", "timeout_seconds": 1, "submitted_by": "me"}"#;
    let spec = parse_task("t.json", half, &Limits::default(), Origin::Added(&counted)).unwrap();
    assert_eq!(calls.get(), 2);
    assert_eq!(
        (spec.created_at.as_str(), spec.submitted_by.as_str()),
        ("2024-05-06T07:08:09Z", "me")
    );
}

#[test]
fn given_values_are_still_checked() {
    let bad =
        br#"{"task_id": "t", "script": "true", "timeout_seconds": 1, "created_at": "yesterday"}"#;
    let found = problems(parse_task(
        "t.json",
        bad,
        &Limits::default(),
        Origin::Added(&added),
    ));
    assert!(
        found
            .iter()
            .any(|p| p.contains("\"created_at\"") && p.contains("RFC 3339")),
        "{found:?}"
    );
}

#[test]
fn validation_accepts_missing_fields_and_a_required_origin_refuses_them() {
    let spec = parse_task("t.json", PYTHON_ERA, &Limits::default(), Origin::Unchecked).unwrap();
    assert_eq!(spec.image, "python:3.11-alpine");
    let found = problems(parse_task(
        "t.json",
        PYTHON_ERA,
        &Limits::default(),
        Origin::Required,
    ));
    for field in [
        "\"created_at\": is required",
        "\"submitted_by\": is required",
    ] {
        assert!(
            found.iter().any(|p| p.contains(field)),
            "{field}: {found:?}"
        );
    }
}

#[test]
fn a_commit_that_cannot_tell_is_a_problem_that_names_the_field_and_why() {
    let unknown = || Err("no commit in the history of abc adds it".to_string());
    let found = problems(parse_task(
        "t.json",
        PYTHON_ERA,
        &Limits::default(),
        Origin::Added(&unknown),
    ));
    assert_eq!(
        found,
        ["t.json: \"created_at\": is missing, and the commit that added the file cannot tell: no commit in the history of abc adds it"]
    );
}

const SIGNED_BASE: &str = r#""id":"s","image":"alpine:3","command":"x","timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"a""#;

#[test]
fn a_signature_is_an_armored_ssh_signature_of_bounded_size() {
    let ok = format!(
        r#"{{{SIGNED_BASE},"signature":"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"}}"#
    );
    let spec = parse_task(
        "t.json",
        ok.as_bytes(),
        &Limits::default(),
        Origin::Required,
    )
    .unwrap();
    assert!(spec.signature.as_deref().unwrap().starts_with("-----BEGIN"));
    // Written back whole (a claim, a requeue): the signature is kept as it was.
    let back = parse_task(
        "t.json",
        &spec.to_json(),
        &Limits::default(),
        Origin::Required,
    )
    .unwrap();
    assert_eq!(back.signature, spec.signature);

    let long = "A".repeat(9000);
    for (signature, why) in [
        ("42".to_string(), "\"signature\": expected a string"),
        ("\"gpg\"".to_string(), "expected an armored SSH signature"),
        ("\"\"".to_string(), "must not be empty"),
        (format!("\"{long}\""), "must be at most 8192 bytes"),
    ] {
        let file = format!(r#"{{{SIGNED_BASE},"signature":{signature}}}"#);
        let found = problems(parse_task(
            "t.json",
            file.as_bytes(),
            &Limits::default(),
            Origin::Required,
        ));
        assert!(
            found
                .iter()
                .any(|p| p.contains("t.json") && p.contains(why)),
            "{why}: {found:?}"
        );
    }
}

#[test]
fn a_result_s_signed_by_names_principal_and_fingerprint() {
    let result = |signed_by: &str| {
        format!(
            r#"{{"task_id":"s","node_id":"n","exit_code":0,"stdout":"","stderr":"","timestamp":"2026-01-01T00:00:00Z","status":"success","signed_by":{signed_by}}}"#
        )
    };
    let ok = result(r#"{"principal":"alice","fingerprint":"SHA256:abc"}"#);
    let parsed = parse_result("r.json", ok.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(parsed.signed_by.as_ref().unwrap().principal, "alice");
    let bad = result(r#"{"principal":"alice","key":"x"}"#);
    let found: Vec<String> = parse_result("r.json", bad.as_bytes(), &Limits::default())
        .unwrap_err()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(found.iter().any(|p| p.contains("signed_by")), "{found:?}");
}

// Replicated tasks (issue 14): `replicas`, `quorum`, `max_instances`, the `instances` entries and
// `instances_wanted`, a result's `quorum` object and `no_quorum`.

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

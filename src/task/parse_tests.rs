//! What a task file may leave out: the Python implementation's files have no
//! `image`, `created_at` or `submitted_by`; the reader fills them.

use super::*;
use crate::task::parse_result;
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

/// Resources below docker's minimums fail on every node; a problem a setting, a newer version or
/// the file's history could change does not, nor does a valid file.
#[test]
fn only_problems_no_node_reads_otherwise_make_a_file_invalid_everywhere() {
    let limits = Limits::default();
    let file = |extra: &str| {
        format!(r#"{{"id": "t1", "image": "busybox", "command": "true", "timeout": 60{extra}}}"#)
    };
    let everywhere = |extra: &str| invalid_everywhere("t.json", file(extra).as_bytes(), &limits);
    let (id, problems) = everywhere(r#", "resources": {"cpus": 0.001, "memory": "1k"}"#)
        .expect("docker's minimums are everyone's");
    assert_eq!(id.as_str(), "t1");
    let fields: Vec<_> = problems.iter().filter_map(|p| p.field.clone()).collect();
    assert_eq!(fields, ["resources.cpus", "resources.memory"]);
    assert!(everywhere(r#", "resources": "lots""#).is_some());
    for other in [
        "",
        r#", "resources": {"cpus": 1}"#,
        r#", "resources": {"cpus": 0.001, "gpus": 1}"#,
        r#", "resources": {"cpus": 0.001}, "colour": "red""#,
        r#", "resources": {"cpus": 0.001}, "priority": "high""#,
    ] {
        assert!(everywhere(other).is_none(), "{other}");
    }
    let short = Limits {
        max_timeout: 30,
        ..Limits::default()
    };
    let long = file(r#", "resources": {"cpus": 0.001}"#);
    assert!(
        invalid_everywhere("t.json", long.as_bytes(), &short).is_none(),
        "a timeout above this node's maximum is this node's"
    );
    let unnamed =
        br#"{"image": "busybox", "command": "true", "timeout": 60, "resources": {"cpus": 0}}"#;
    assert!(invalid_everywhere("t.json", unnamed, &limits).is_none());
}

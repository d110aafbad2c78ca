//! What a signature covers: a canonical form of the fields a submitter sets, never the fields
//! workers write. Built from the parsed task, so an alias (`script` for `command`) or a memory
//! given as a number signs the same as its canonical spelling: the signature is over what runs.
//!
//! The form: the line `dgrid-task-v1\n`, then one JSON object of exactly the [`SIGNED_FIELDS`]
//! the task has (absent optional fields are left out, so a field added to the list later does
//! not change the bytes of an old task that lacks it), keys sorted at every depth, no spaces.
//!
//! A field this version does not know is refused by the task parser ("unknown field"), so a file
//! with a newer submitter field never runs here half-verified. A field added to `TaskSpec` must be
//! put in [`SIGNED_FIELDS`] or [`WORKER_FIELDS`]: a unit test fails until it is.

use crate::task::TaskSpec;
use serde_json::Value;

/// The `ssh-keygen -Y sign -n` namespace of task signatures: a signature made for git commits
/// (`git`) or anything else never passes for a task.
pub const NAMESPACE: &str = "dgrid-task";

/// The first line of the signed bytes; a change of the form gets a new version.
pub const VERSION_LINE: &str = "dgrid-task-v1\n";

/// Everything a submitter can set, in the file's names.
pub const SIGNED_FIELDS: &[&str] = &[
    "id",
    "image",
    "command",
    "timeout",
    "env",
    "resources",
    "network",
    "labels",
    "depends_on",
    "priority",
    "max_attempts",
    "created_at",
    "submitted_by",
    "replicas",
    "quorum",
    "max_instances",
    "secrets",
    "secrets_env",
];

/// Written by git-dgrid after submission (claims, requeues, start failures) and the signature
/// itself: changing them never breaks a signature.
pub const WORKER_FIELDS: &[&str] = &[
    "claim",
    "attempts",
    "start_failures",
    "signature",
    "instances",
    "instances_wanted",
];

/// The bytes a submitter signs and a worker verifies.
pub fn canonical_bytes(spec: &TaskSpec) -> Vec<u8> {
    let Value::Object(all) = serde_json::to_value(spec).expect("a task spec always serializes")
    else {
        unreachable!("a task spec serializes as an object")
    };
    let mut out = VERSION_LINE.as_bytes().to_vec();
    let mut fields: Vec<(&String, &Value)> = all
        .iter()
        .filter(|(k, _)| SIGNED_FIELDS.contains(&k.as_str()))
        .collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(&mut out, &Value::String(key.clone()));
        out.push(b':');
        write_value(&mut out, value);
    }
    out.push(b'}');
    out
}

/// Compact JSON with object keys sorted, whatever order the map keeps them in.
fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, &Value::String(key.clone()));
                out.push(b':');
                write_value(out, &map[key]);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("a JSON scalar serializes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::test_spec as spec;

    const BASE: &str = r#""created_at":"2026-01-01T00:00:00Z","submitted_by":"alice""#;

    #[test]
    fn sorted_compact_and_versioned() {
        let s = spec(&format!(
            r#"{{"timeout":5,"image":"alpine:3","id":"a","command":"echo hi","env":{{"Z":"1","A":"2"}},{BASE}}}"#
        ));
        let bytes = String::from_utf8(canonical_bytes(&s)).unwrap();
        assert_eq!(
            bytes,
            "dgrid-task-v1\n{\"command\":\"echo hi\",\"created_at\":\"2026-01-01T00:00:00Z\",\"env\":{\"A\":\"2\",\"Z\":\"1\"},\"id\":\"a\",\"image\":\"alpine:3\",\"submitted_by\":\"alice\",\"timeout\":5}"
        );
    }

    #[test]
    fn worker_fields_do_not_change_the_bytes_and_submitter_fields_do() {
        let plain = spec(&format!(
            r#"{{"id":"a","image":"alpine:3","command":"x","timeout":5,{BASE}}}"#
        ));
        let claimed = spec(&format!(
            r#"{{"id":"a","image":"alpine:3","command":"x","timeout":5,{BASE},"attempts":1,"signature":"-----BEGIN SSH SIGNATURE-----\nAA==\n-----END SSH SIGNATURE-----",
            "claim":{{"node_id":"n","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:01:00Z","attempt":2}}}}"#
        ));
        assert_eq!(canonical_bytes(&plain), canonical_bytes(&claimed));
        for edit in [
            r#""command":"y""#,
            r#""timeout":6"#,
            r#""priority":1"#,
            r#""labels":["gpu"]"#,
            r#""network":"bridge""#,
        ] {
            let edited = spec(&format!(
                r#"{{"id":"a","image":"alpine:3","command":"x","timeout":5,{BASE},{edit}}}"#
            ));
            assert_ne!(canonical_bytes(&plain), canonical_bytes(&edited), "{edit}");
        }
    }

    #[test]
    fn aliases_sign_as_their_canonical_names() {
        let seed = spec(&format!(
            r#"{{"id":"a","image":"alpine:3","command":"x","timeout":5,{BASE}}}"#
        ));
        let python = spec(&format!(
            r#"{{"task_id":"a","image":"alpine:3","script":"x","timeout_seconds":5,{BASE}}}"#
        ));
        assert_eq!(canonical_bytes(&seed), canonical_bytes(&python));
    }

    /// A new field of the task must be decided: signed (a submitter's) or not (a worker's).
    #[test]
    fn every_task_field_is_either_signed_or_a_worker_field() {
        let full = spec(&format!(
            r#"{{"id":"a","image":"alpine:3","command":"x","timeout":5,{BASE},"env":{{"A":"1"}},
            "priority":1,"max_attempts":2,"labels":["l"],"resources":{{"cpus":1,"memory":"64m"}},
            "network":"none","depends_on":["b"],"attempts":1,"signature":"-----BEGIN SSH SIGNATURE-----\nAA==\n-----END SSH SIGNATURE-----",
            "claim":{{"node_id":"n","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:01:00Z","attempt":2}},
            "start_failures":[{{"node_id":"n","at":"2026-01-01T00:00:00Z","reason":"r"}}]}}"#
        ));
        let Value::Object(all) = serde_json::to_value(&full).unwrap() else {
            panic!()
        };
        for key in all.keys() {
            assert!(
                SIGNED_FIELDS.contains(&key.as_str()) || WORKER_FIELDS.contains(&key.as_str()),
                "task field {key:?} is neither in SIGNED_FIELDS nor in WORKER_FIELDS"
            );
        }
    }
}

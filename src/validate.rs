//! Validating the files of a grid as a whole: the per-file rules live in `task` and `node`; this
//! module adds the rules that need the whole tree (file name = id, one state per id, no symlinks).
//! Pure: it judges paths and bytes it is given. Gathering them from a working tree, a commit or a
//! range of commits is `grid::read::inspect` (see `docs/ARCHITECTURE.md#layers`).

use crate::fields;
use crate::layout::{self, EntryKind, PathKind, State};
use crate::node::NodeRecord;
use crate::problem::Problem;
use crate::task::{self, Limits, Status};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// A file to validate, with its content when it is a regular file of an acceptable size.
pub struct Entry {
    /// Repository-relative path (or the path the user gave, for files outside a repository).
    pub path: String,
    pub kind: EntryKind,
    pub content: Content,
}

pub enum Content {
    Bytes(Vec<u8>),
    TooLarge(u64),
    /// Not read: not a regular file.
    Unread,
    Unreadable(String),
}

/// Validates `entries`. Only files whose path is in `scope` (all when `None`) get problems; the
/// others still count for "one state per id".
pub fn check_entries(
    entries: &[Entry],
    scope: Option<&BTreeSet<String>>,
    limits: &Limits,
) -> Vec<Problem> {
    let in_scope = |path: &str| scope.is_none_or(|s| s.contains(path));
    let mut problems = Vec::new();
    let mut ids: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for entry in entries {
        let kind = match layout::classify(&entry.path) {
            Ok(kind) => kind,
            Err(why) => {
                if in_scope(&entry.path) {
                    problems.push(Problem::file(&entry.path, why));
                }
                continue;
            }
        };
        if let PathKind::Task { stem, .. } = &kind {
            ids.entry(stem.clone()).or_default().push(&entry.path);
        }
        if matches!(kind, PathKind::Ignored) || !in_scope(&entry.path) {
            continue;
        }
        problems.extend(check_entry(entry, &kind, limits));
    }
    for (id, paths) in ids.iter().filter(|(_, paths)| paths.len() > 1) {
        for path in paths.iter().filter(|p| in_scope(p)) {
            let others: Vec<&str> = paths.iter().copied().filter(|p| p != path).collect();
            problems.push(Problem::file(
                *path,
                format!(
                    "the id {id:?} is also in {}; a task is in exactly one place",
                    others.join(", ")
                ),
            ));
        }
    }
    problems
}

/// With `--allowed-signers`: each queued or claimed task in scope (and each task file given by
/// path) whose signature does not verify against `signers` is a problem of its `signature`
/// field, with the reason (unsigned, tampered, unknown signer, …). Files that do not parse are
/// left to [`check_entries`], which names them already.
pub fn check_signatures(
    entries: &[Entry],
    scope: Option<&BTreeSet<String>>,
    limits: &Limits,
    signers: &crate::trust::AllowedSigners,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for entry in entries {
        if scope.is_some_and(|s| !s.contains(&entry.path)) || entry.kind != EntryKind::File {
            continue;
        }
        let Content::Bytes(bytes) = &entry.content else {
            continue;
        };
        let signed_state = match layout::classify(&entry.path) {
            Ok(PathKind::Task { state, .. }) => !state.holds_results(),
            Ok(PathKind::Outside) => true,
            _ => false,
        };
        if !signed_state {
            continue;
        }
        let file = entry.path.as_str();
        let Ok(spec) = task::parse_task(file, bytes, limits, task::Origin::Unchecked) else {
            continue;
        };
        if let Err(why) = crate::trust::verify(&spec, signers, now) {
            problems.push(Problem::field(file, "signature", why.to_string()));
        }
    }
    problems
}

/// What the task files in scope hold but should not (see `task::task_warnings`): reported,
/// never refused. Files that do not parse are left to [`check_entries`].
pub fn check_warnings(
    entries: &[Entry],
    scope: Option<&BTreeSet<String>>,
    limits: &Limits,
) -> Vec<Problem> {
    let mut warnings = Vec::new();
    for entry in entries {
        if scope.is_some_and(|s| !s.contains(&entry.path)) || entry.kind != EntryKind::File {
            continue;
        }
        let Content::Bytes(bytes) = &entry.content else {
            continue;
        };
        let task_file = match layout::classify(&entry.path) {
            Ok(PathKind::Task { state, .. }) => !state.holds_results(),
            Ok(PathKind::Outside) => true,
            _ => false,
        };
        if !task_file {
            continue;
        }
        let file = entry.path.as_str();
        if let Ok(spec) = task::parse_task(file, bytes, limits, task::Origin::Unchecked) {
            warnings.extend(task::task_warnings(file, &spec));
        }
    }
    warnings
}

fn check_entry(entry: &Entry, kind: &PathKind, limits: &Limits) -> Vec<Problem> {
    let file = entry.path.as_str();
    if entry.kind != EntryKind::File {
        return vec![Problem::file(
            file,
            format!(
                "is {}; only regular files are allowed under tasks/ and nodes/",
                entry.kind.describe()
            ),
        )];
    }
    let bytes = match &entry.content {
        Content::Bytes(b) => b,
        Content::TooLarge(size) => {
            return fields::check_size(file, *size).err().into_iter().collect();
        }
        Content::Unread => return vec![Problem::file(file, "is not a regular file")],
        Content::Unreadable(why) => {
            return vec![Problem::file(file, format!("cannot be read: {why}"))]
        }
    };
    match kind {
        PathKind::Task { state, stem, .. } => {
            check_task_file(file, Some(*state), stem, bytes, limits)
        }
        PathKind::Node { stem, .. } => check_node_file(file, stem, bytes),
        PathKind::Outside => {
            // A file given by path outside the layout: a task spec about to be submitted.
            let stem = Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("");
            check_task_file(file, None, stem, bytes, limits)
        }
        PathKind::Ignored => Vec::new(),
    }
}

fn check_task_file(
    file: &str,
    state: Option<State>,
    stem: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(why) = task::check_id(stem) {
        problems.push(Problem::file(
            file,
            format!("file name is not <id>.json with a valid id: the id {why}"),
        ));
    }
    match state {
        Some(state) if state.holds_results() => match task::parse_result(file, bytes, limits) {
            Err(p) => problems.extend(p),
            Ok(result) => {
                if result.task_id != stem {
                    problems.push(Problem::field(
                        file,
                        "task_id",
                        format!(
                            "is {:?} but the file is named {stem:?}.json; they must match",
                            result.task_id
                        ),
                    ));
                }
                let success = result.status == Status::Success;
                if state == State::Completed && !success {
                    problems.push(Problem::field(
                        file,
                        "status",
                        "a result in tasks/completed must have status \"success\"",
                    ));
                }
                if state == State::Failed && success {
                    problems.push(Problem::field(
                        file,
                        "status",
                        "a result in tasks/failed cannot have status \"success\"",
                    ));
                }
            }
        },
        // No commit to ask here: a missing `created_at` or `submitted_by` is filled when the grid
        // reads the file (from the commit that added it), so it is fine.
        _ => match task::parse_task(file, bytes, limits, task::Origin::Unchecked) {
            Err(p) => problems.extend(p),
            Ok(spec) => {
                if spec.id != stem {
                    problems.push(Problem::field(
                        file,
                        "id",
                        format!(
                            "is {:?} but the file is named {stem:?}.json; they must match",
                            spec.id
                        ),
                    ));
                }
                // A replicated task in progress names its nodes in `instances`, not in a claim.
                let replicated = crate::quorum::Rule::of(&spec).is_some();
                match (state, &spec.claim) {
                    (Some(State::Queue), Some(_)) => problems.push(Problem::field(
                        file,
                        "claim",
                        "a queued task cannot carry a claim",
                    )),
                    (Some(State::InProgress), None) if !replicated => {
                        problems.push(Problem::field(
                            file,
                            "claim",
                            "is required in tasks/in_progress (which node runs it, until when)",
                        ))
                    }
                    (Some(State::InProgress), Some(_)) if replicated => {
                        problems.push(Problem::field(
                            file,
                            "claim",
                            "a replicated task in progress lists its nodes in \"instances\", not in a claim",
                        ))
                    }
                    _ => {}
                }
                if state == Some(State::Queue)
                    && (!spec.instances.is_empty() || spec.instances_wanted.is_some())
                {
                    problems.push(Problem::field(
                        file,
                        "instances",
                        "a queued task cannot carry instances (nor \"instances_wanted\")",
                    ));
                }
            }
        },
    }
    problems
}

fn check_node_file(file: &str, stem: &str, bytes: &[u8]) -> Vec<Problem> {
    if let Err(why) = task::check_id(stem) {
        return vec![Problem::file(
            file,
            format!("file name is not <node-id>.json with a valid id: the id {why}"),
        )];
    }
    let object = match fields::read_object(file, bytes) {
        Ok(object) => object,
        Err(problem) => return vec![problem],
    };
    let mut problems = Vec::new();
    // Checked on its own so a record that is wrong elsewhere still says when it is misnamed.
    if let Some(serde_json::Value::String(id)) = object.get("id") {
        if id != stem {
            problems.push(Problem::field(
                file,
                "id",
                format!("is {id:?} but the file is named {stem:?}.json; they must match"),
            ));
        }
    }
    if let Err(found) = NodeRecord::from_object(file, object) {
        problems.extend(found);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: &str = r#""id":"r","image":"alpine:3","command":"x","timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"a""#;
    const ENTRY: &str = r#"{"instance":1,"round":1,"node_id":"n1","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:05:00Z","attempt":1}"#;
    const CLAIM: &str = r#""claim":{"node_id":"n1","claimed_at":"2026-01-01T00:00:00Z","lease_expires_at":"2026-01-01T00:05:00Z","attempt":1}"#;

    fn entry(path: &str, body: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File,
            content: Content::Bytes(format!("{{{TASK}{body}}}").into_bytes()),
        }
    }

    fn found(path: &str, body: &str) -> Vec<String> {
        check_entries(&[entry(path, body)], None, &Limits::default())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_replicated_task_in_progress_has_instances_instead_of_a_claim() {
        let running = "tasks/in_progress/r.json";
        assert_eq!(
            found(running, &format!(r#","replicas":3,"instances":[{ENTRY}]"#)),
            Vec::<String>::new()
        );
        let claimed = found(running, &format!(r#","replicas":3,{CLAIM}"#));
        assert!(
            claimed[0].contains("\"claim\": a replicated task in progress lists its nodes"),
            "{claimed:?}"
        );
        // A single task still needs its claim, exactly as before.
        let single = found(running, "");
        assert!(single[0].contains("\"claim\": is required"), "{single:?}");
        let queued = found(
            "tasks/queue/r.json",
            &format!(r#","replicas":3,"instances":[{ENTRY}]"#),
        );
        assert!(
            queued[0].contains("\"instances\": a queued task cannot carry instances"),
            "{queued:?}"
        );
    }

    #[test]
    fn warnings_are_for_task_files_in_scope_only() {
        let entries = [
            entry("tasks/queue/r.json", r#","replicas":3"#),
            entry("tasks/failed/r.json", r#","replicas":3"#),
        ];
        let limits = Limits::default();
        let warnings = check_warnings(&entries, None, &limits);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].file, "tasks/queue/r.json");
        let single = [entry("tasks/queue/r.json", r#","replicas":1"#)];
        assert_eq!(check_entries(&single, None, &limits), vec![]);
        assert_eq!(check_warnings(&single, None, &limits), vec![]);
        let scope: BTreeSet<String> = ["tasks/failed/r.json".to_string()].into();
        assert_eq!(check_warnings(&entries, Some(&scope), &limits), vec![]);
    }
}

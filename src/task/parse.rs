//! The whole-file parser of a task file (or a task object `submit` built), each field checked by
//! the rules in `rules`, every problem reported at once; result files: `parse_result`.
//!
//! Compatibility: the seed's task `{id, image, command, created_at, timeout, submitted_by}` and result
//! `{task_id, node_id, exit_code, stdout, stderr, timestamp, status}` are accepted unchanged, and the
//! Python predecessor's `task_id`, `script` and `timeout_seconds` are accepted as aliases; what its
//! files lack is filled: `image` from `Limits::default_image`, `created_at` and `submitted_by` from
//! the [`Origin`] the reader gives (see `docs/ARCHITECTURE.md#formats`).

use super::ids::{Attempt, TaskId};
use super::model::{
    AddedBy, Claim, Instance, Limits, Network, Origin, Resources, StartFailure, TaskCommand,
    TaskSpec,
};
use super::replicated::{read_instances, read_replica_fields, ReplicaFields};
use super::rules::{
    check_env_name, check_id, check_image, check_label, check_memory, MAX_COMMAND_BYTES,
    MAX_SHORT_TEXT, MIN_CPUS, MIN_MEMORY_BYTES,
};
use super::secret_fields::read_secret_fields;
use crate::fields::{read_object, show, FieldReader};
use crate::problem::Problem;
use serde_json::Value;
use std::collections::BTreeMap;

/// Parses and validates a task file. `file` is the name used in messages; `origin` says where a
/// missing `created_at` or `submitted_by` comes from.
pub fn parse_task(
    file: &str,
    bytes: &[u8],
    limits: &Limits,
    origin: Origin,
) -> Result<TaskSpec, Vec<Problem>> {
    let object = read_object(file, bytes).map_err(|p| vec![p])?;
    task_from_object(file, object, limits, origin)
}

/// Validates a task given as a JSON value (as `submit` receives them).
pub fn task_from_object(
    file: &str,
    object: serde_json::Map<String, Value>,
    limits: &Limits,
    origin: Origin,
) -> Result<TaskSpec, Vec<Problem>> {
    let mut r = FieldReader::new(file, "", object);
    let id = read_id(&mut r);
    let image = read_image(&mut r, limits);
    let command = r.required("command", &["script"]);
    let command = read_command(&mut r, command);
    let created_at = r.take("created_at", &[]);
    let timeout = r.required("timeout", &["timeout_seconds"]);
    let timeout = r.integer("timeout", timeout, 1, limits.max_timeout as i64);
    let submitted_by = r.take("submitted_by", &[]);
    let (created_at, submitted_by) = read_origin(&mut r, created_at, submitted_by, origin);

    let env = r.take("env", &[]);
    let env = read_env(&mut r, env);
    let priority = r.take("priority", &[]);
    let priority = r.integer("priority", priority, -1_000_000, 1_000_000);
    let max_attempts = r.take("max_attempts", &[]);
    let max_attempts = r.integer("max_attempts", max_attempts, 1, 100);
    let labels = read_labels(&mut r);
    let resources = r.take("resources", &[]);
    let resources = read_resources(&mut r, resources);
    let network = read_network(&mut r);
    let dependencies = read_dependencies(&mut r, id.as_ref());
    let attempts = r.take("attempts", &[]);
    // Attempts already used: one fewer than the highest attempt, so the next claim can name it.
    let attempts = r.integer("attempts", attempts, 0, i64::from(Attempt::MAX) - 1);
    let claim = r.take("claim", &[]);
    let claim = read_claim(&mut r, claim);
    let start_failures = r.take("start_failures", &[]);
    let start_failures = read_start_failures(&mut r, start_failures);
    let signature = r.take("signature", &[]);
    let signature = read_signature(&mut r, signature);
    let (replica_fields, instances, instances_wanted) = read_replication(&mut r, claim.is_some());
    let (secrets, secrets_env) = read_secret_fields(&mut r, &env);

    let problems = r.finish();
    if !problems.is_empty() {
        return Err(problems);
    }
    // Every required field was present and valid, or a problem was recorded above.
    match (id, image, command, created_at, timeout, submitted_by) {
        (
            Some(id),
            Some(image),
            Some(command),
            Some(created_at),
            Some(timeout),
            Some(submitted_by),
        ) => Ok(TaskSpec {
            id,
            image,
            command,
            created_at,
            timeout: timeout as u64,
            submitted_by,
            env,
            priority,
            max_attempts: max_attempts.map(|n| n as u32),
            labels,
            resources,
            network,
            depends_on: dependencies,
            attempts: attempts.map(|n| n as u32),
            claim,
            start_failures,
            signature,
            replicas: replica_fields.replicas,
            quorum: replica_fields.quorum,
            max_instances: replica_fields.max_instances,
            instances,
            instances_wanted,
            secrets,
            secrets_env,
        }),
        _ => Err(vec![Problem::file(file, "is incomplete")]),
    }
}

/// The fields whose rules no reader's setting and no version of git-dgrid changes: what a task
/// asks of docker, below docker's own minimums (`--cpus 0.001`, `--memory 1k`) or not a size at
/// all. Other problems may read elsewhere: an unknown field a newer version knows, a timeout above
/// this node's maximum, a field the history of the file fills in.
const SAME_ON_EVERY_NODE: [&str; 3] = ["resources", "resources.cpus", "resources.memory"];

/// A task file that breaks the contract the same way on every node, so that no node will ever
/// run it: its id and every problem, when all of them are of [`SAME_ON_EVERY_NODE`]'s fields and
/// the file names its id. `None` for a valid file and for any other invalid one.
pub fn invalid_everywhere(
    file: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Option<(TaskId, Vec<Problem>)> {
    let object = read_object(file, bytes).ok()?;
    let named = object.get("id").or_else(|| object.get("task_id"));
    let id = TaskId::parse(named?.as_str()?).ok()?;
    // Missing `created_at` or `submitted_by` are filled from history, never a problem here.
    let problems = task_from_object(file, object, limits, Origin::Unchecked).err()?;
    let everywhere = problems
        .iter()
        .all(|p| (p.field.as_deref()).is_some_and(|field| SAME_ON_EVERY_NODE.contains(&field)));
    everywhere.then_some((id, problems))
}

/// `id` (alias `task_id`), a valid task id.
fn read_id(r: &mut FieldReader) -> Option<TaskId> {
    let id = r.required("id", &["task_id"]);
    r.string("id", id).and_then(|id| match TaskId::parse(id) {
        Ok(id) => Some(id),
        Err(why) => {
            r.problem("id", why);
            None
        }
    })
}

/// `image`, a valid image reference.
fn read_image(r: &mut FieldReader, limits: &Limits) -> Option<String> {
    // Absent in the Python implementation's files: the reader's default image runs them.
    let image = r
        .take("image", &[])
        .unwrap_or_else(|| Value::String(limits.default_image.clone()));
    r.string("image", Some(image))
        .and_then(|image| match check_image(&image) {
            Ok(()) => Some(image),
            Err(why) => {
                r.problem("image", format!("{why} (in {image:?})"));
                None
            }
        })
}

/// `labels`, each one checked.
fn read_labels(r: &mut FieldReader) -> Vec<String> {
    let labels = r.take("labels", &[]);
    let labels = r.string_list("labels", labels).unwrap_or_default();
    for (i, label) in labels.iter().enumerate() {
        if let Err(why) = check_label(label) {
            r.problem(&format!("labels[{i}]"), why);
        }
    }
    labels
}

/// `network`: `none` or `bridge`.
fn read_network(r: &mut FieldReader) -> Option<Network> {
    let network = r.take("network", &[]);
    match r.string("network", network).as_deref() {
        None => None,
        Some("none") => Some(Network::None),
        Some("bridge") => Some(Network::Bridge),
        Some(other) => {
            r.problem(
                "network",
                format!("expected \"none\" or \"bridge\", got {other:?}"),
            );
            None
        }
    }
}

/// `depends_on`: valid task ids, none of them the task's own `id`.
fn read_dependencies(r: &mut FieldReader, id: Option<&TaskId>) -> Vec<TaskId> {
    let depends_on = r.take("depends_on", &[]);
    let depends_on = r.string_list("depends_on", depends_on).unwrap_or_default();
    let mut dependencies = Vec::with_capacity(depends_on.len());
    for (i, dep) in depends_on.into_iter().enumerate() {
        match TaskId::parse(dep) {
            Err(why) => r.problem(&format!("depends_on[{i}]"), why),
            Ok(dep) if id == Some(&dep) => r.problem(
                &format!("depends_on[{i}]"),
                "a task cannot depend on itself",
            ),
            Ok(dep) => dependencies.push(dep),
        }
    }
    dependencies
}

/// The replicated task's fields: the submitter's `replicas`, `quorum`, `max_instances`, the
/// worker-written `instances` and `instances_wanted`; `claimed` says the task has a `claim`, which
/// excludes `instances`.
fn read_replication(
    r: &mut FieldReader,
    claimed: bool,
) -> (ReplicaFields, Vec<Instance>, Option<u32>) {
    let replicas = r.take("replicas", &[]);
    let quorum = r.take("quorum", &[]);
    let max_instances = r.take("max_instances", &[]);
    let replica_fields = read_replica_fields(r, replicas, quorum, max_instances);
    let instances = r.take("instances", &[]);
    let instances_wanted = r.take("instances_wanted", &[]);
    let (instances, instances_wanted) =
        read_instances(r, &replica_fields, instances, instances_wanted);
    if claimed && !instances.is_empty() {
        r.problem(
            "instances",
            "a task has either a \"claim\" (run once) or \"instances\" (replicated), not both",
        );
    }
    (replica_fields, instances, instances_wanted)
}

/// `created_at` and `submitted_by` as the file gives them, else as `origin` says.
fn read_origin(
    r: &mut FieldReader,
    created_at: Option<Value>,
    submitted_by: Option<Value>,
    origin: Origin,
) -> (Option<String>, Option<String>) {
    let added = match (&created_at, &submitted_by, origin) {
        (Some(_), Some(_), _) => None,
        (_, _, Origin::Required) => {
            for (name, value) in [("created_at", &created_at), ("submitted_by", &submitted_by)] {
                if value.is_none() {
                    r.problem(name, "is required");
                }
            }
            None
        }
        (_, _, Origin::Unchecked) => Some(AddedBy {
            created_at: String::new(),
            submitted_by: String::new(),
        }),
        (_, _, Origin::Added(ask)) => match ask() {
            Ok(added) => Some(added),
            Err(why) => {
                let name = if created_at.is_none() {
                    "created_at"
                } else {
                    "submitted_by"
                };
                r.problem(
                    name,
                    format!("is missing, and the commit that added the file cannot tell: {why}"),
                );
                None
            }
        },
    };
    let created_at = match created_at {
        Some(v) => r.timestamp("created_at", Some(v)),
        None => added.as_ref().map(|a| a.created_at.clone()),
    };
    let submitted_by = match submitted_by {
        Some(v) => r.text("submitted_by", Some(v), MAX_SHORT_TEXT),
        None => added.map(|a| a.submitted_by),
    };
    (created_at, submitted_by)
}

fn read_command(r: &mut FieldReader, value: Option<Value>) -> Option<TaskCommand> {
    match value? {
        Value::String(s) => {
            if s.trim().is_empty() {
                r.problem("command", "must not be empty");
            } else if s.len() > MAX_COMMAND_BYTES {
                r.problem(
                    "command",
                    format!("must be at most {MAX_COMMAND_BYTES} bytes, got {}", s.len()),
                );
            } else if s.contains('\0') {
                r.problem("command", "must not contain a NUL character");
            } else {
                return Some(TaskCommand::Shell(s));
            }
            None
        }
        Value::Array(items) => {
            let mut argv = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) if !s.contains('\0') => argv.push(s),
                    other => {
                        r.problem(
                            &format!("command[{i}]"),
                            format!(
                                "expected a string without NUL characters, got {}",
                                show(&other)
                            ),
                        );
                        return None;
                    }
                }
            }
            let total: usize = argv.iter().map(|a| a.len() + 1).sum();
            if argv.first().is_none_or(|a| a.is_empty()) {
                r.problem(
                    "command",
                    "an argv array needs a non-empty first element (the program)",
                );
            } else if total > MAX_COMMAND_BYTES {
                r.problem(
                    "command",
                    format!("must be at most {MAX_COMMAND_BYTES} bytes in all, got {total}"),
                );
            } else {
                return Some(TaskCommand::Argv(argv));
            }
            None
        }
        other => {
            r.problem(
                "command",
                format!(
                    "expected a string (run with sh -c) or an array of strings (argv), got {}",
                    show(&other)
                ),
            );
            None
        }
    }
}

fn read_env(r: &mut FieldReader, value: Option<Value>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(map) = r.object("env", value) else {
        return env;
    };
    for (key, value) in map {
        let field = format!("env.{key}");
        if !check_env_name(&key) {
            r.problem(
                &field,
                "variable names are ASCII letters, digits and '_', not starting with a digit",
            );
            continue;
        }
        match value {
            Value::String(s) if !s.contains('\0') => {
                env.insert(key, s);
            }
            other => r.problem(
                &field,
                format!(
                    "expected a string without NUL characters, got {}",
                    show(&other)
                ),
            ),
        }
    }
    env
}

fn read_resources(r: &mut FieldReader, value: Option<Value>) -> Option<Resources> {
    let map = r.object("resources", value)?;
    let mut nested = FieldReader::new(r.file(), "resources.", map);
    let cpus = nested.take("cpus", &[]);
    let cpus = match cpus {
        None => None,
        Some(v) => match v.as_f64() {
            Some(c) if (MIN_CPUS..=1024.0).contains(&c) => Some(c),
            _ => {
                nested.problem(
                    "cpus",
                    format!(
                        "expected a number from {MIN_CPUS} (docker's minimum) to 1024, got {}",
                        show(&v)
                    ),
                );
                None
            }
        },
    };
    let memory = nested.take("memory", &[]);
    let memory = match memory {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= MIN_MEMORY_BYTES) => {
            Some(n.to_string())
        }
        Some(Value::String(s)) if check_memory(&s) => Some(s),
        Some(other) => {
            nested.problem(
                "memory",
                format!("expected bytes as an integer or a string like \"512m\" or \"2g\", at least 6m (docker's minimum), got {}", show(&other)),
            );
            None
        }
    };
    let problems = nested.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    ok.then_some(Resources { cpus, memory })
}

/// At most this many start failures in a task file (git-dgrid writes a handful at most).
const MAX_START_FAILURES: usize = 100;
/// The longest docker message kept per start failure.
pub const MAX_START_FAILURE_REASON: usize = 4096;

fn read_start_failures(r: &mut FieldReader, value: Option<Value>) -> Vec<StartFailure> {
    let Some(value) = value else {
        return Vec::new();
    };
    match serde_json::from_value::<Vec<StartFailure>>(value) {
        Ok(list) if list.len() > MAX_START_FAILURES => {
            r.problem(
                "start_failures",
                format!("at most {MAX_START_FAILURES} entries, got {}", list.len()),
            );
            Vec::new()
        }
        Ok(list) => {
            for (i, failure) in list.iter().enumerate() {
                if let Err(why) = check_id(&failure.node_id) {
                    r.problem(&format!("start_failures[{i}].node_id"), why);
                }
                if chrono::DateTime::parse_from_rfc3339(&failure.at).is_err() {
                    r.problem(
                        &format!("start_failures[{i}].at"),
                        "expected an RFC 3339 time",
                    );
                }
                if failure.reason.len() > MAX_START_FAILURE_REASON {
                    r.problem(
                        &format!("start_failures[{i}].reason"),
                        format!("must be at most {MAX_START_FAILURE_REASON} bytes"),
                    );
                }
            }
            list
        }
        Err(e) => {
            r.problem(
                "start_failures",
                format!("expected a list of {{\"node_id\", \"at\", \"reason\"}}: {e}"),
            );
            Vec::new()
        }
    }
}

fn read_claim(r: &mut FieldReader, value: Option<Value>) -> Option<Claim> {
    let map = r.object("claim", value)?;
    let mut c = FieldReader::new(r.file(), "claim.", map);
    let node_id = c.required("node_id", &[]);
    let node_id = c
        .string("node_id", node_id)
        .and_then(|n| match check_id(&n) {
            Ok(()) => Some(n),
            Err(why) => {
                c.problem("node_id", why);
                None
            }
        });
    let claimed_at = c.required("claimed_at", &[]);
    let claimed_at = c.timestamp("claimed_at", claimed_at);
    let lease = c.required("lease_expires_at", &[]);
    let lease = c.timestamp("lease_expires_at", lease);
    let attempt = c.required("attempt", &[]);
    let attempt = c.integer("attempt", attempt, 1, i64::from(Attempt::MAX));
    let problems = c.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    match (ok, node_id, claimed_at, lease, attempt) {
        (true, Some(node_id), Some(claimed_at), Some(lease_expires_at), Some(attempt)) => {
            Some(Claim {
                node_id,
                claimed_at,
                lease_expires_at,
                attempt: Attempt::new(attempt as u32).ok()?,
            })
        }
        _ => None,
    }
}

/// An armored SSH signature: checked for its shape only here; whether it verifies, and against
/// whom, is the worker's and `validate --allowed-signers`' question (`trust::verify`).
fn read_signature(r: &mut FieldReader, value: Option<Value>) -> Option<String> {
    let text = r.text("signature", value, MAX_SIGNATURE_BYTES)?;
    let trimmed = text.trim();
    if !(trimmed.starts_with("-----BEGIN SSH SIGNATURE-----")
        && trimmed.ends_with("-----END SSH SIGNATURE-----"))
    {
        r.problem(
            "signature",
            "expected an armored SSH signature (-----BEGIN SSH SIGNATURE----- …), as `git dgrid submit --sign` writes",
        );
        return None;
    }
    Some(text)
}

/// An ed25519 SSHSIG is about 300 bytes armored; RSA-4096 about 1,100.
const MAX_SIGNATURE_BYTES: usize = 8 * 1024;

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

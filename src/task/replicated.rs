//! Reading the fields of replicated tasks (`docs/ARCHITECTURE.md#quorum`): the submitter's
//! `replicas`, `quorum` and `max_instances`, the worker-written `instances` entries and
//! `instances_wanted`, and a result's `quorum` object. Every problem names its field, down to
//! `instances[3].attempt` or `quorum.votes[0].digest`, because these are hand-edited like the rest.

use super::ids::Attempt;
use super::model::{Instance, QuorumOutcome, Replicas, Status, TaskSpec, Vote};
use super::rules::{check_id, MAX_SHORT_TEXT};
use crate::fields::{show, FieldReader};
use crate::problem::Problem;
use serde_json::Value;

/// The most instances a task may ask for at first.
pub const MAX_REPLICAS: u32 = 9;
/// The most instances a task may issue in all (recruits after disagreements included).
pub const MAX_INSTANCES: u32 = 20;
/// An adaptive task run by a node without a record of valid results is replicated like this
/// (`quorum::Rule::of`). Defined here, not in `quorum`, because `quorum` reads tasks and the task
/// contract does not depend on `quorum`.
pub const ADAPTIVE_REPLICAS: u32 = 2;

/// The submitter's fields, as read.
pub struct ReplicaFields {
    pub replicas: Option<Replicas>,
    pub quorum: Option<u32>,
    pub max_instances: Option<u32>,
}

impl ReplicaFields {
    /// `replicas` as a count (adaptive counts as what it is run as without a record).
    fn count(&self) -> u32 {
        match self.replicas {
            None => 1,
            Some(Replicas::Fixed(n)) => n,
            Some(Replicas::Adaptive) => ADAPTIVE_REPLICAS,
        }
    }

    /// Whether the task is replicated at all (`quorum::Rule::of` is `Some`).
    fn replicated(&self) -> bool {
        self.count() > 1 || self.replicas == Some(Replicas::Adaptive)
    }

    /// `max_instances`, or its default.
    fn max_instances(&self) -> u32 {
        self.max_instances.unwrap_or(self.count() + 2)
    }
}

/// `replicas`, `quorum` and `max_instances`, checked against each other.
pub fn read_replica_fields(
    r: &mut FieldReader,
    replicas: Option<Value>,
    quorum: Option<Value>,
    max_instances: Option<Value>,
) -> ReplicaFields {
    let given = replicas.is_some();
    let replicas = match replicas {
        None => None,
        Some(Value::String(s)) if s == "adaptive" => Some(Replicas::Adaptive),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=u64::from(MAX_REPLICAS)).contains(&n) => {
                Some(Replicas::Fixed(n as u32))
            }
            _ => {
                r.problem(
                    "replicas",
                    format!(
                        "expected an integer from 1 to {MAX_REPLICAS} or \"adaptive\", got {}",
                        show(&v)
                    ),
                );
                None
            }
        },
    };
    let mut fields = ReplicaFields {
        replicas,
        quorum: None,
        max_instances: None,
    };
    // A `replicas` already reported wrong bounds nothing: no second problem from it.
    let unknown = given && fields.replicas.is_none();
    let count = i64::from(fields.count());
    let (most_quorum, least_max) = if unknown {
        (i64::from(MAX_REPLICAS), 1)
    } else {
        (count, count)
    };
    fields.quorum = match quorum {
        // An adaptive task's quorum is decided per run (1 alone, 2 with a check): a number given
        // here could only be misread, so it is refused rather than ignored.
        Some(_) if fields.replicas == Some(Replicas::Adaptive) => {
            r.problem(
                "quorum",
                "is chosen per run for \"replicas\": \"adaptive\" (a trusted node alone, else 2 of 2); leave it out",
            );
            None
        }
        q => r.integer("quorum", q, 1, most_quorum).map(|n| n as u32),
    };
    fields.max_instances = r
        .integer(
            "max_instances",
            max_instances,
            least_max,
            i64::from(MAX_INSTANCES),
        )
        .map(|n| n as u32);
    fields
}

/// `instances` and `instances_wanted`: entries read one by one, then checked as a whole (one
/// live entry per instance number and per node, numbers within `max_instances`).
pub fn read_instances(
    r: &mut FieldReader,
    fields: &ReplicaFields,
    instances: Option<Value>,
    wanted: Option<Value>,
) -> (Vec<Instance>, Option<u32>) {
    let max = fields.max_instances();
    let wanted = r
        .integer("instances_wanted", wanted, 1, i64::from(max))
        .map(|n| n as u32);
    if wanted.is_some() && !fields.replicated() {
        r.problem(
            "instances_wanted",
            "only a replicated task (\"replicas\" above 1, or \"adaptive\") wants instances",
        );
    }
    let Some(value) = instances else {
        return (Vec::new(), wanted);
    };
    let Value::Array(items) = value else {
        r.problem(
            "instances",
            format!("expected a list of instance entries, got {}", show(&value)),
        );
        return (Vec::new(), wanted);
    };
    if !fields.replicated() {
        r.problem(
            "instances",
            "only a replicated task (\"replicas\" above 1, or \"adaptive\") has instances",
        );
        return (Vec::new(), wanted);
    }
    let mut list = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        if let Some(entry) = read_instance(r, i, item, max) {
            list.push(entry);
        }
    }
    for (i, entry) in list.iter().enumerate() {
        if entry.dropped.is_some() {
            continue;
        }
        let earlier = &list[..i];
        let live = |e: &&Instance| e.dropped.is_none();
        if earlier
            .iter()
            .filter(live)
            .any(|e| e.instance == entry.instance)
        {
            r.problem(
                &format!("instances[{i}].instance"),
                format!(
                    "instance {} has another live entry; one node runs an instance at a time",
                    entry.instance
                ),
            );
        }
        if earlier
            .iter()
            .filter(live)
            .any(|e| e.node_id == entry.node_id)
        {
            r.problem(
                &format!("instances[{i}].node_id"),
                format!(
                    "{:?} has another live entry; no node runs two instances of one task",
                    entry.node_id
                ),
            );
        }
    }
    (list, wanted)
}

fn read_instance(r: &mut FieldReader, i: usize, value: Value, max: u32) -> Option<Instance> {
    let prefix = format!("instances[{i}].");
    let Value::Object(map) = value else {
        r.problem(
            &format!("instances[{i}]"),
            format!(
                "expected an instance entry (an object), got {}",
                show(&value)
            ),
        );
        return None;
    };
    let mut e = FieldReader::new(r.file(), &prefix, map);
    let instance = e.required("instance", &[]);
    let instance = e.integer("instance", instance, 1, i64::from(max));
    let round = e.required("round", &[]);
    let round = e.integer("round", round, 1, i64::from(MAX_INSTANCES));
    let node_id = e.required("node_id", &[]);
    let node_id = node(&mut e, "node_id", node_id);
    let claimed_at = e.required("claimed_at", &[]);
    let claimed_at = e.timestamp("claimed_at", claimed_at);
    let lease = e.required("lease_expires_at", &[]);
    let lease = e.timestamp("lease_expires_at", lease);
    let attempt = e.required("attempt", &[]);
    let attempt = e
        .integer("attempt", attempt, 1, i64::from(Attempt::MAX))
        .and_then(|n| Attempt::new(n as u32).ok());
    let commitment = e.take("commitment", &[]);
    let commitment = hex64(&mut e, "commitment", commitment);
    let sealed = e.take("sealed", &[]);
    let sealed = e.typed::<bool>("sealed", sealed, "true or false");
    let digest = e.take("digest", &[]);
    let digest = hex64(&mut e, "digest", digest);
    let salt = e.take("salt", &[]);
    let salt = hex64(&mut e, "salt", salt);
    let exit_code = match e.take("exit_code", &[]) {
        None | Some(Value::Null) => None,
        v => e.integer("exit_code", v, i64::from(i32::MIN), i64::from(u32::MAX)),
    };
    let status = e.take("status", &[]);
    let status = status_of(&mut e, status);
    let dropped = e.take("dropped", &[]);
    let dropped = e.text("dropped", dropped, MAX_SHORT_TEXT);
    if commitment.is_none() && (sealed == Some(true) || digest.is_some()) {
        e.problem(
            "commitment",
            "is required once an entry is sealed or revealed",
        );
    }
    let problems = e.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    match (ok, instance, round, node_id, claimed_at, lease, attempt) {
        (
            true,
            Some(instance),
            Some(round),
            Some(node_id),
            Some(claimed_at),
            Some(lease),
            Some(attempt),
        ) => Some(Instance {
            instance: instance as u32,
            round: round as u32,
            node_id,
            claimed_at,
            lease_expires_at: lease,
            attempt,
            commitment,
            sealed: sealed.unwrap_or(false),
            digest,
            salt,
            exit_code,
            status,
            dropped,
        }),
        _ => None,
    }
}

/// A result's `quorum` object. `status` is the result's: `no_quorum` and an agreed digest
/// exclude each other.
pub fn read_outcome(
    r: &mut FieldReader,
    value: Option<Value>,
    status: Option<Status>,
) -> Option<QuorumOutcome> {
    let Some(value) = value else {
        if status == Some(Status::NoQuorum) {
            r.problem(
                "quorum",
                "is required for status \"no_quorum\" (every instance's vote)",
            );
        }
        return None;
    };
    let map = r.object("quorum", Some(value))?;
    let mut q = FieldReader::new(r.file(), "quorum.", map);
    let replicas = q.required("replicas", &[]);
    let replicas = q.integer("replicas", replicas, 1, i64::from(MAX_INSTANCES));
    let digest = q.take("digest", &[]);
    let digest = match digest {
        None | Some(Value::Null) => None,
        v => hex64(&mut q, "digest", v),
    };
    let agreeing = q.required("agreeing", &[]);
    let agreeing = nodes(&mut q, "agreeing", agreeing);
    let dissenting = q.required("dissenting", &[]);
    let dissenting = nodes(&mut q, "dissenting", dissenting);
    let votes = q.required("votes", &[]);
    let votes = read_votes(&mut q, votes);
    let unchecked = q.take("unchecked", &[]);
    let unchecked = q.typed::<bool>("unchecked", unchecked, "true or false");
    match (status, &digest) {
        (Some(Status::NoQuorum), Some(_)) => q.problem(
            "digest",
            "a \"no_quorum\" result has no agreed digest; leave it out",
        ),
        // Other failures may carry the votes so far without an agreement (a task cancelled or
        // lost while its instances ran); a success is always an agreement.
        (Some(Status::Success), None) => q.problem(
            "digest",
            "is required: a \"success\" result of a replicated task names the digest its quorum agreed on",
        ),
        _ => {}
    }
    let problems = q.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    match (ok, replicas, agreeing, dissenting, votes) {
        (true, Some(replicas), Some(agreeing), Some(dissenting), Some(votes)) => {
            Some(QuorumOutcome {
                replicas: replicas as u32,
                digest,
                agreeing,
                dissenting,
                votes,
                unchecked: unchecked.unwrap_or(false),
            })
        }
        _ => None,
    }
}

fn read_votes(q: &mut FieldReader, value: Option<Value>) -> Option<Vec<Vote>> {
    let value = value?;
    let Value::Array(items) = value else {
        q.problem(
            "votes",
            format!("expected a list of votes, got {}", show(&value)),
        );
        return None;
    };
    let mut votes = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(map) = item else {
            q.problem(
                &format!("votes[{i}]"),
                format!("expected a vote (an object), got {}", show(&item)),
            );
            ok = false;
            continue;
        };
        let prefix = format!("{}votes[{i}].", q.field_name(""));
        let mut v = FieldReader::new(q.file(), &prefix, map);
        let node_id = v.required("node_id", &[]);
        let node_id = node(&mut v, "node_id", node_id);
        let instance = v.required("instance", &[]);
        let instance = v.integer("instance", instance, 1, i64::from(MAX_INSTANCES));
        let attempt = v.required("attempt", &[]);
        let attempt = v
            .integer("attempt", attempt, 1, i64::from(Attempt::MAX))
            .and_then(|n| Attempt::new(n as u32).ok());
        let digest = v.required("digest", &[]);
        let digest = hex64(&mut v, "digest", digest);
        let problems = v.finish();
        ok &= problems.is_empty();
        q.problems.extend(problems);
        if let (Some(node_id), Some(instance), Some(attempt), Some(digest)) =
            (node_id, instance, attempt, digest)
        {
            votes.push(Vote {
                node_id,
                instance: instance as u32,
                attempt,
                digest,
            });
        }
    }
    ok.then_some(votes)
}

/// A list of node ids.
fn nodes(r: &mut FieldReader, name: &'static str, value: Option<Value>) -> Option<Vec<String>> {
    let list = r.string_list(name, value)?;
    let mut ok = true;
    for (i, id) in list.iter().enumerate() {
        if let Err(why) = check_id(id) {
            r.problem(&format!("{name}[{i}]"), why);
            ok = false;
        }
    }
    ok.then_some(list)
}

fn node(r: &mut FieldReader, name: &'static str, value: Option<Value>) -> Option<String> {
    let id = r.string(name, value)?;
    match check_id(&id) {
        Ok(()) => Some(id),
        Err(why) => {
            r.problem(name, why);
            None
        }
    }
}

/// A sha256 in lower-case hex, as `quorum::digest`, `commitment` and salts are written.
fn hex64(r: &mut FieldReader, name: &'static str, value: Option<Value>) -> Option<String> {
    let s = r.string(name, value)?;
    if s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        Some(s)
    } else {
        r.problem(
            name,
            format!(
                "expected 64 lower-case hex digits (a sha256), got {}",
                show(&Value::String(s))
            ),
        );
        None
    }
}

fn status_of(r: &mut FieldReader, value: Option<Value>) -> Option<Status> {
    let s = r.string("status", value)?;
    match Status::ALL.iter().find(|(name, _)| *name == s) {
        Some((_, status)) => Some(*status),
        None => {
            let names: Vec<String> = Status::ALL.iter().map(|(n, _)| format!("{n:?}")).collect();
            r.problem(
                "status",
                format!("expected one of {}, got {s:?}", names.join(", ")),
            );
            None
        }
    }
}

/// What a task file may hold but should not: not errors (the task runs), said at `validate`,
/// in the pre-push hook and at `submit`.
pub fn task_warnings(file: &str, spec: &TaskSpec) -> Vec<Problem> {
    let mut warnings = Vec::new();
    let replicated = match spec.replicas {
        None => false,
        Some(Replicas::Fixed(n)) => n > 1,
        Some(Replicas::Adaptive) => true,
    };
    if replicated && !pinned(&spec.image) {
        warnings.push(Problem::field(
            file,
            "image",
            format!(
                "a replicated task should pin its image by digest (name@sha256:…): nodes that pull {:?} at different times may run different images and disagree",
                spec.image
            ),
        ));
    }
    warnings.extend(super::secret_fields::env_warnings(file, spec));
    warnings
}

fn pinned(image: &str) -> bool {
    image.contains("@sha256:")
}

#[cfg(test)]
#[path = "replicated_tests.rs"]
mod tests;

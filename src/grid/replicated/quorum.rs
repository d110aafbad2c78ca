//! The replicated transitions over one in-progress file (`"replicas": N`): add an entry
//! (claim), renew my entry's lease, land my result as a commitment, seal, reveal, settle, recruit,
//! fail as `no_quorum`, drop a dead node's entry (reap), remove my entry (release). The worker's
//! transition dispatches in one place (`cycle_kind::HeldKind`): whatever touches a task whose
//! `quorum::Rule::of` is `Some` comes here, and a plain task never does. See `crate::quorum` and `docs/ARCHITECTURE.md#quorum`.

use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::grid::replicated::quorum_adaptive;
use crate::grid::rules::DEFAULT_MAX_ATTEMPTS;
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::quorum::{self, Assessment, NextInstance, Rule};
use crate::task::{
    Attempt, Instance, Limits, QuorumOutcome, Status, TaskResult, TaskSpec, Vote, ADAPTIVE_REPLICAS,
};
use crate::time::rfc3339;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// Why an entry was dropped when its reveal does not match its commitment (an invalid vote).
pub const REVEAL_MISMATCH: &str = "reveal does not match its commitment";

/// How many instances the task wants now (`quorum::wanted`).
pub fn wanted(spec: &TaskSpec, rule: &Rule) -> u32 {
    quorum::wanted(spec, rule)
}

/// The verdict on the task's entries (`quorum::assess`).
pub fn assess(spec: &TaskSpec, rule: &Rule) -> Assessment {
    quorum::assess(rule, wanted(spec, rule), &spec.instances)
}

/// The replicated in-progress task `id`: its file, spec and rule. `None` for anything else (a
/// plain task, a file that does not parse, a task not in progress).
pub fn in_progress<'s>(
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    id: &str,
    limits: &Limits,
) -> Option<(&'s TaskRef, TaskSpec, Rule)> {
    let task = snapshot.places(id).find(|t| t.state == State::InProgress)?;
    let spec = snapshot::load_spec(repo, task, limits).ok()?;
    let rule = Rule::of(&spec)?;
    Some((task, spec, rule))
}

/// The index of `node`'s live entry for `attempt`.
pub fn live_entry(spec: &TaskSpec, node: &str, attempt: Attempt) -> Option<usize> {
    spec.instances
        .iter()
        .position(|e| e.dropped.is_none() && e.node_id == node && e.attempt == attempt)
}

/// Whether `node` has a live entry in `spec` (any attempt): its instance still runs there.
pub fn holds_live_entry(spec: &TaskSpec, node: &str) -> bool {
    spec.instances
        .iter()
        .any(|e| e.dropped.is_none() && e.node_id == node)
}

/// Whether `node` has an entry, live or dropped: one node never runs two instances of a task.
pub fn has_entry(spec: &TaskSpec, node: &str) -> bool {
    quorum::has_entry(&spec.instances, node)
}

/// The attempt `node` runs `spec` with, as claimed: its entry's for a replicated task.
pub fn claimed_attempt(spec: &TaskSpec, node: &str) -> Attempt {
    match &spec.claim {
        Some(claim) => claim.attempt,
        None => spec
            .instances
            .iter()
            .rev()
            .find(|e| e.dropped.is_none() && e.node_id == node)
            .map_or(Attempt::FIRST, |e| e.attempt),
    }
}

/// The entry the next claim of `spec` gets (`quorum::next_instance`): `None` when no instance is
/// open, or the open one has used its last attempt (its take-back failed the task as lost).
fn next_entry(spec: &TaskSpec, rule: &Rule) -> Option<(u32, Attempt, u32)> {
    let max_attempts = spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    match quorum::next_instance(rule, wanted(spec, rule), &spec.instances, max_attempts)? {
        NextInstance::Issue {
            instance,
            attempt,
            round,
        } => Some((instance, attempt, round)),
        NextInstance::Exhausted { .. } => None,
    }
}

/// Adds `node`'s entry to `spec` (a queued replicated task, or one in progress with an open
/// slot): the lowest instance number without a live entry, its attempts counted per instance.
/// `false` when no instance is open to a claim.
pub fn add_entry(spec: &mut TaskSpec, rule: &Rule, node: &str, now: &str, expires: &str) -> bool {
    // Entries that do not count leave their numbers to the claim (and the file stays valid:
    // one live entry per number).
    for (i, why) in quorum::not_counted(&spec.instances, wanted(spec, rule)) {
        spec.instances[i].dropped = Some(why.to_string());
    }
    let Some((instance, attempt, round)) = next_entry(spec, rule) else {
        return false;
    };
    spec.claim = None;
    spec.attempts = None;
    spec.instances.push(Instance {
        instance,
        round,
        node_id: node.to_string(),
        claimed_at: now.to_string(),
        lease_expires_at: expires.to_string(),
        attempt,
        commitment: None,
        sealed: false,
        digest: None,
        salt: None,
        exit_code: None,
        status: None,
        dropped: None,
    });
    true
}

/// Whether node `me` may add an entry to this in-progress replicated task now.
pub fn open_to(spec: &TaskSpec, me: &str) -> bool {
    let Some(rule) = Rule::of(spec) else {
        return false;
    };
    !has_entry(spec, me)
        && matches!(assess(spec, &rule), Assessment::Collecting { open } if open > 0)
}

/// What one transition wrote for replicated tasks, beside its edits.
#[derive(Default)]
pub struct Effects {
    pub edits: Vec<Edit>,
    pub summary: Vec<String>,
    /// (node, valid) for each vote of a task settled in this transition: the nodes' reputations.
    pub votes: Vec<(String, bool)>,
}

/// Where my result stands after the transition.
#[derive(Debug, PartialEq, Eq)]
pub enum Landed {
    /// Committed or revealed, not settled: the worker keeps it, renews its lease, sends it again.
    Awaiting,
    /// The task finished in this transition (settled by me, or failed as `no_quorum`).
    Settled,
    /// The file holds no live entry of mine for this attempt (dropped, released, never mine).
    NotMine,
}

/// The context of one transition: who, the reveal key, and the lease it writes.
#[derive(Clone)]
pub struct Ctx<'a> {
    pub me: &'a str,
    pub reveal_key: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires: String,
    /// For an adaptive task run alone: the commit its check is drawn from, once there is one
    /// (`quorum_adaptive::draw_commit`), and this node's run of valid results.
    pub draw: Option<String>,
    pub consecutive_valid: u64,
}

/// What a replicated transition makes of a task's file.
#[derive(Debug)]
pub enum Next {
    /// The file stays in progress, as this (`changed`: it must be written).
    InProgress { spec: Box<TaskSpec>, changed: bool },
    /// The task finished: its result, in this state.
    Finished(State, Box<TaskResult>),
}

impl Next {
    /// The edits that write it over `task`'s file.
    pub fn edits(self, task: &TaskRef) -> Vec<Edit> {
        match self {
            Next::InProgress { changed: false, .. } => Vec::new(),
            Next::InProgress { spec, .. } => vec![Edit::Write {
                path: task.path.clone(),
                content: spec.to_json(),
            }],
            Next::Finished(state, result) => Edit::move_file(
                &task.path,
                layout::task_path(state, &result.task_id),
                result.to_json(),
            )
            .into(),
        }
    }
}

/// My `result` for a replicated task in progress: lands its commitment, reveals it once sealed,
/// and does whatever the task's state calls for (seal, settle, recruit, `no_quorum`).
pub fn record(
    task: &TaskRef,
    spec: TaskSpec,
    rule: &Rule,
    result: &TaskResult,
    ctx: &Ctx,
    fx: &mut Effects,
) -> Landed {
    match step(spec, rule, result, ctx, fx) {
        None => Landed::NotMine,
        Some(next) => {
            let landed = match next {
                Next::InProgress { .. } => Landed::Awaiting,
                Next::Finished(..) => Landed::Settled,
            };
            fx.edits.extend(next.edits(task));
            landed
        }
    }
}

/// [`record`] on the spec alone: `None` when the file holds no live entry of mine for the
/// result's attempt.
pub fn step(
    mut spec: TaskSpec,
    rule: &Rule,
    result: &TaskResult,
    ctx: &Ctx,
    fx: &mut Effects,
) -> Option<Next> {
    let attempt = result.attempt();
    let i = live_entry(&spec, ctx.me, attempt)?;
    let before = spec.clone();
    let salt = quorum::salt(ctx.reveal_key, &spec.id, attempt);
    let digest = quorum::result_digest(result);
    let entry = &mut spec.instances[i];
    entry.lease_expires_at = ctx.expires.clone();
    if entry.commitment.is_none() {
        entry.commitment = Some(quorum::commitment(ctx.me, &salt, &digest));
        fx.summary.push(format!("commit {}", spec.id));
    }
    let mine = Mine {
        result,
        salt,
        digest,
    };
    Some(advance(spec, &before, rule, Some(&mine), ctx, fx))
}

/// What only the node that ran an instance has: its full result and the salt of its commitment.
struct Mine<'a> {
    result: &'a TaskResult,
    salt: String,
    digest: String,
}

/// Applies what the task's assessment calls for until it calls for nothing this node can do.
fn advance(
    mut spec: TaskSpec,
    before: &TaskSpec,
    rule: &Rule,
    mine: Option<&Mine>,
    ctx: &Ctx,
    fx: &mut Effects,
) -> Next {
    drop_not_counted(&mut spec, rule, fx);
    // Each round of the loop changes the file (a seal, a reveal) or leaves it: bounded.
    for _ in 0..4 {
        let revealed = mine.is_some_and(|m| reveal(&mut spec, ctx.me, m, fx));
        match assess(&spec, rule) {
            Assessment::Seal(indices) => {
                let indices = sealable(&spec, rule, indices);
                if indices.is_empty() {
                    break;
                }
                for i in indices {
                    spec.instances[i].sealed = true;
                }
                fx.summary.push(format!("seal {}", spec.id));
            }
            Assessment::Decided {
                digest,
                agreeing,
                dissenting,
            } => {
                let Some(m) =
                    mine.filter(|m| m.digest == digest && agreeing.iter().any(|a| a == ctx.me))
                else {
                    break; // an agreeing node settles: it holds the full result
                };
                let mut unchecked = false;
                if quorum_adaptive::is_solo(&spec, rule) {
                    let Some(draw) = &ctx.draw else {
                        break; // the draw waits for another author's commit after the reveal
                    };
                    if quorum::adaptive::check_drawn(&spec.id, draw, ctx.consecutive_valid) {
                        spec.instances_wanted = Some(ADAPTIVE_REPLICAS);
                        fx.summary.push(format!("check {}", spec.id));
                        break;
                    }
                    unchecked = true;
                }
                let outcome = Settlement {
                    digest,
                    agreeing,
                    dissenting,
                    unchecked,
                };
                let (state, result) = settle(&spec, rule, m.result, outcome, fx);
                return Next::Finished(state, Box::new(result));
            }
            Assessment::Recruit { wanted } => {
                if spec.instances_wanted != Some(wanted) {
                    spec.instances_wanted = Some(wanted);
                    fx.summary.push(format!("recruit {}", spec.id));
                }
                break;
            }
            Assessment::NoQuorum => {
                let result = no_quorum(&spec, rule, ctx, fx);
                return Next::Finished(State::Failed, Box::new(result));
            }
            Assessment::Collecting { .. } | Assessment::Revealing if revealed => {}
            Assessment::Collecting { .. } | Assessment::Revealing => break,
        }
    }
    let changed = spec != *before;
    Next::InProgress {
        spec: Box::new(spec),
        changed,
    }
}

/// The entries of a seal this transition sets: only those a claim could have made (numbered
/// within what the task wants, the first live entry of their number and of their node). An entry
/// pushed by hand beside them, e.g. to commit to a digest copied from the reveals, is never
/// sealed, so it never votes.
pub(super) fn sealable(spec: &TaskSpec, rule: &Rule, indices: Vec<usize>) -> Vec<usize> {
    let wanted = wanted(spec, rule);
    let first = |i: usize| {
        let e = &spec.instances[i];
        !spec.instances[..i]
            .iter()
            .any(|o| quorum::is_live(o) && (o.instance == e.instance || o.node_id == e.node_id))
    };
    indices
        .into_iter()
        .filter(|&i| spec.instances[i].instance <= wanted && first(i))
        .collect()
}

/// Reveals my entry if it is sealed and not yet revealed; a reveal that does not match its
/// commitment (the key changed) drops the entry, an invalid vote.
fn reveal(spec: &mut TaskSpec, me: &str, mine: &Mine, fx: &mut Effects) -> bool {
    let Some(i) = live_entry(spec, me, mine.result.attempt()) else {
        return false;
    };
    let entry = &mut spec.instances[i];
    if !entry.sealed || entry.digest.is_some() {
        return false;
    }
    entry.digest = Some(mine.digest.clone());
    entry.salt = Some(mine.salt.clone());
    entry.exit_code = mine.result.exit_code;
    entry.status = Some(mine.result.status);
    if !quorum::reveal_matches(entry) {
        entry.dropped = Some(REVEAL_MISMATCH.to_string());
    }
    fx.summary.push(format!("reveal {}", spec.id));
    true
}

/// Every valid vote of `spec` (`quorum::votes`).
pub fn votes(spec: &TaskSpec, rule: &Rule) -> Vec<Vote> {
    quorum::votes(&spec.instances, wanted(spec, rule))
}

/// Drops the live entries that do not count (`quorum::not_counted`: an entry no claim issues,
/// a commitment after its round's seal), so that the file says what the verdict already does
/// and a claim may take their instance numbers. `true` when one was dropped.
fn drop_not_counted(spec: &mut TaskSpec, rule: &Rule, fx: &mut Effects) {
    let dropped = quorum::not_counted(&spec.instances, wanted(spec, rule));
    for (i, why) in &dropped {
        spec.instances[*i].dropped = Some(why.to_string());
    }
    if !dropped.is_empty() {
        fx.summary
            .push(format!("drop uncounted entries of {}", spec.id));
    }
}

/// The task as its result keeps it: without the entries (the votes say what counted).
pub(super) fn finished_spec(spec: &TaskSpec) -> TaskSpec {
    let mut task = spec.clone();
    task.claim = None;
    task.instances.clear();
    task.instances_wanted = None;
    task
}

/// How a task settles: the agreed digest, who agreed and who did not, and whether an adaptive
/// task run alone was left unchecked by its draw.
struct Settlement {
    digest: String,
    agreeing: Vec<String>,
    dissenting: Vec<String>,
    unchecked: bool,
}

fn settle(
    spec: &TaskSpec,
    rule: &Rule,
    result: &TaskResult,
    outcome: Settlement,
    fx: &mut Effects,
) -> (State, TaskResult) {
    let Settlement {
        digest,
        agreeing,
        dissenting,
        unchecked,
    } = outcome;
    let votes = votes(spec, rule);
    // As `quorum::reputation` recomputes it from the result: agreeing valid, dissenting (a
    // reveal that did not match its commitment included) invalid.
    fx.votes.extend(agreeing.iter().map(|n| (n.clone(), true)));
    fx.votes
        .extend(dissenting.iter().map(|n| (n.clone(), false)));
    let mut out = result.clone();
    out.task = Some(finished_spec(spec));
    out.quorum = Some(QuorumOutcome {
        replicas: rule.replicas,
        digest: Some(digest),
        agreeing,
        dissenting,
        votes,
        unchecked,
    });
    let state = if result.status == Status::Success {
        State::Completed
    } else {
        State::Failed
    };
    fx.summary.push(format!("settle {}", spec.id));
    (state, out)
}

/// Fails the task as `no_quorum`: every instance was spent without agreement.
fn no_quorum(spec: &TaskSpec, rule: &Rule, ctx: &Ctx, fx: &mut Effects) -> TaskResult {
    let votes = votes(spec, rule);
    let digests: HashSet<&str> = votes.iter().map(|v| v.digest.as_str()).collect();
    let now = rfc3339(ctx.now);
    let result = TaskResult {
        task_id: spec.id.clone(),
        node_id: ctx.me.to_string(),
        exit_code: None,
        stdout: String::new(),
        stderr: format!(
            "no quorum: {} instance(s) issued of at most {}, {} vote(s) over {} digest(s), {} needed to agree",
            spec.instances.iter().map(|e| e.instance).collect::<HashSet<_>>().len(),
            rule.max_instances,
            votes.len(),
            digests.len(),
            rule.quorum
        ),
        timestamp: now.clone(),
        status: Status::NoQuorum,
        started_at: spec.instances.first().map(|e| e.claimed_at.clone()),
        finished_at: Some(now),
        duration_ms: None,
        recorded_attempt: None,
        stdout_info: None,
        stderr_info: None,
        task: Some(finished_spec(spec)),
        late_results: Vec::new(),
        signed_by: None,
        quorum: Some(QuorumOutcome {
            replicas: rule.replicas,
            digest: None,
            agreeing: Vec::new(),
            dissenting: Vec::new(),
            votes,
            unchecked: false,
        }),
    };
    fx.summary.push(format!("no_quorum {}", spec.id));
    result
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;

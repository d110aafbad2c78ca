//! The replicated transitions over one in-progress file (`"replicas": N`, issue 14): add an entry
//! (claim), renew my entry's lease, land my result as a commitment, seal, reveal, settle, recruit,
//! fail as `no_quorum`, drop a dead node's entry (reap), remove my entry (release). `cycle::plan`
//! stays the dispatcher: whatever touches a task whose `quorum::Rule::of` is `Some` comes here,
//! and a plain task never does. See `crate::quorum` and `docs/ARCHITECTURE.md#quorum`.

use crate::grid::claim::rfc3339;
use crate::grid::cycle::DEFAULT_MAX_ATTEMPTS;
pub use crate::grid::quorum_assess::{assess, counted, vote, wanted};
use crate::grid::reap::{self, ReapPolicy};
use crate::grid::snapshot::{self, Snapshot, TaskRef};
use crate::layout::{self, State};
use crate::node::{NodeRecord, Reputation};
use crate::odb::Edit;
use crate::quorum::{self, Assessment, Rule};
use crate::task::{Attempt, Instance, Limits, QuorumOutcome, Status, TaskResult, TaskSpec, Vote};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// Why an entry was dropped when its reveal does not match its commitment (an invalid vote).
pub const REVEAL_MISMATCH: &str = "reveal does not match its commitment";

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
    spec.instances.iter().any(|e| e.node_id == node)
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

/// The salt of an instance's commitment: secret until revealed (it comes from the node's
/// reveal key), and the same for the same instance after a restart (the key is kept).
pub fn salt(reveal_key: &[u8], task_id: &str, attempt: Attempt) -> String {
    let mut bytes = reveal_key.to_vec();
    bytes.extend_from_slice(format!("\n{task_id}\n{}\n", attempt.number()).as_bytes());
    quorum::sha256_hex(&bytes)
}

/// The digest of a result: its exit code and the sha256 of its *full* stdout.
pub fn result_digest(result: &TaskResult) -> String {
    let stdout = result.stdout_info.as_ref().map_or_else(
        || quorum::sha256_hex(result.stdout.as_bytes()),
        |info| info.sha256.clone(),
    );
    quorum::digest(result.exit_code, &stdout)
}

/// Adds `node`'s entry to `spec` (a queued replicated task, or one in progress with an open
/// slot): the lowest instance number without a live entry, its attempts counted per instance.
pub fn add_entry(spec: &mut TaskSpec, rule: &Rule, node: &str, now: &str, expires: &str) {
    let wanted = wanted(spec, rule);
    let live = |n: u32| {
        spec.instances
            .iter()
            .any(|e| e.instance == n && e.dropped.is_none())
    };
    let number = (1..=wanted.max(1))
        .find(|&n| !live(n))
        .unwrap_or(wanted + 1);
    let used = spec
        .instances
        .iter()
        .filter(|e| e.instance == number)
        .map(|e| e.attempt.number())
        .max()
        .unwrap_or(0);
    // A re-issue keeps its instance's round; a recruit starts a round once every live entry of
    // the last one has revealed, and joins it otherwise.
    let top = spec.instances.iter().map(|e| e.round).max().unwrap_or(0);
    let round = match spec.instances.iter().find(|e| e.instance == number) {
        Some(e) => e.round,
        None if top == 0 => 1,
        None if number > rule.replicas
            && spec
                .instances
                .iter()
                .filter(|e| e.dropped.is_none())
                .all(|e| e.digest.is_some()) =>
        {
            top + 1
        }
        None => top,
    };
    spec.claim = None;
    spec.attempts = None;
    spec.instances.push(Instance {
        instance: number,
        round,
        node_id: node.to_string(),
        claimed_at: now.to_string(),
        lease_expires_at: expires.to_string(),
        attempt: Attempt::after_used(used),
        commitment: None,
        sealed: false,
        digest: None,
        salt: None,
        exit_code: None,
        status: None,
        dropped: None,
    });
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
pub struct Ctx<'a> {
    pub me: &'a str,
    pub reveal_key: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires: String,
}

/// What a replicated transition makes of a task's file.
#[derive(Debug)]
pub enum Next {
    /// The file stays in progress, as this (`changed`: it must be written).
    InProgress { spec: TaskSpec, changed: bool },
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
    let salt = salt(ctx.reveal_key, &spec.id, attempt);
    let digest = result_digest(result);
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
    // Each round of the loop changes the file (a seal, a reveal) or leaves it: bounded.
    for _ in 0..4 {
        let revealed = mine.is_some_and(|m| reveal(&mut spec, ctx.me, m, fx));
        match assess(&spec, rule) {
            Assessment::Seal(indices) => {
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
                let (state, result) =
                    settle(&spec, rule, m.result, digest, agreeing, dissenting, fx);
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
    Next::InProgress { spec, changed }
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

/// Every counted vote of `spec`.
pub fn votes(spec: &TaskSpec, rule: &Rule) -> Vec<Vote> {
    counted(spec, rule)
        .into_iter()
        .filter_map(|i| {
            let e = &spec.instances[i];
            vote(e).map(|digest| Vote {
                node_id: e.node_id.clone(),
                instance: e.instance,
                attempt: e.attempt,
                digest: digest.to_string(),
            })
        })
        .collect()
}

/// The task as its result keeps it: without the entries (the votes say what counted).
fn finished_spec(spec: &TaskSpec) -> TaskSpec {
    let mut task = spec.clone();
    task.claim = None;
    task.instances.clear();
    task.instances_wanted = None;
    task
}

/// Writes my result as the task's, with its quorum object, and the votes' reputations.
fn settle(
    spec: &TaskSpec,
    rule: &Rule,
    result: &TaskResult,
    digest: String,
    agreeing: Vec<String>,
    dissenting: Vec<String>,
    fx: &mut Effects,
) -> (State, TaskResult) {
    let votes = votes(spec, rule);
    for v in &votes {
        fx.votes.push((v.node_id.clone(), v.digest == digest));
    }
    for e in &spec.instances {
        if e.dropped.as_deref() == Some(REVEAL_MISMATCH) {
            fx.votes.push((e.node_id.clone(), false));
        }
    }
    let mut out = result.clone();
    out.task = Some(finished_spec(spec));
    out.quorum = Some(QuorumOutcome {
        replicas: rule.replicas,
        digest: Some(digest),
        agreeing,
        dissenting,
        votes,
        unchecked: false,
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

/// Renews my entry's lease (a running instance); `false` when the file holds no live entry of
/// mine for `attempt` (the claim is lost: stop the container).
pub fn renew(
    task: &TaskRef,
    mut spec: TaskSpec,
    me: &str,
    attempt: Attempt,
    expires: &str,
    fx: &mut Effects,
) -> bool {
    let Some(i) = live_entry(&spec, me, attempt) else {
        return false;
    };
    spec.instances[i].lease_expires_at = expires.to_string();
    fx.edits.push(Edit::Write {
        path: task.path.clone(),
        content: spec.to_json(),
    });
    true
}

/// Removes my live entry for `attempt` (a release: shutdown, docker trouble): the attempt is not
/// used, and this node may claim the task again later. `false` when there is none.
pub fn release(
    task: &TaskRef,
    mut spec: TaskSpec,
    me: &str,
    attempt: Attempt,
    fx: &mut Effects,
) -> bool {
    let Some(i) = live_entry(&spec, me, attempt) else {
        return false;
    };
    spec.instances.remove(i);
    fx.edits.push(Edit::Write {
        path: task.path.clone(),
        content: spec.to_json(),
    });
    fx.summary.push(format!("release {}", spec.id));
    true
}

/// A replicated in-progress task with live entries a transition takes back (`reap` judges each
/// entry as it judges a single claim).
pub struct TakeBack<'s> {
    pub task: &'s TaskRef,
    pub spec: TaskSpec,
    pub rule: Rule,
    pub entries: Vec<usize>,
}

/// The replicated in-progress tasks (not in `skip`) with entries a transition of `me` takes back.
pub fn to_take_back<'s>(
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    me: &str,
    held: &[String],
    limits: &Limits,
    reaper: &mut dyn ReapPolicy,
    skip: &HashSet<String>,
) -> Vec<TakeBack<'s>> {
    let mut out = Vec::new();
    for task in snapshot.in_state(State::InProgress) {
        if skip.contains(&task.id) {
            continue;
        }
        let Ok(spec) = snapshot::load_spec(repo, task, limits) else {
            continue;
        };
        let Some(rule) = Rule::of(&spec) else {
            continue;
        };
        let entries: Vec<usize> = spec
            .instances
            .iter()
            .enumerate()
            .filter(|(_, e)| e.dropped.is_none())
            .filter(|(_, e)| reap::may_take_back(me, held, snapshot, task, &e.as_claim(), reaper))
            .map(|(i, _)| i)
            .collect();
        if !entries.is_empty() {
            out.push(TakeBack {
                task,
                spec,
                rule,
                entries,
            });
        }
    }
    out
}

/// How a taken-back entry ends.
pub enum Ending {
    /// Removed without using its attempt (this process never ran it).
    Removed,
    /// Dropped as lost with its node; the slot reopens.
    Dropped,
}

/// Takes back `entries` of `spec` (each with how it ends) over `task`'s file.
pub fn take_back(
    task: &TaskRef,
    spec: TaskSpec,
    entries: &[(usize, Ending)],
    now: DateTime<Utc>,
    fx: &mut Effects,
) {
    fx.edits
        .extend(take_back_spec(spec, entries, now).edits(task));
}

/// [`take_back`] on the spec alone: a dropped entry stays (history, and its instance's attempts);
/// an instance that used its last attempt fails the task as lost, as a single task would.
pub fn take_back_spec(mut spec: TaskSpec, entries: &[(usize, Ending)], now: DateTime<Utc>) -> Next {
    let max = spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let mut lost = None;
    let mut removed = Vec::new();
    for (i, ending) in entries {
        let entry = &mut spec.instances[*i];
        match ending {
            Ending::Removed => removed.push(*i),
            Ending::Dropped => {
                entry.dropped = Some(format!("node {} stopped heartbeating", entry.node_id));
                if entry.attempt.used() >= max && lost.is_none() {
                    lost = Some(entry.as_claim());
                }
            }
        }
    }
    removed.sort_unstable();
    for i in removed.into_iter().rev() {
        spec.instances.remove(i);
    }
    match lost {
        Some(claim) => {
            let mut result = crate::grid::cycle::lost_result(&spec, &claim, now);
            result.task = Some(finished_spec(&spec));
            Next::Finished(State::Failed, Box::new(result))
        }
        None => Next::InProgress {
            spec,
            changed: true,
        },
    }
}

/// Whether a finished task's result counts my vote for `attempt` (settled with it: recorded).
pub fn among_votes(result: &TaskResult, me: &str, attempt: Attempt) -> bool {
    result.quorum.as_ref().is_some_and(|q| {
        q.votes
            .iter()
            .any(|v| v.node_id == me && v.attempt == attempt)
    })
}

/// `reputation` with `votes` of `node` applied (agreeing: valid; dissenting or a reveal that did
/// not match: invalid, and the run of valid ones starts over).
pub fn updated(
    reputation: Option<Reputation>,
    node: &str,
    votes: &[(String, bool)],
) -> Option<Reputation> {
    let mine: Vec<bool> = votes
        .iter()
        .filter(|(n, _)| n == node)
        .map(|(_, v)| *v)
        .collect();
    if mine.is_empty() {
        return reputation;
    }
    let mut r = reputation.unwrap_or_default();
    for valid in mine {
        if valid {
            r.valid += 1;
            r.consecutive_valid += 1;
        } else {
            r.invalid += 1;
            r.consecutive_valid = 0;
        }
    }
    Some(r)
}

/// The node records (other than `me`'s) whose reputation this transition's votes change, as edits.
pub fn reputation_edits(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
    votes: &[(String, bool)],
) -> Vec<Edit> {
    let nodes: BTreeMap<&str, ()> = votes
        .iter()
        .filter(|(n, _)| n != me)
        .map(|(n, _)| (n.as_str(), ()))
        .collect();
    let mut edits = Vec::new();
    for node in nodes.keys() {
        // A node without a readable record keeps none: the reputation is a cache, recomputable
        // from the results' quorum objects.
        let Some(mut record) = snapshot
            .nodes
            .iter()
            .find(|n| n.id == *node)
            .and_then(|n| snapshot::load_node(repo, n))
        else {
            continue;
        };
        record.reputation = updated(record.reputation, node, votes);
        edits.push(Edit::Write {
            path: layout::node_path(node),
            content: record.to_json(),
        });
    }
    edits
}

/// `me`'s reputation as the snapshot's record of it holds it: a heartbeat never overwrites it.
pub fn recorded_reputation(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
) -> Option<Reputation> {
    snapshot
        .nodes
        .iter()
        .find(|n| n.id == me)
        .and_then(|n| snapshot::load_node(repo, n))
        .and_then(|r: NodeRecord| r.reputation)
}

/// Whether a transition is due for these results awaiting settlement (the worker's cheap look):
/// my entry is to reveal, the task is to seal, settle (by me, agreeing), recruit or fail as
/// `no_quorum`, or it left `in_progress` (settled elsewhere, cancelled) or dropped my entry.
pub fn due(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    me: &str,
    results: &[TaskResult],
    limits: &Limits,
) -> bool {
    results.iter().any(|result| {
        let Some((_, spec, rule)) = in_progress(repo, snapshot, &result.task_id, limits) else {
            return true;
        };
        let Some(i) = live_entry(&spec, me, result.attempt()) else {
            return true;
        };
        let entry = &spec.instances[i];
        if entry.commitment.is_none() || (entry.sealed && entry.digest.is_none()) {
            return true;
        }
        match assess(&spec, &rule) {
            Assessment::Seal(_) | Assessment::Recruit { .. } | Assessment::NoQuorum => true,
            Assessment::Decided { digest, .. } => entry.digest.as_deref() == Some(digest.as_str()),
            Assessment::Collecting { .. } | Assessment::Revealing => false,
        }
    })
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;

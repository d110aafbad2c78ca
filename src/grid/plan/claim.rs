//! The claim transition: move up to N queued tasks to in_progress for a node, writing the claim
//! (node, times, attempt) into each. Which tasks: highest priority first, then oldest, with a random
//! pick among the front of the line so that racing claimers rarely want the same file.

use crate::grid::engine::transact::Change;
use crate::grid::policy::admission::Admission;
use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::grid::replicated::quorum;
use crate::grid::replicated::quorum_adaptive;
use crate::grid::replicated::quorum_upkeep;
use crate::grid::rules::DEFAULT_MAX_ATTEMPTS;
use crate::layout::{self, State};
use crate::odb::Edit;
use crate::problem::Problem;
use crate::quorum::Rule;
use crate::task::{Claim, Limits, TaskId, TaskSpec, MAX_FILE_BYTES};
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Request {
    pub node_id: String,
    pub max: usize,
    /// Tasks to claim beyond `max` to run later (claim-ahead): only of the highest priority
    /// queued, so that a worker never hoards lower-priority tasks while higher ones wait.
    pub ahead: usize,
    pub lease: Duration,
    /// Labels this node has; a task's labels must all be among them.
    pub labels: Vec<String>,
    /// Whether this node runs tasks that ask for `"network": "bridge"`.
    pub allow_network: bool,
    /// The operator's gate: tasks it refuses stay queued, named once in the log.
    pub admission: Arc<Admission>,
}

/// Kept for `cycle.rs` and `replicated/quorum.rs` until the rewrite of the transition names
/// `crate::time::rfc3339` itself; every other file does.
pub(crate) use crate::time::rfc3339;

pub fn plan(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    request: &Request,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Option<Change<Vec<TaskSpec>>>> {
    let picked = select_from(None, repo, snapshot, request, limits, now, &HashSet::new());
    if picked.is_empty() {
        return Ok(None);
    }
    let mut edits = Vec::new();
    let mut claimed = Vec::new();
    for (spec, from) in picked {
        edits.extend(claim_edits(&spec, &from));
        claimed.push(spec);
    }
    let ids: Vec<&str> = claimed.iter().map(|s| s.id.as_str()).collect();
    if !snapshot.nodes.iter().any(|n| n.id == request.node_id) {
        edits.push(first_record(request, now, &ids));
    }
    let summary = format!("claim {} by {}", ids.join(" "), request.node_id);
    Ok(Some(Change {
        edits,
        summary,
        value: claimed,
    }))
}

/// A record for a node that claims with `git dgrid claim` and has none: a claim of a node with
/// no record is dead at once (`reap::may_take_back`), so every claim lands with one. Never
/// renewed here: readers judge the node by its lease, as any record gone quiet.
fn first_record(request: &Request, now: DateTime<Utc>, ids: &[&str]) -> Edit {
    let lease = request.lease.as_secs().max(1);
    let record = serde_json::json!({
        "id": request.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": rfc3339(now),
        "last_heartbeat": rfc3339(now),
        "state": "running",
        "heartbeat_interval": (lease / 3).max(1),
        "lease": lease,
        "running": ids,
    });
    let mut content = serde_json::to_vec_pretty(&record).expect("a record serializes");
    content.push(b'\n');
    Edit::Write {
        path: layout::node_path(&request.node_id),
        content,
    }
}

/// The edits that move a claimed task from `from` to in_progress.
pub(crate) fn claim_edits(claimed: &TaskSpec, from: &str) -> [Edit; 2] {
    Edit::move_file(
        from,
        layout::task_path(State::InProgress, &claimed.id),
        claimed.to_json(),
    )
}

/// Picks up to `request.max` claimable tasks (not in `exclude`) and returns them with their claim
/// written in, each with the path it is moved from.
#[cfg(test)]
pub(crate) fn select(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    request: &Request,
    limits: &Limits,
    now: DateTime<Utc>,
    exclude: &HashSet<String>,
) -> Vec<(TaskSpec, String)> {
    select_from(None, repo, snapshot, request, limits, now, exclude)
}

/// [`select`], taking the candidates from `queue` (the transition's one parse of the queue) when it
/// was read from this snapshot for the same node, labels, network and gate.
pub(crate) fn select_from(
    queue: Option<&Claimable>,
    repo: &gix::Repository,
    snapshot: &Snapshot,
    request: &Request,
    limits: &Limits,
    now: DateTime<Utc>,
    exclude: &HashSet<String>,
) -> Vec<(TaskSpec, String)> {
    if request.max + request.ahead == 0 {
        return Vec::new();
    }
    let mut candidates = candidates(queue, repo, snapshot, request, limits);
    candidates.retain(|(spec, _)| !exclude.contains(spec.id.as_str()));
    // The one claim order of the contract; the dashboard shows the queue in it too.
    let place = |spec: &TaskSpec| {
        let created = crate::task::created_seconds(&spec.created_at);
        (spec.priority(), created)
    };
    candidates.sort_by(|(a, _), (b, _)| {
        let ((pa, ca), (pb, cb)) = (place(a), place(b));
        crate::task::claim_order(pa, ca, a.id.as_str()).cmp(&crate::task::claim_order(
            pb,
            cb,
            b.id.as_str(),
        ))
    });
    let window_size = ((request.max + request.ahead) * 4).max(32);
    let best = candidates.first().map(|c| c.0.priority());
    let expires =
        now + chrono::Duration::from_std(request.lease).unwrap_or(chrono::Duration::minutes(15));
    let mut picked = Vec::new();
    while picked.len() < request.max + request.ahead && !candidates.is_empty() {
        // Only equals in priority share the window: a higher-priority task is never passed over.
        let top = candidates[0].0.priority();
        if picked.len() >= request.max && Some(top) != best {
            break; // claimed ahead: the highest priority only
        }
        let same = candidates
            .iter()
            .take_while(|c| c.0.priority() == top)
            .count();
        let (mut spec, from) = candidates.remove(fastrand::usize(0..same.min(window_size)));
        if let Some(rule) = Rule::of(&spec) {
            // A replicated task: an entry of this node among its instances, never a claim.
            let (at, until) = (rfc3339(now), rfc3339(expires));
            if rule.adaptive && spec.instances.is_empty() {
                let mine =
                    quorum_upkeep::trusted_reputation(repo, snapshot, &request.node_id, limits);
                quorum_adaptive::solo_claim(&mut spec, &rule, mine.as_ref());
            }
            if !quorum::add_entry(&mut spec, &rule, &request.node_id, &at, &until) {
                continue; // no instance open (`eligible` looked at the same file)
            }
        } else {
            let attempt = spec.next_attempt();
            spec.attempts = None;
            spec.claim = Some(Claim {
                node_id: request.node_id.clone(),
                claimed_at: rfc3339(now),
                lease_expires_at: rfc3339(expires),
                attempt,
            });
        }
        // What git-dgrid writes it must be able to read back: a claim that would make the file
        // too large for the reader is not made (the task stays queued; validate can name it).
        if spec.to_json().len() as u64 > MAX_FILE_BYTES {
            warn_once(
                from,
                "its claimed file would be larger than a task file may be",
            );
            continue;
        }
        picked.push((spec, from.path.clone()));
    }
    picked
}

/// Whether any queued task is claimable by this node (the tests' question; a worker asks its
/// [`Claimable`], one parse per transition).
#[cfg(test)]
pub(crate) fn any_claimable(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    request: &Request,
    limits: &Limits,
) -> bool {
    Claimable::read(repo, snapshot, request, limits).any()
}

/// How many queued tasks this node may claim, leaving out the tasks in `exclude`.
#[cfg(test)]
pub(crate) fn count_claimable_except(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    request: &Request,
    limits: &Limits,
    exclude: &HashSet<String>,
) -> usize {
    Claimable::read(repo, snapshot, request, limits).count_except(exclude)
}

/// A queued file that no node will ever run (`task::invalid_everywhere`): the worker's transition
/// moves it to `failed/` with its problems.
#[derive(Debug, Clone)]
pub struct InvalidTask {
    pub id: TaskId,
    /// Where it is queued.
    pub path: String,
    pub problems: Vec<Problem>,
}

/// Queued tasks this node may run now: valid, labels satisfied, dependencies completed, and
/// admitted by the node's gate (`grid::policy::admission`). Replicated tasks in progress with an open
/// slot and no entry of this node are candidates too, judged the same way. Queued files that break
/// the contract on every node go to `invalid`.
fn eligible<'s>(
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    request: &Request,
    limits: &Limits,
    invalid: &mut Vec<InvalidTask>,
) -> Vec<(TaskSpec, &'s TaskRef)> {
    let mut out = Vec::new();
    let queued = snapshot.in_state(State::Queue);
    let open = snapshot.in_state(State::InProgress).filter(|task| {
        // A look at the bytes first: only a replicated task's file has entries, and a grid of
        // plain tasks should not pay a parse of every running task on each look.
        let has_entries = snapshot::read_bytes(repo, task)
            .is_ok_and(|b| b.windows(12).any(|w| w == b"\"instances\":"));
        has_entries
            && snapshot::load_spec(repo, task, limits)
                .is_ok_and(|spec| spec.id == task.id && quorum::open_to(&spec, &request.node_id))
    });
    for task in queued.chain(open) {
        // An id with two files (flat and sharded, or also in another state) would be claimed
        // twice in one commit, or run again after it finished: never claimed at all.
        if snapshot.is_duplicated(&task.id) {
            warn_once(task, "its id has another file on the grid");
            continue;
        }
        let spec = match snapshot::load_spec(repo, task, limits) {
            Ok(spec) if spec.id == task.id => spec,
            Ok(_) | Err(_) => {
                // Never run what does not validate; `git dgrid validate` names the problem.
                match invalid_everywhere(repo, task, limits) {
                    Some(found) => {
                        warn_once(task, "it breaks the contract on every node");
                        invalid.push(found);
                    }
                    None => warn_once(task, "not a valid task file"),
                }
                continue;
            }
        };
        // A task whose attempts are used up is not run again (a retry gives it fresh ones).
        // A replicated task counts attempts per instance (`grid::replicated::quorum`).
        if Rule::of(&spec).is_none()
            && spec.attempts.unwrap_or(0) >= spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
        {
            warn_once(task, "its attempts are used up");
            continue;
        }
        let labels_ok = spec.labels.iter().all(|l| request.labels.contains(l));
        let deps_ok = spec
            .depends_on
            .iter()
            .all(|d| snapshot.get(d).is_some_and(|t| t.state == State::Completed));
        if !(labels_ok && deps_ok) {
            continue;
        }
        // Refused by this node's gate: stays queued for a node that accepts it.
        let admission = &request.admission;
        if let Some((skip, why)) = admission.refusal(task, &spec, request.allow_network) {
            // Said once per file version; the worker logs the line (`Admission::take_lines`).
            admission.note(task, skip, &why);
            continue;
        }
        out.push((spec, task));
    }
    out
}

/// The queued file `task`, which did not read, when it breaks the contract on every node (never a
/// file in another state: a claimed or finished file is not the queue's to fail).
fn invalid_everywhere(
    repo: &gix::Repository,
    task: &TaskRef,
    limits: &Limits,
) -> Option<InvalidTask> {
    if task.state != State::Queue {
        return None;
    }
    let bytes = snapshot::read_bytes(repo, task).ok()?;
    let (id, problems) = crate::task::invalid_everywhere(&task.path, &bytes, limits)?;
    (id.as_str() == task.id).then(|| InvalidTask {
        id,
        path: task.path.clone(),
        problems,
    })
}

/// The queued tasks this node may claim on one snapshot (`eligible`), parsed once: a worker's
/// transition counts them, asks whether any is left, and selects among them from this one parse
/// instead of one parse per question.
pub struct Claimable<'s> {
    snapshot: &'s Snapshot,
    gate: Gate,
    /// Each task's file is `snapshot.get(&spec.id)`: an id with two files is never eligible.
    tasks: Vec<TaskSpec>,
    /// The queued files of `snapshot` that no node will run.
    invalid: Vec<InvalidTask>,
}

impl<'s> Claimable<'s> {
    /// Parses the queue (and the replicated tasks open to this node) of `snapshot` once.
    pub fn read(
        repo: &gix::Repository,
        snapshot: &'s Snapshot,
        request: &Request,
        limits: &Limits,
    ) -> Claimable<'s> {
        let mut invalid = Vec::new();
        let tasks = eligible(repo, snapshot, request, limits, &mut invalid)
            .into_iter()
            .map(|(spec, _)| spec)
            .collect();
        Claimable {
            snapshot,
            gate: Gate::of(request, limits),
            tasks,
            invalid,
        }
    }

    /// The queued files of `snapshot` that no node will run; none when this parse is of another
    /// snapshot.
    pub fn invalid_in(&self, snapshot: &Snapshot) -> &[InvalidTask] {
        match std::ptr::eq(self.snapshot, snapshot) {
            true => &self.invalid,
            false => &[],
        }
    }

    /// Whether any task is claimable.
    pub fn any(&self) -> bool {
        !self.tasks.is_empty()
    }

    /// Whether any task not in `exclude` is claimable.
    pub fn any_except(&self, exclude: &HashSet<String>) -> bool {
        self.except(exclude).next().is_some()
    }

    /// How many tasks not in `exclude` are claimable.
    pub fn count_except(&self, exclude: &HashSet<String>) -> usize {
        self.except(exclude).count()
    }

    /// The highest priority among the claimable tasks not in `exclude`.
    pub fn best_priority_except(&self, exclude: &HashSet<String>) -> Option<i64> {
        self.except(exclude).map(TaskSpec::priority).max()
    }

    fn except<'a>(&'a self, exclude: &'a HashSet<String>) -> impl Iterator<Item = &'a TaskSpec> {
        self.tasks
            .iter()
            .filter(move |spec| !exclude.contains(spec.id.as_str()))
    }
}

/// What decides a task's eligibility besides the snapshot: the request's node, labels, network
/// and gate (never its counts or lease), and the reader's limits.
#[derive(Clone, PartialEq)]
struct Gate {
    node_id: String,
    labels: Vec<String>,
    allow_network: bool,
    admission: usize,
    max_timeout: u64,
    default_image: String,
}

impl Gate {
    fn of(request: &Request, limits: &Limits) -> Gate {
        Gate {
            node_id: request.node_id.clone(),
            labels: request.labels.clone(),
            allow_network: request.allow_network,
            admission: Arc::as_ptr(&request.admission) as usize,
            max_timeout: limits.max_timeout,
            default_image: limits.default_image.clone(),
        }
    }
}

/// The eligible tasks of `snapshot` for `request`: the queue's parse when it is of this snapshot
/// and the same gate, else a parse of the queue.
fn candidates<'s>(
    queue: Option<&Claimable>,
    repo: &gix::Repository,
    snapshot: &'s Snapshot,
    request: &Request,
    limits: &Limits,
) -> Vec<(TaskSpec, &'s TaskRef)> {
    let same =
        |q: &&Claimable| std::ptr::eq(q.snapshot, snapshot) && q.gate == Gate::of(request, limits);
    match queue.filter(same) {
        Some(queue) => (queue.tasks.iter())
            .filter_map(|spec| snapshot.get(spec.id.as_str()).map(|t| (spec.clone(), t)))
            .collect(),
        None => eligible(repo, snapshot, request, limits, &mut Vec::new()),
    }
}

/// Says once per process and file version that a queued file is skipped: a worker looks at the
/// queue on every cycle and must not repeat itself.
fn warn_once(task: &TaskRef, why: &str) {
    static WARNED: std::sync::Mutex<Option<HashSet<gix::ObjectId>>> = std::sync::Mutex::new(None);
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if warned.get_or_insert_with(HashSet::new).insert(task.blob) {
        crate::log::warning(&format!(
            "skipping {}: {why} (git dgrid validate names the problem)",
            task.path
        ));
    }
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;

#[cfg(test)]
mod claimable_tests {
    use super::*;
    use crate::grid::testkit::{file, grid, now, task, with};
    use serde_json::json;

    fn request(labels: &[&str]) -> Request {
        Request {
            node_id: "me".into(),
            max: 3,
            ahead: 0,
            lease: Duration::from_secs(600),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            allow_network: false,
            admission: Default::default(),
        }
    }

    fn ids(picked: Vec<(TaskSpec, String)>) -> Vec<String> {
        picked.into_iter().map(|(s, _)| s.id.to_string()).collect()
    }

    #[test]
    fn one_parse_answers_what_the_queries_of_a_transition_answer() {
        let fx = grid(&[
            file(State::Queue, "a", task("a")),
            file(State::Queue, "b", with(task("b"), "priority", json!(4))),
            file(
                State::Queue,
                "gpu",
                with(task("gpu"), "labels", json!(["gpu"])),
            ),
        ]);
        let (repo, snapshot, limits) = (&fx.repo, &fx.snapshot, &Limits::default());
        let probe = request(&[]);
        let queue = Claimable::read(repo, snapshot, &probe, limits);
        let b: HashSet<String> = ["b".to_string()].into();
        assert_eq!(
            queue.count_except(&b),
            count_claimable_except(repo, snapshot, &probe, limits, &b)
        );
        assert!(queue.any() && queue.any_except(&b));
        assert_eq!(queue.best_priority_except(&HashSet::new()), Some(4));
        assert_eq!(queue.best_priority_except(&b), Some(0));
        for seed in 0..8 {
            fastrand::seed(seed);
            let fresh = ids(select(
                repo,
                snapshot,
                &probe,
                limits,
                now(),
                &HashSet::new(),
            ));
            fastrand::seed(seed);
            let none = &HashSet::new();
            let lent = select_from(Some(&queue), repo, snapshot, &probe, limits, now(), none);
            assert_eq!(ids(lent), fresh, "seed {seed}");
        }
        // Another node's labels are not this parse's: the select parses for itself.
        let gpu = request(&["gpu"]);
        let none = &HashSet::new();
        let picked = select_from(Some(&queue), repo, snapshot, &gpu, limits, now(), none);
        assert!(ids(picked).contains(&"gpu".to_string()));
    }
}

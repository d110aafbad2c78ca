//! Judging whether another node is dead without trusting its clock
//! (`docs/ARCHITECTURE.md#leases-and-clocks`): a claim is taken back only when its lease has expired
//! by our clock plus a skew margin *and* we have seen the node's record unchanged for a whole lease
//! on our own monotonic clock (as Kubernetes' node controller does), or the node says it stopped.

use super::clock::Clock;
use crate::grid::{load_node, ReapPolicy, Snapshot, TaskRef};
use crate::layout::State;
use crate::node::NodeState;
use crate::task::Claim;
use chrono::{DateTime, Utc};
use gix::ObjectId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Observer {
    lease: Duration,
    skew: Duration,
    clock: Arc<dyn Clock>,
    started: Instant,
    /// node id -> (its record's blob, when we first saw that blob)
    seen: HashMap<String, (ObjectId, Instant)>,
    stopped: HashMap<String, bool>,
    /// in-progress file's path -> (its blob, when we first saw that blob). A live claimant
    /// rewrites its claim on every lease renewal, so a claim unchanged for longer than our lease
    /// (plus the skew margin) has run out whatever its `lease_expires_at` says: a claimant's clock
    /// far ahead, or a forged lease until the year 9999, cannot park a task. Keyed by path, not
    /// id: two in-progress files of one (duplicated) id would otherwise reset each other's time at
    /// every look. Only files in progress at the last observation are kept: a long-running worker
    /// would otherwise keep one entry for every task it ever saw running.
    claims_seen: HashMap<String, (ObjectId, Instant)>,
}

impl Observer {
    pub fn new(lease: Duration, skew: Duration, clock: Arc<dyn Clock>) -> Observer {
        Observer {
            lease,
            skew,
            started: clock.instant(),
            clock,
            seen: HashMap::new(),
            stopped: HashMap::new(),
            claims_seen: HashMap::new(),
        }
    }

    /// Notes every node record whose content changed since the last look, and forgets the claims
    /// no longer in progress. `snapshot` must list the whole grid (`Snapshot::read`): the claims
    /// seen are pruned to its in-progress files. The poll's cheap look at leases asks
    /// [`may_reap`](ReapPolicy::may_reap) about only some of them, lazily, so pruning is done
    /// here and never there.
    pub fn observe(&mut self, repo: &gix::Repository, snapshot: &Snapshot) {
        for node in &snapshot.nodes {
            self.note(&node.id, node.blob, || {
                load_node(repo, node).is_some_and(|r| r.state == NodeState::Stopped)
            });
        }
        self.keep_claims_in_progress(snapshot);
    }

    /// Forgets the claims seen whose file is no longer in progress in `snapshot`. A claim that
    /// comes back later is timed from then: later, never sooner, than it would have been.
    fn keep_claims_in_progress(&mut self, snapshot: &Snapshot) {
        let in_progress: HashSet<&str> = snapshot
            .in_state(State::InProgress)
            .map(|t| t.path.as_str())
            .collect();
        self.claims_seen
            .retain(|path, _| in_progress.contains(path.as_str()));
    }

    /// Notes that `node`'s record is `blob`; `stopped` reads whether it says the node stopped, and
    /// is asked only when the record changed (reading a blob is the costly part).
    fn note(&mut self, node: &str, blob: ObjectId, stopped: impl FnOnce() -> bool) {
        let changed = self.seen.get(node).is_none_or(|(seen, _)| *seen != blob);
        if changed {
            self.seen
                .insert(node.to_string(), (blob, self.clock.instant()));
            self.stopped.insert(node.to_string(), stopped());
        }
    }

    /// How long the node's record has looked the same to us.
    fn quiet_for(&self, node: &str) -> Duration {
        let since = match self.seen.get(node) {
            Some((_, since)) => *since,
            None => self.started,
        };
        self.clock.instant().saturating_duration_since(since)
    }

    /// Whether the claim's lease has run out at `now`, with the skew margin.
    pub fn lease_expired(&self, claim: &Claim, now: DateTime<Utc>) -> bool {
        let Ok(expires) = DateTime::parse_from_rfc3339(&claim.lease_expires_at) else {
            return true; // unreadable lease: validate reports it; treat as expired
        };
        let skew = chrono::Duration::from_std(self.skew).unwrap_or_default();
        now > expires.with_timezone(&Utc) + skew
    }
}

impl ReapPolicy for Observer {
    fn may_reap(&mut self, _snapshot: &Snapshot, task: &TaskRef, claim: &Claim) -> bool {
        let now = self.clock.instant();
        let since = match self.claims_seen.get(&task.path) {
            Some((blob, since)) if *blob == task.blob => *since,
            _ => {
                self.claims_seen.insert(task.path.clone(), (task.blob, now));
                now
            }
        };
        let unchanged_too_long = now.saturating_duration_since(since) > self.lease + self.skew;
        if !unchanged_too_long && !self.lease_expired(claim, self.clock.now()) {
            return false;
        }
        self.stopped.get(&claim.node_id).copied().unwrap_or(false)
            || self.quiet_for(&claim.node_id) >= self.lease
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::policy::clock::FixedClock;

    const LEASE: Duration = Duration::from_secs(60);
    const SKEW: Duration = Duration::from_secs(10);

    fn claim(node: &str, expires: &str) -> Claim {
        serde_json::from_value(serde_json::json!({"node_id": node, "attempt": 1,
            "claimed_at": "2026-01-01T00:00:00Z", "lease_expires_at": expires}))
        .expect("a valid claim")
    }

    fn blob(byte: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[byte; 20])
    }

    fn setup() -> (Arc<FixedClock>, Observer) {
        let clock = Arc::new(FixedClock::at("2026-01-01T00:00:00Z"));
        let observer = Observer::new(LEASE, SKEW, clock.clone());
        (clock, observer)
    }

    fn may_reap(observer: &mut Observer, claim: &Claim) -> bool {
        may_reap_file(observer, claim, blob(0))
    }

    /// [`may_reap`] for a task whose in-progress file is `file`.
    fn may_reap_file(observer: &mut Observer, claim: &Claim, file: ObjectId) -> bool {
        may_reap_task(observer, claim, &in_progress("t1", file))
    }

    fn may_reap_task(observer: &mut Observer, claim: &Claim, task: &TaskRef) -> bool {
        observer.may_reap(&Snapshot::empty(), task, claim)
    }

    fn in_progress(id: &str, file: ObjectId) -> TaskRef {
        TaskRef {
            id: id.into(),
            state: State::InProgress,
            path: format!("tasks/in_progress/{id}.json"),
            blob: file,
            commit: file,
        }
    }

    /// A grid whose only tasks are `tasks` (and no node records, so no blob is read).
    fn snapshot_of(tasks: &[TaskRef]) -> Snapshot {
        let mut snapshot = Snapshot::empty();
        snapshot.tasks = tasks.to_vec();
        snapshot
    }

    fn a_repo() -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let repo = gix::init_bare(dir.path()).expect("a bare repository");
        (dir, repo)
    }

    #[test]
    fn claims_seen_are_pruned_to_the_files_in_progress_at_each_observation() {
        let (clock, mut observer) = setup();
        let (_dir, repo) = a_repo();
        let forged = claim("ghost", "9999-12-31T23:59:59Z");
        let tasks: Vec<TaskRef> = (0..50)
            .map(|i| in_progress(&format!("t{i}"), blob(i)))
            .collect();
        for task in &tasks {
            assert!(!may_reap_task(&mut observer, &forged, task));
        }
        assert_eq!(observer.claims_seen.len(), 50);
        // The others ended (completed, failed, requeued): only t7 is still in progress.
        let mut done = tasks.clone();
        done.retain(|t| t.id != "t7");
        for t in &mut done {
            t.state = State::Completed;
        }
        done.push(tasks[7].clone());
        observer.observe(&repo, &snapshot_of(&done));
        assert_eq!(
            observer.claims_seen.keys().collect::<Vec<_>>(),
            ["tasks/in_progress/t7.json"]
        );
        // What is kept keeps its time: t7's unchanged claim still runs out a lease after it was
        // first seen.
        clock.advance(LEASE + SKEW + Duration::from_secs(1));
        assert!(may_reap_task(&mut observer, &forged, &tasks[7]));
    }

    #[test]
    fn two_in_progress_files_of_one_id_are_timed_apart() {
        let (clock, mut observer) = setup();
        let forged = claim("ghost", "9999-12-31T23:59:59Z");
        let flat = in_progress("dup", blob(1));
        let mut sharded = in_progress("dup", blob(2));
        sharded.path = "tasks/in_progress/ab/dup.json".into();
        for advance in [LEASE, SKEW + Duration::from_secs(1)] {
            assert!(!may_reap_task(&mut observer, &forged, &flat));
            assert!(!may_reap_task(&mut observer, &forged, &sharded));
            clock.advance(advance);
        }
        // Both files have looked the same for longer than a lease and the margin.
        assert!(may_reap_task(&mut observer, &forged, &flat));
        assert!(may_reap_task(&mut observer, &forged, &sharded));
    }

    #[test]
    fn a_lease_far_in_the_future_runs_out_when_the_claim_stays_unchanged_for_our_lease() {
        let (clock, mut observer) = setup();
        let forged = claim("ghost", "9999-12-31T23:59:59Z");
        assert!(!may_reap_file(&mut observer, &forged, blob(5)));
        clock.advance(LEASE + SKEW);
        assert!(!may_reap_file(&mut observer, &forged, blob(5)), "not yet");
        // A renewed claim (a new file) starts the count again.
        assert!(!may_reap_file(&mut observer, &forged, blob(6)));
        clock.advance(LEASE + SKEW + Duration::from_secs(1));
        assert!(may_reap_file(&mut observer, &forged, blob(6)));
    }

    #[test]
    fn a_lease_runs_out_only_past_the_skew_margin() {
        let (_, observer) = setup();
        let now = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let c = claim("b", "2026-01-01T00:01:00Z");
        assert!(!observer.lease_expired(&c, now("2026-01-01T00:01:10Z")));
        assert!(observer.lease_expired(&c, now("2026-01-01T00:01:11Z")));
        assert!(observer.lease_expired(&claim("b", "not a time"), now("2026-01-01T00:00:00Z")));
    }

    #[test]
    fn a_node_is_dead_when_its_lease_is_out_and_it_was_silent_for_a_lease() {
        let (clock, mut observer) = setup();
        let c = claim("b", "2026-01-01T00:00:30Z");
        observer.note("b", blob(1), || false);
        clock.advance(Duration::from_secs(59));
        assert!(!may_reap(&mut observer, &c), "silent for less than a lease");
        clock.advance(Duration::from_secs(1));
        assert!(may_reap(&mut observer, &c));
        // A new heartbeat starts the silence again, even though the lease in the claim is out.
        observer.note("b", blob(2), || false);
        assert!(!may_reap(&mut observer, &c));
        // The same record seen again does not.
        clock.advance(Duration::from_secs(60));
        observer.note("b", blob(2), || {
            panic!("an unchanged record is not read again")
        });
        assert!(may_reap(&mut observer, &c));
    }

    #[test]
    fn a_node_that_says_it_stopped_is_dead_as_soon_as_its_lease_is_out() {
        let (clock, mut observer) = setup();
        let c = claim("b", "2026-01-01T00:00:30Z");
        observer.note("b", blob(1), || true);
        assert!(!may_reap(&mut observer, &c), "its lease still runs");
        clock.advance(Duration::from_secs(41));
        assert!(may_reap(&mut observer, &c));
    }

    #[test]
    fn a_node_never_seen_counts_as_silent_since_the_observer_started() {
        let (clock, mut observer) = setup();
        let c = claim("b", "2026-01-01T00:00:00Z");
        clock.advance(Duration::from_secs(30));
        assert!(!may_reap(&mut observer, &c));
        clock.advance(Duration::from_secs(30));
        assert!(may_reap(&mut observer, &c));
    }
}

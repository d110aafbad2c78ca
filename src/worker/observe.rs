//! Judging whether another node is dead without trusting its clock (DESIGN §3): a claim is taken
//! back only when its lease has expired by our clock plus a skew margin *and* we have seen the
//! node's record unchanged for a whole lease on our own monotonic clock (as Kubernetes' node
//! controller does), or the node says it stopped.

use crate::grid::cycle::ReapPolicy;
use crate::grid::snapshot::{Snapshot, TaskRef};
use crate::node::{NodeRecord, NodeState};
use crate::task::Claim;
use gix::ObjectId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Observer {
    lease: Duration,
    skew: Duration,
    started: Instant,
    /// node id -> (its record's blob, when we first saw that blob)
    seen: HashMap<String, (ObjectId, Instant)>,
    stopped: HashMap<String, bool>,
}

impl Observer {
    pub fn new(lease: Duration, skew: Duration) -> Observer {
        Observer {
            lease,
            skew,
            started: Instant::now(),
            seen: HashMap::new(),
            stopped: HashMap::new(),
        }
    }

    /// Notes every node record whose content changed since the last look.
    pub fn observe(&mut self, repo: &gix::Repository, snapshot: &Snapshot) {
        for node in &snapshot.nodes {
            let changed = self
                .seen
                .get(&node.id)
                .is_none_or(|(blob, _)| *blob != node.blob);
            if changed {
                self.seen
                    .insert(node.id.clone(), (node.blob, Instant::now()));
                let stopped = repo
                    .find_blob(node.blob)
                    .ok()
                    .and_then(|b| NodeRecord::parse(&b.data))
                    .is_some_and(|r| r.state == NodeState::Stopped);
                self.stopped.insert(node.id.clone(), stopped);
            }
        }
    }

    /// How long the node's record has looked the same to us.
    fn quiet_for(&self, node: &str) -> Duration {
        match self.seen.get(node) {
            Some((_, since)) => since.elapsed(),
            None => self.started.elapsed(),
        }
    }

    /// Whether the claim's lease has run out by our clock, with the skew margin.
    pub fn lease_expired(&self, claim: &Claim) -> bool {
        let Ok(expires) = chrono::DateTime::parse_from_rfc3339(&claim.lease_expires_at) else {
            return true; // unreadable lease: validate reports it; treat as expired
        };
        let skew = chrono::Duration::from_std(self.skew).unwrap_or_default();
        chrono::Utc::now() > expires.with_timezone(&chrono::Utc) + skew
    }
}

impl ReapPolicy for Observer {
    fn may_reap(&mut self, _snapshot: &Snapshot, _task: &TaskRef, claim: &Claim) -> bool {
        if !self.lease_expired(claim) {
            return false;
        }
        self.stopped.get(&claim.node_id).copied().unwrap_or(false)
            || self.quiet_for(&claim.node_id) >= self.lease
    }
}

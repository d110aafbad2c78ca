//! What the worker last learnt of the remote, between transitions: the one place where it is
//! written. The transition, the poll and the loop tell it what they found through the methods
//! below and ask it what it says; none of them sets a flag of its own.

use gix::ObjectId;
use std::time::Instant;

pub(in crate::worker) struct RemoteView {
    /// The remote's tip as of our last fetch or push.
    last_tip: Option<ObjectId>,
    /// Whether the queue had a task this node may claim.
    queue_has_work: bool,
    /// Whether a transition would take a task back or find one of ours gone: push even if idle.
    take_back_due: bool,
    /// Whether the queue had a task this node could claim but for its exclusions (tasks that
    /// failed to start here a moment ago): `--until-empty` waits for those to be decided.
    queue_waits: bool,
    /// A task this node holds a claim on is no longer in progress (cancelled, taken over): a
    /// transition must settle it now, whatever the push budget says.
    claim_gone: bool,
    /// A result of a replicated task awaiting its quorum has work due (a reveal, a seal, a
    /// settlement, or its task moved on): push at this node's turn.
    quorum_due: bool,
    /// When this process last looked at the remote (`ls-remote` or a fetch).
    looked_at: Option<Instant>,
}

/// What one transition found in the queue and did to it, as the view takes it in.
pub(super) struct Transitioned {
    /// When the transition read the remote.
    pub at: Instant,
    /// Whether the queue had a task this node may claim (its exclusions left out).
    pub queue_has_work: bool,
    /// Whether it had one but for the exclusions.
    pub queue_waits: bool,
    /// The claim got fewer tasks than it asked for: it took everything claimable.
    pub took_all: bool,
    /// Tasks went back to the queue in this very commit (releases, take-backs).
    pub put_back: bool,
    /// Tasks that failed to start here went back to the queue, excluded here for a while.
    pub failed_starts_back: bool,
}

impl RemoteView {
    /// Before the first look: the queue is taken to have work until a look says otherwise.
    pub(super) fn new() -> RemoteView {
        RemoteView {
            last_tip: None,
            queue_has_work: true,
            take_back_due: false,
            queue_waits: false,
            claim_gone: false,
            quorum_due: false,
            looked_at: None,
        }
    }

    pub(in crate::worker) fn last_tip(&self) -> Option<ObjectId> {
        self.last_tip
    }

    pub(in crate::worker) fn queue_has_work(&self) -> bool {
        self.queue_has_work
    }

    pub(super) fn queue_waits(&self) -> bool {
        self.queue_waits
    }

    pub(in crate::worker) fn claim_gone(&self) -> bool {
        self.claim_gone
    }

    pub(in crate::worker) fn take_back_due(&self) -> bool {
        self.take_back_due
    }

    /// Whether the remote itself calls for a push (a take-back, a claim of ours gone, a quorum
    /// with work due), whatever this node holds.
    pub(in crate::worker) fn push_due(&self) -> bool {
        self.take_back_due || self.claim_gone || self.quorum_due
    }

    /// Whether work is left for this node: a claimable task, or (with `--until-empty`) one it
    /// failed to start and waits to be decided.
    pub(in crate::worker) fn work_left(&self, until_empty: bool) -> bool {
        self.queue_has_work || (until_empty && self.queue_waits)
    }

    pub(super) fn looked_at(&self) -> Option<Instant> {
        self.looked_at
    }

    /// The remote's tip is `tip` (a fetch, a push, the look at start).
    pub(super) fn tip_seen(&mut self, tip: Option<ObjectId>) {
        self.last_tip = tip;
    }

    /// This process looked at the remote at `at`.
    pub(super) fn looked(&mut self, at: Instant) {
        self.looked_at = Some(at);
    }

    /// A look at a moved remote found the queue so.
    pub(super) fn queue_seen(&mut self, has_work: bool, waits: bool) {
        self.queue_has_work = has_work;
        self.queue_waits = waits;
    }

    /// A look found a claim of ours gone (cancelled, taken over, an entry of ours dropped).
    pub(super) fn claims_seen(&mut self, one_gone: bool) {
        self.claim_gone |= one_gone;
    }

    /// A look found work due on a result awaiting its quorum.
    pub(super) fn quorum_seen(&mut self, due: bool) {
        self.quorum_due |= due;
    }

    /// A look judged whether a transition would take a task back.
    pub(super) fn take_back_seen(&mut self, due: bool) {
        self.take_back_due = due;
    }

    /// A transition landed (or found nothing to write): what it saw of the queue, and what went
    /// back to it in its commit. Whatever a look had found due is settled by it.
    pub(super) fn transitioned(&mut self, t: Transitioned) {
        self.queue_has_work = t.queue_has_work;
        self.queue_waits = t.queue_waits;
        self.take_back_due = false;
        self.claim_gone = false;
        self.quorum_due = false;
        self.looked_at = Some(t.at);
        if t.took_all {
            self.queue_has_work = false; // we took everything claimable
        }
        if t.put_back {
            self.queue_has_work = true; // tasks went back to the queue in this very commit
        }
        if t.failed_starts_back {
            self.queue_waits = true; // back in the queue in this very commit, excluded here
        }
    }

    /// A task left alone after failing to start here may be claimed again once its exclusion
    /// ends; nothing on the remote changes to say so. `ended` says whether one has (`None`: none
    /// is left alone); it is asked only while the queue waits on exclusions alone.
    pub(in crate::worker) fn recheck_exclusions(&mut self, ended: impl FnOnce() -> Option<bool>) {
        if self.queue_waits && !self.queue_has_work {
            if let Some(ended) = ended() {
                self.queue_has_work = ended;
            }
        }
    }
}

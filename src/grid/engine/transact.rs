//! The compare-and-swap loop (`docs/ARCHITECTURE.md#compare-and-swap`): fetch, plan a change
//! against the tip, commit it with gix on top of the tip, push with a lease on the tip; on a lost
//! race do it all again, re-checking the intent against the new tip, after a jittered backoff that
//! grows with the contention observed.

use crate::gitcmd;
use crate::grid::engine::grid::{jitter, Grid, NETWORK_TRIES};
use crate::grid::engine::sync::{self, PushOutcome, RemoteRefused};
use crate::grid::read::snapshot::Snapshot;
use crate::odb::{self, Edit, Identity};
use anyhow::{bail, Result};
use gix::ObjectId;
use std::time::Duration;

/// A planned change: the edits and a one-line summary for the commit message.
pub struct Change<T> {
    pub edits: Vec<Edit>,
    pub summary: String,
    pub value: T,
}

#[derive(Debug)]
pub enum Outcome<T> {
    Committed {
        commit: ObjectId,
        value: T,
        stats: Stats,
    },
    /// The plan had nothing to write, but a value to return (e.g. results already recorded).
    Settled { value: T, stats: Stats },
    /// The intent no longer applies to the remote's state (e.g. nothing left to claim).
    NotApplicable { stats: Stats },
}

/// What it took, for benchmarks and `-v` output.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub pushes: u32,
    pub lost_races: u32,
}

/// Give up after this many lost races in a row (minutes of backoff under heavy contention).
const MAX_LOST_RACES: u32 = 200;
const BACKOFF_BASE: Duration = Duration::from_millis(20);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

impl Grid {
    /// Lands the change `plan` computes from the remote's current state. `plan` is called again after
    /// every lost race; returning `Ok(None)` means the intent no longer applies.
    pub fn transact<T>(
        &self,
        identity: &Identity,
        mut plan: impl FnMut(&Snapshot) -> Result<Option<Change<T>>>,
    ) -> Result<Outcome<T>> {
        let _lock = self.lock()?;
        let mut stats = Stats::default();
        let mut tries = Tries::default();
        // Pushes whose answer was lost (a timeout, a dropped connection): the remote may have
        // taken them. Each commit is unique (the nonce), so finding one in the new tip's history
        // means that attempt landed, and its plan is what happened.
        let mut unanswered: Vec<(ObjectId, T)> = Vec::new();
        loop {
            let cycle_start = std::time::Instant::now();
            let tip = self.fetch()?;
            if let Some((commit, value)) = self.landed_unanswered(&mut unanswered, tip) {
                return Ok(Outcome::Committed {
                    commit,
                    value,
                    stats,
                });
            }
            let snapshot = Snapshot::read(&self.repo, tip)?;
            let Some(change) = plan(&snapshot)? else {
                return Ok(Outcome::NotApplicable { stats });
            };
            if change.edits.is_empty() {
                return Ok(Outcome::Settled {
                    value: change.value,
                    stats,
                });
            }
            // The nonce makes every commit unique: two writers pushing an identical commit would
            // both be told "up to date" (`docs/ARCHITECTURE.md#compare-and-swap`).
            let message = format!(
                "dgrid: {}\n\nDgrid-Nonce: {:016x}\n",
                change.summary,
                fastrand::u64(..)
            );
            let commit = odb::write_commit(&self.repo, tip, &change.edits, identity, &message)?;
            stats.pushes += 1;
            let answer = sync::push_cas(&self.dir, &self.remote, commit, tip)?;
            let pushed = Pushed {
                commit,
                value: change.value,
                cycle_start,
            };
            if let Some(outcome) =
                self.take_answer(answer, pushed, &mut stats, &mut tries, &mut unanswered)?
            {
                return Ok(outcome);
            }
        }
    }

    /// An earlier push whose answer was lost, found in the history of `tip` (or, after a
    /// compaction, in its tree): it landed.
    fn landed_unanswered<T>(
        &self,
        unanswered: &mut Vec<(ObjectId, T)>,
        tip: Option<ObjectId>,
    ) -> Option<(ObjectId, T)> {
        let tip = tip?;
        let i = unanswered.iter().position(|(commit, _)| {
            self.is_ancestor(*commit, tip) || landed_before_compaction(&self.dir, *commit, tip)
        })?;
        Some(unanswered.swap_remove(i))
    }

    /// What a push's answer means: landed (`Some`), or try again after the wait it calls for
    /// (`None`), or an error that ends the loop.
    fn take_answer<T>(
        &self,
        answer: PushOutcome,
        pushed: Pushed<T>,
        stats: &mut Stats,
        tries: &mut Tries,
        unanswered: &mut Vec<(ObjectId, T)>,
    ) -> Result<Option<Outcome<T>>> {
        let Pushed {
            commit,
            value,
            cycle_start,
        } = pushed;
        match answer {
            // A server may answer `ok` to a push it did not apply (dulwich's smart HTTP does,
            // when main moved between its advertisement and the push): the push counts as
            // landed only once the remote's main is seen to hold it, one `ls-remote` later.
            // Not seen, it is an unanswered push: the next fetch decides, and the plan is
            // checked against the new tip as after a lost race.
            PushOutcome::Done if self.seen_on_remote(commit) == Some(false) => {
                stats.lost_races += 1;
                if stats.lost_races >= MAX_LOST_RACES {
                    bail!(
                        "gave up after {} pushes that {} acknowledged but its main did not show",
                        stats.lost_races,
                        self.describe()
                    );
                }
                unanswered.push((commit, value));
                self.pause(contention_backoff(cycle_start.elapsed(), stats.lost_races))?;
            }
            PushOutcome::Done => {
                // git updates the tracking ref itself when the remote has a matching fetch
                // refspec; make sure, so the next read starts from what we pushed.
                let _ = gitcmd::run(
                    &self.dir,
                    &["update-ref", &self.tracking_ref, &commit.to_string()],
                );
                self.maybe_gc();
                return Ok(Some(Outcome::Committed {
                    commit,
                    value,
                    stats: std::mem::take(stats),
                }));
            }
            PushOutcome::LostRace(why) => {
                stats.lost_races += 1;
                if stats.lost_races >= MAX_LOST_RACES {
                    bail!(
                        "gave up after losing {} races for main on {} (last: {why})",
                        stats.lost_races,
                        self.describe()
                    );
                }
                // A round trip is what one rival needs to land its push: wait a random
                // number of round trips, in a window that doubles with every loss in a row.
                self.pause(contention_backoff(cycle_start.elapsed(), stats.lost_races))?;
            }
            PushOutcome::Unreachable(why) => {
                tries.unreachable += 1;
                if tries.unreachable >= NETWORK_TRIES {
                    bail!(
                        "cannot push to {}: {why} (the remote may have taken the change all the same; the next read will show)",
                        self.describe()
                    );
                }
                unanswered.push((commit, value));
                self.pause(backoff(tries.unreachable))?;
            }
            PushOutcome::RateLimited(why) => {
                tries.limited += 1;
                // The remote should not have taken it; if it did all the same, the next
                // read shows it, as for an unanswered push.
                unanswered.push((commit, value));
                self.rate_limited(tries.limited, "push", &why)?;
            }
            PushOutcome::Declined(why) => {
                let why = format!("{} declined the push: {why}", self.describe());
                return Err(RemoteRefused(why).into());
            }
            PushOutcome::Denied(why) => {
                let why = format!("{} refused access: {why}", self.describe());
                return Err(RemoteRefused(why).into());
            }
            PushOutcome::NoBranch => {
                bail!("{} lost its main branch during the push", self.describe())
            }
        }
        Ok(None)
    }
}

/// A commit just pushed, with the value its plan returned.
struct Pushed<T> {
    commit: ObjectId,
    value: T,
    cycle_start: std::time::Instant,
}

/// Pushes in a row that did not reach the remote, or were rate limited.
#[derive(Default)]
struct Tries {
    unreachable: u32,
    limited: u32,
}

impl Grid {
    /// Whether the remote's `main` is `commit`, asked right after a push of it (`git ls-remote`:
    /// one round trip, no objects). A `main` already moved on (a rival pushed on top), or a server
    /// error, is "not seen" (`Some(false)`): the next fetch tells whether `commit` is in its
    /// history. `None`: the remote could not be reached to ask.
    fn seen_on_remote(&self, commit: ObjectId) -> Option<bool> {
        match sync::ls_remote(&self.dir, &self.remote) {
            Ok(sync::RemoteTip::At(tip)) => Some(tip == Some(commit)),
            // The remote went away right after it took the push: nobody can be asked, and git's
            // `ok` stands, as it did before this check (a start-up's registration would
            // otherwise fail on an outage that the worker's loop rides out). A server error
            // is an answer: not seen.
            Ok(sync::RemoteTip::Unreachable(m)) if !sync::is_server_error(&m) => None,
            _ => Some(false),
        }
    }

    /// Whether `commit` is in the history of `tip` (both in the local object database).
    fn is_ancestor(&self, commit: ObjectId, tip: ObjectId) -> bool {
        gitcmd::run(
            &self.dir,
            &[
                "merge-base",
                "--is-ancestor",
                &commit.to_string(),
                &tip.to_string(),
            ],
        )
        .is_ok_and(|out| out.success)
    }
}

/// Full-jitter exponential backoff: the more races lost in a row, the longer the wait.
fn contention_backoff(round_trip: Duration, losses: u32) -> Duration {
    let window = round_trip
        .max(BACKOFF_BASE)
        .saturating_mul(1 << losses.min(6))
        .min(BACKOFF_CAP);
    Duration::from_micros(fastrand::u64(0..=window.as_micros() as u64))
}

/// Jittered exponential backoff for a remote that could not be reached.
fn backoff(losses: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << losses.min(10));
    jitter(exp.min(BACKOFF_CAP))
}

/// Whether `commit` (a push whose answer was lost) landed before a compaction rewrote the
/// history up to `tip`: its parent is no longer in `tip`'s history, and every path it changed
/// reads in `tip` exactly as `commit` wrote it. Each transition writes unique content (claims
/// carry the node, attempt and lease; reports the results), so this is as good as its nonce.
fn landed_before_compaction(dir: &std::path::Path, commit: ObjectId, tip: ObjectId) -> bool {
    let (c, t) = (commit.to_string(), tip.to_string());
    let parent = format!("{c}^");
    let rewritten = gitcmd::run(dir, &["merge-base", "--is-ancestor", &parent, &t])
        .is_ok_and(|out| !out.success && out.stderr.trim().is_empty());
    if !rewritten {
        return false;
    }
    let Ok(changed) = gitcmd::output(
        dir,
        &[
            "diff-tree",
            "-r",
            "--name-only",
            "--no-commit-id",
            &parent,
            &c,
        ],
    ) else {
        return false;
    };
    let paths: Vec<&str> = changed.lines().filter(|l| !l.is_empty()).collect();
    if paths.is_empty() {
        return false;
    }
    let mut args = vec!["diff", "--quiet", &c, &t, "--"];
    args.extend(paths);
    gitcmd::run(dir, &args).is_ok_and(|out| out.success)
}

#[cfg(test)]
#[path = "transact_tests.rs"]
mod tests;

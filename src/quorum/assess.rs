//! Where a replicated task in progress stands, and what the next claim of it gets: read off its
//! `instances` entries alone, so every node that looks at the same file reaches the same verdict
//! and the transition that acts on it is the same whoever pushes it.
//!
//! The order of the checks matters: a decided task ignores instances still running (re-issues a
//! node died holding, recruits that came too late); only an undecided one collects, seals,
//! waits for reveals, recruits, and at last gives up.

use super::{reveal_matches, Assessment, Rule};
use crate::task::{Attempt, Instance, QuorumOutcome, TaskSpec, Vote};
use std::collections::HashSet;

/// How many instances the task wants now: `instances_wanted` when a transition set it (recruits,
/// an adaptive task run alone or checked), else `replicas`.
pub fn wanted(spec: &TaskSpec, rule: &Rule) -> u32 {
    spec.instances_wanted.unwrap_or(rule.replicas)
}

/// How many digests must agree. An adaptive task's rule says 2 of 2, but run alone (`wanted` 1)
/// its one trusted instance decides; a check or a recruit brings it back to 2.
pub fn quorum_of(rule: &Rule, wanted: u32) -> u32 {
    if rule.adaptive {
        rule.quorum.min(wanted).max(1)
    } else {
        rule.quorum
    }
}

/// An entry that still counts: not dropped, and not a reveal that does not match its
/// commitment (the transition that sees one drops it; the verdict is the same before and after).
pub fn is_live(entry: &Instance) -> bool {
    entry.dropped.is_none() && !is_invalid_reveal(entry)
}

/// A sealed entry whose revealed digest and salt do not give its commitment: an invalid vote
/// (a node that revealed something it did not commit to, e.g. a digest copied after others
/// revealed theirs). Counted against the node's reputation, never as a vote.
pub fn is_invalid_reveal(entry: &Instance) -> bool {
    entry.sealed && entry.digest.is_some() && !reveal_matches(entry)
}

/// Why a live entry does not count, if it does not: one that no claim of the task could have
/// made (a number beyond what the task wants, a second entry of a number or of a node), or a
/// commitment that landed after its round was sealed, when the round's digests may already be
/// revealed (a round is sealed once; a claim after the seal opens the next round). The
/// transitions drop such an entry with this reason; the verdict is the same before and after.
pub fn not_counted(instances: &[Instance], wanted: u32) -> Vec<(usize, &'static str)> {
    let closed: HashSet<u32> = instances
        .iter()
        .filter(|e| e.sealed)
        .map(|e| e.round)
        .collect();
    let (mut numbers, mut nodes) = (HashSet::new(), HashSet::new());
    let mut out = Vec::new();
    for (i, e) in instances.iter().enumerate() {
        if !is_live(e) {
            continue;
        }
        let why = if e.instance == 0 || e.instance > wanted {
            Some(NOT_ISSUED)
        } else if !e.sealed && closed.contains(&e.round) {
            Some(AFTER_THE_SEAL)
        } else if !numbers.insert(e.instance) || !nodes.insert(e.node_id.as_str()) {
            Some(NOT_ISSUED)
        } else {
            None
        };
        out.extend(why.map(|w| (i, w)));
    }
    out
}

pub const NOT_ISSUED: &str = "not counted: no claim of the task issues this entry";
pub const AFTER_THE_SEAL: &str = "not counted: its round was sealed before it committed";

/// The entries that count: live, and not [`not_counted`].
fn counted(instances: &[Instance], wanted: u32) -> Vec<bool> {
    let mut mask: Vec<bool> = instances.iter().map(is_live).collect();
    for (i, _) in not_counted(instances, wanted) {
        mask[i] = false;
    }
    mask
}

/// Every valid vote: the counted, sealed entries whose reveal matches their commitment, in the
/// file's order.
pub fn votes(instances: &[Instance], wanted: u32) -> Vec<Vote> {
    let mask = counted(instances, wanted);
    instances
        .iter()
        .zip(mask)
        .filter(|(e, counts)| *counts && e.sealed && reveal_matches(e))
        .map(|(e, _)| e)
        .map(|e| Vote {
            node_id: e.node_id.clone(),
            instance: e.instance,
            attempt: e.attempt,
            digest: e.digest.clone().unwrap_or_default(),
        })
        .collect()
}

/// Whether `node` has an entry in the task, live or dropped: such a node never claims it again
/// (one node, one vote).
pub fn has_entry(instances: &[Instance], node: &str) -> bool {
    instances.iter().any(|e| e.node_id == node)
}

/// The verdict on a replicated task's entries (see [`Assessment`] and the module's docs).
pub fn assess(rule: &Rule, wanted: u32, instances: &[Instance]) -> Assessment {
    let quorum = quorum_of(rule, wanted);
    let mask = counted(instances, wanted);
    let live: Vec<(usize, &Instance)> = instances
        .iter()
        .enumerate()
        .filter(|(i, _)| mask[*i])
        .collect();
    let unrevealed = live.iter().any(|(_, e)| e.sealed && e.digest.is_none());
    let votes = votes(instances, wanted);
    let tally = tally(&votes);
    let best = tally.first().map_or(0, |(_, n)| *n);
    let second = tally.get(1).map_or(0, |(_, n)| *n);
    if !unrevealed && best >= quorum && best > second {
        let digest = tally[0].0.clone();
        let agreeing = votes
            .iter()
            .filter(|v| v.digest == digest)
            .map(|v| v.node_id.clone())
            .collect();
        let dissenting = instances
            .iter()
            .zip(&mask)
            .filter(|(e, counts)| {
                let other_vote = **counts && e.sealed && e.digest.as_ref() != Some(&digest);
                other_vote || is_invalid_reveal(e)
            })
            .map(|(e, _)| e)
            .filter(|e| e.digest.is_some())
            .map(|e| e.node_id.clone())
            .collect();
        return Assessment::Decided {
            digest,
            agreeing,
            dissenting,
        };
    }
    let running = live.iter().any(|(_, e)| e.commitment.is_none());
    let count = live.len() as u32;
    if count < wanted || running {
        return Assessment::Collecting {
            open: wanted.saturating_sub(count),
        };
    }
    let to_seal: Vec<usize> = live
        .iter()
        .filter(|(_, e)| !e.sealed)
        .map(|(i, _)| *i)
        .collect();
    if !to_seal.is_empty() {
        return Assessment::Seal(to_seal);
    }
    if unrevealed {
        return Assessment::Revealing;
    }
    // Every live entry revealed, and no digest leads with a quorum: more instances may still
    // make one (a tie is broken by one more vote at least).
    let needed = quorum.saturating_sub(best).max(1);
    let issued = issued(instances);
    if issued + needed <= rule.max_instances {
        Assessment::Recruit {
            wanted: issued + needed,
        }
    } else {
        Assessment::NoQuorum
    }
}

/// The `quorum` object of the result a `Decided` or `NoQuorum` verdict leads to (`None` for the
/// others): the agreed digest and who agreed and dissented, or no digest and nobody, and every
/// valid vote either way. `unchecked` is the adaptive settling's to set.
pub fn outcome(
    rule: &Rule,
    wanted: u32,
    instances: &[Instance],
    verdict: &Assessment,
) -> Option<QuorumOutcome> {
    let (digest, agreeing, dissenting) = match verdict {
        Assessment::Decided {
            digest,
            agreeing,
            dissenting,
        } => (Some(digest.clone()), agreeing.clone(), dissenting.clone()),
        Assessment::NoQuorum => (None, Vec::new(), Vec::new()),
        _ => return None,
    };
    Some(QuorumOutcome {
        replicas: rule.replicas,
        digest,
        agreeing,
        dissenting,
        votes: votes(instances, wanted),
        unchecked: false,
    })
}

/// Each digest and its votes, most votes first (ties in the order first voted).
fn tally(votes: &[Vote]) -> Vec<(String, u32)> {
    let mut tally: Vec<(String, u32)> = Vec::new();
    for v in votes {
        match tally.iter_mut().find(|(d, _)| *d == v.digest) {
            Some((_, n)) => *n += 1,
            None => tally.push((v.digest.clone(), 1)),
        }
    }
    // Stable: equal counts keep their order.
    tally.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    tally
}

/// How many distinct instance numbers were ever issued (a re-issue keeps its number).
fn issued(instances: &[Instance]) -> u32 {
    let mut numbers: Vec<u32> = instances.iter().map(|e| e.instance).collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers.len() as u32
}

/// What the next claim of a replicated task gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextInstance {
    /// A new entry with these numbers.
    Issue {
        instance: u32,
        attempt: Attempt,
        round: u32,
    },
    /// The open instance has used its `max_attempts`: the task fails as `lost`, like a single
    /// task whose last attempt was lost.
    Exhausted { instance: u32 },
}

/// The entry the next claim appends: the lowest instance number up to `wanted` with no counted
/// entry; its attempt one past the highest its earlier entries used; its round the current one,
/// or the next once the current round is sealed (a recruit, the check of an adaptive task, or a
/// re-issue after the seal: its commitment must not join a round whose digests may be revealed).
/// `None` when every wanted instance has a counted entry.
pub fn next_instance(
    rule: &Rule,
    wanted: u32,
    instances: &[Instance],
    max_attempts: u32,
) -> Option<NextInstance> {
    let top = wanted.min(rule.max_instances);
    let mask = counted(instances, wanted);
    let taken = |n: u32| {
        instances
            .iter()
            .zip(&mask)
            .any(|(e, counts)| e.instance == n && *counts)
    };
    let instance = (1..=top).find(|n| !taken(*n))?;
    let used = instances
        .iter()
        .filter(|e| e.instance == instance)
        .map(|e| e.attempt.used())
        .max()
        .unwrap_or(0);
    if used >= max_attempts {
        return Some(NextInstance::Exhausted { instance });
    }
    let round = match instances.iter().map(|e| e.round).max() {
        None => 1,
        Some(r) if instances.iter().any(|e| e.round == r && e.sealed) => r + 1,
        Some(r) => r,
    };
    Some(NextInstance::Issue {
        instance,
        attempt: Attempt::after_used(used),
        round,
    })
}

#[cfg(test)]
#[path = "assess_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "next_tests.rs"]
mod next_tests;

//! Where a replicated task in progress stands, and what the next claim of it gets: read off its
//! `instances` entries alone, so every node that looks at the same file reaches the same verdict
//! and the transition that acts on it is the same whoever pushes it.
//!
//! The order of the checks matters: a decided task ignores instances still running (re-issues a
//! node died holding, recruits that came too late); only an undecided one collects, seals,
//! waits for reveals, recruits, and at last gives up.

use super::{reveal_matches, Assessment, Rule};
use crate::task::{Attempt, Instance, QuorumOutcome, TaskSpec, Vote};

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

/// Every valid vote: the live, sealed entries whose reveal matches their commitment, in the
/// file's order.
pub fn votes(instances: &[Instance]) -> Vec<Vote> {
    instances
        .iter()
        .filter(|e| is_live(e) && e.sealed && reveal_matches(e))
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
    let live: Vec<(usize, &Instance)> = instances
        .iter()
        .enumerate()
        .filter(|(_, e)| is_live(e))
        .collect();
    let unrevealed = live.iter().any(|(_, e)| e.sealed && e.digest.is_none());
    let votes = votes(instances);
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
            .filter(|e| {
                let other_vote = is_live(e) && e.sealed && e.digest.as_ref() != Some(&digest);
                other_vote || is_invalid_reveal(e)
            })
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
pub fn outcome(rule: &Rule, instances: &[Instance], verdict: &Assessment) -> Option<QuorumOutcome> {
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
        votes: votes(instances),
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

/// The entry the next claim appends: the lowest instance number up to `wanted` with no live
/// entry; its attempt one past the highest its dropped entries used; its round that of the
/// instance when it is a re-issue, else the current round (or the next one, when every live
/// entry of the current round is sealed: a recruit, or the check of an adaptive task). `None`
/// when every wanted instance has a live entry.
pub fn next_instance(
    rule: &Rule,
    wanted: u32,
    instances: &[Instance],
    max_attempts: u32,
) -> Option<NextInstance> {
    let top = wanted.min(rule.max_instances);
    let instance = (1..=top).find(|n| !instances.iter().any(|e| e.instance == *n && is_live(e)))?;
    let earlier: Vec<&Instance> = instances
        .iter()
        .filter(|e| e.instance == instance)
        .collect();
    let used = earlier.iter().map(|e| e.attempt.used()).max().unwrap_or(0);
    if used >= max_attempts {
        return Some(NextInstance::Exhausted { instance });
    }
    let round = match earlier.iter().map(|e| e.round).max() {
        Some(round) => round,
        None => {
            let current = instances.iter().map(|e| e.round).max();
            match current {
                None => 1,
                Some(r) => {
                    let closed = instances
                        .iter()
                        .filter(|e| e.round == r && is_live(e))
                        .all(|e| e.sealed);
                    if closed {
                        r + 1
                    } else {
                        r
                    }
                }
            }
        }
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

//! Where a replicated task in progress stands (`crate::quorum::Assessment`), read off its entries
//! alone. Written here by the grid's side until the contract layer has its own `quorum::assess`
//! (design points 4-7 of issue 14, `docs/ARCHITECTURE.md#quorum`); then this file goes.

use crate::quorum::{self, Assessment, Rule};
use crate::task::{Instance, TaskSpec};
use std::collections::{BTreeMap, BTreeSet};

/// How many instances the task wants now: its `replicas`, or more after a recruit.
pub fn wanted(spec: &TaskSpec, rule: &Rule) -> u32 {
    spec.instances_wanted.unwrap_or(rule.replicas)
}

/// The entries that count: live, numbered within what the task wants, one per node (a hand-made
/// file with a second entry of a node, or an entry numbered past `wanted`, gets no say).
pub fn counted(spec: &TaskSpec, rule: &Rule) -> Vec<usize> {
    let wanted = wanted(spec, rule);
    let mut nodes = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    spec.instances
        .iter()
        .enumerate()
        .filter(|(_, e)| e.dropped.is_none() && e.instance >= 1 && e.instance <= wanted)
        .filter(|(_, e)| nodes.insert(e.node_id.clone()) && numbers.insert(e.instance))
        .map(|(i, _)| i)
        .collect()
}

/// A counted entry's vote: sealed (its commitment landed before any reveal) and revealed to
/// match its commitment. Unsealed entries never vote, whatever they carry.
pub fn vote(entry: &Instance) -> Option<&str> {
    (entry.sealed && quorum::reveal_matches(entry))
        .then_some(entry.digest.as_deref())
        .flatten()
}

pub fn assess(spec: &TaskSpec, rule: &Rule) -> Assessment {
    let counted = counted(spec, rule);
    let entries =
        |f: &dyn Fn(&Instance) -> bool| counted.iter().filter(|&&i| f(&spec.instances[i])).count();
    let unrevealed_sealed = entries(&|e| e.sealed && e.digest.is_none());
    let mut tally: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for &i in &counted {
        let e = &spec.instances[i];
        if let Some(d) = vote(e) {
            tally.entry(d).or_default().push(&e.node_id);
        }
    }
    let mut ranked: Vec<(&str, usize)> = tally.iter().map(|(d, n)| (*d, n.len())).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let best = ranked.first().map_or(0, |r| r.1);
    let second = ranked.get(1).map_or(0, |r| r.1);
    if unrevealed_sealed == 0 && best as u32 >= rule.quorum && best > second {
        let digest = ranked[0].0.to_string();
        let agreeing = tally[digest.as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let dissenting = tally
            .iter()
            .filter(|(d, _)| **d != digest)
            .flat_map(|(_, n)| n.iter().map(|s| s.to_string()))
            .collect();
        return Assessment::Decided {
            digest,
            agreeing,
            dissenting,
        };
    }
    let wanted = wanted(spec, rule);
    let live = counted.len() as u32;
    if live < wanted {
        return Assessment::Collecting {
            open: wanted - live,
        };
    }
    if entries(&|e| e.commitment.is_none()) > 0 {
        return Assessment::Collecting { open: 0 };
    }
    let to_seal: Vec<usize> = counted
        .iter()
        .copied()
        .filter(|&i| !spec.instances[i].sealed)
        .collect();
    if !to_seal.is_empty() {
        return Assessment::Seal(to_seal);
    }
    if unrevealed_sealed > 0 {
        return Assessment::Revealing;
    }
    let needed = rule.quorum.saturating_sub(best as u32).max(1);
    let issued = spec
        .instances
        .iter()
        .map(|e| e.instance)
        .collect::<BTreeSet<_>>()
        .len() as u32;
    let issued = issued.max(wanted);
    if issued + needed <= rule.max_instances {
        Assessment::Recruit {
            wanted: issued + needed,
        }
    } else {
        Assessment::NoQuorum
    }
}

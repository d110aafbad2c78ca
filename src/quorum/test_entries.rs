//! Instance entries at each stage of their life, for the tests of `assess` and `next_instance`.

use crate::quorum::{commitment, digest, sha256_hex, Assessment, Rule};
use crate::task::{Attempt, Instance};

/// The digest of an instance whose stdout was `output` (exit 0).
pub fn d(output: &str) -> String {
    digest(Some(0), &sha256_hex(output.as_bytes()))
}

pub fn salt(node: &str) -> String {
    sha256_hex(format!("salt of {node}").as_bytes())
}

pub fn rule(replicas: u32, quorum: u32, max_instances: u32) -> Rule {
    Rule {
        replicas,
        quorum,
        max_instances,
        adaptive: false,
    }
}

/// An instance claimed and running.
pub fn run(instance: u32, node: &str) -> Instance {
    Instance {
        instance,
        round: 1,
        node_id: node.into(),
        claimed_at: "2026-12-03T10:00:00Z".into(),
        lease_expires_at: "2026-12-03T10:05:00Z".into(),
        attempt: Attempt::FIRST,
        commitment: None,
        sealed: false,
        digest: None,
        salt: None,
        exit_code: None,
        status: None,
        dropped: None,
    }
}

/// Finished, its commitment to `output`'s digest landed.
pub fn committed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        commitment: Some(commitment(node, &salt(node), &d(output))),
        ..run(instance, node)
    }
}

pub fn sealed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        sealed: true,
        ..committed(instance, node, output)
    }
}

pub fn revealed(instance: u32, node: &str, output: &str) -> Instance {
    Instance {
        digest: Some(d(output)),
        salt: Some(salt(node)),
        exit_code: Some(0),
        status: Some(crate::task::Status::Success),
        ..sealed(instance, node, output)
    }
}

/// Committed to `committed_to`, then revealed `shown` (a digest copied after the others
/// revealed): the reveal does not match.
pub fn forged(instance: u32, node: &str, committed_to: &str, shown: &str) -> Instance {
    Instance {
        digest: Some(d(shown)),
        ..revealed(instance, node, committed_to)
    }
}

pub fn dropped(entry: Instance) -> Instance {
    Instance {
        dropped: Some(format!("node {} stopped heartbeating", entry.node_id)),
        ..entry
    }
}

pub fn round(round: u32, entry: Instance) -> Instance {
    Instance { round, ..entry }
}

pub fn attempt(n: u32, entry: Instance) -> Instance {
    Instance {
        attempt: Attempt::new(n).unwrap(),
        ..entry
    }
}

pub fn decided(output: &str, agreeing: &[&str], dissenting: &[&str]) -> Assessment {
    Assessment::Decided {
        digest: d(output),
        agreeing: agreeing.iter().map(|s| s.to_string()).collect(),
        dissenting: dissenting.iter().map(|s| s.to_string()).collect(),
    }
}

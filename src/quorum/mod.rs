//! Replicated tasks (`"replicas": N`): what an instance's result is reduced to (`digest`,
//! `result_digest`), how an instance commits to it before anyone reveals (`salt`, `commitment`),
//! and when a task's instances agree. Pure: the grid applies it to in-progress files
//! (`grid::replicated`), the worker supplies results and its reveal key.
//! See `docs/ARCHITECTURE.md#quorum`.
//!
//! The life of a replicated task's file in `tasks/in_progress/`:
//! 1. claims add `instances` entries (one per node; a node never holds two of one task) until
//!    `wanted` live entries exist;
//! 2. an instance that finished lands `commitment` = `commitment(node, salt, digest)` only;
//! 3. the push that lands a round's last commitment also sets `sealed` on every committed entry
//!    of that round (`Assessment::Seal`);
//! 4. each sealed instance reveals `digest` and `salt` (and its exit code and status) on its
//!    node's next push; a reveal that does not match its commitment is dropped;
//! 5. once the revealed digests decide (`Assessment::Decided`), an agreeing node moves the task
//!    to `completed` or `failed` with its own full result and a `quorum` object; without
//!    agreement more instances are wanted (`Recruit`), up to `max_instances`, then `NoQuorum`.

pub mod adaptive;
mod assess;
pub mod reputation;
#[cfg(test)]
mod salt_tests;
#[cfg(test)]
mod test_entries;

pub use assess::{
    assess, has_entry, is_invalid_reveal, is_live, next_instance, not_counted, outcome, quorum_of,
    votes, wanted, NextInstance,
};

use crate::task::{Attempt, Instance, Replicas, TaskResult, TaskSpec, ADAPTIVE_REPLICAS};
use sha2::{Digest as _, Sha256};

/// What a task asks for: how many instances at first, how many must agree, how many at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub replicas: u32,
    pub quorum: u32,
    pub max_instances: u32,
    pub adaptive: bool,
}

impl Rule {
    /// The task's rule; `None` for a task run once, the way it always was (no `replicas`, or 1).
    pub fn of(spec: &TaskSpec) -> Option<Rule> {
        let (replicas, adaptive) = match spec.replicas? {
            Replicas::Fixed(n) if n <= 1 => return None,
            Replicas::Fixed(n) => (n, false),
            Replicas::Adaptive => (ADAPTIVE_REPLICAS, true),
        };
        let quorum = spec.quorum.unwrap_or(replicas / 2 + 1);
        let max_instances = spec.max_instances.unwrap_or(replicas + 2);
        Some(Rule {
            replicas,
            quorum,
            max_instances,
            adaptive,
        })
    }
}

/// Valid results in a row after which a node runs adaptive tasks alone.
pub const TRUSTED_AFTER: u64 = 10;

/// An instance's result reduced to what must agree: its exit code and the sha256 of its *full*
/// stdout (never the text kept in the file, which may be cut).
pub fn digest(exit_code: Option<i64>, stdout_sha256: &str) -> String {
    let exit = exit_code.map_or_else(|| "none".to_string(), |c| c.to_string());
    sha256_hex(format!("dgrid-digest-v1\n{exit}\n{stdout_sha256}\n").as_bytes())
}

/// What an instance lands before anyone reveals: binds node, salt and digest, so that neither
/// the digest can be read off it nor another node's commitment be copied.
pub fn commitment(node_id: &str, salt: &str, digest: &str) -> String {
    sha256_hex(format!("dgrid-commitment-v1\n{node_id}\n{salt}\n{digest}\n").as_bytes())
}

/// The salt of an instance's commitment: secret until revealed (it comes from the node's
/// reveal key), and the same for the same instance after a restart (the key is kept).
pub fn salt(reveal_key: &[u8], task_id: &str, attempt: Attempt) -> String {
    let mut bytes = reveal_key.to_vec();
    bytes.extend_from_slice(format!("\n{task_id}\n{}\n", attempt.number()).as_bytes());
    sha256_hex(&bytes)
}

/// The digest of a result: its exit code and the sha256 of its *full* stdout.
pub fn result_digest(result: &TaskResult) -> String {
    let stdout = result.stdout_info.as_ref().map_or_else(
        || sha256_hex(result.stdout.as_bytes()),
        |info| info.sha256.clone(),
    );
    digest(result.exit_code, &stdout)
}

/// Whether an entry's reveal matches its commitment.
pub fn reveal_matches(instance: &Instance) -> bool {
    match (&instance.commitment, &instance.salt, &instance.digest) {
        (Some(c), Some(salt), Some(digest)) => *c == commitment(&instance.node_id, salt, digest),
        _ => false,
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a replicated task in progress stands, read off its entries alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// Instances are missing or running: `open` more may be claimed now (by nodes not in the list).
    Collecting { open: u32 },
    /// The round's last commitment is in: set `sealed` on these entries (indices).
    Seal(Vec<usize>),
    /// Sealed instances are yet to reveal.
    Revealing,
    /// The revealed digests agree: `digest` has `quorum` votes and more than any other.
    Decided {
        digest: String,
        agreeing: Vec<String>,
        dissenting: Vec<String>,
    },
    /// No agreement, and more instances may still make one: the task now wants `wanted` in all.
    Recruit { wanted: u32 },
    /// No agreement, and `max_instances` are spent.
    NoQuorum,
}

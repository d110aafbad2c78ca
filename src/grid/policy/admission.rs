//! The operator's admission gate (docs/ARCHITECTURE.md#the-worker): which queued tasks this node
//! is willing to run at all. A task the gate refuses stays queued, for a node that accepts it: it
//! is never claimed, never failed, never counted as runnable here (so `--until-empty` ends), and
//! the log names it once per file version and reason, not on every poll.
//!
//! The gate is pure: the worker builds it from its settings and hands it to the claim in the
//! [`Request`](crate::grid::plan::claim::Request). Reasons, in the order they are checked:
//! - `archived`: the id's result is archived in `dgrid-archive` (a copy pushed again by plain
//!   git: ids are never reused, as `submit` refuses them);
//! - `caps`: the task asks for more than this node allows (timeout, cpus, memory, network);
//! - `image`: the image matches none of the `--allow-image` patterns;
//! - `untrusted`: a signature check is set (`--allowed-signers`) and says no;
//! - `secrets`: the task has secrets and no key of this node's `--identity` opens them all (it
//!   waits for a node that can, as a task waits for a node with its labels).

use crate::grid::read::snapshot::TaskRef;
use crate::secrets::Keys;
use crate::task::{memory_bytes, Network, SignedBy, TaskSpec};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Why the gate leaves a task in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    Archived,
    Caps,
    Image,
    Untrusted,
    Secrets,
}

impl Skip {
    /// The name in the node record's `skipped` counts and in the log.
    pub fn name(self) -> &'static str {
        match self {
            Skip::Archived => "archived",
            Skip::Caps => "caps",
            Skip::Image => "image",
            Skip::Untrusted => "untrusted",
            Skip::Secrets => "secrets",
        }
    }
}

/// A signature check (`grid::policy::signers::Trust` for `--allowed-signers`).
pub trait TaskTrust: Send + Sync {
    /// `Ok` to run the task, `Err(reason)` to leave it queued as untrusted. Given the file (its
    /// blob id) so that verdicts can be cached by it.
    fn check(&self, task: &TaskRef, spec: &TaskSpec) -> Result<(), String>;
    /// Who signed `spec`, for its result; `None` when no trusted key did.
    fn signed_by(&self, spec: &TaskSpec) -> Option<SignedBy>;
    /// Lines for the worker's log about the signers themselves (said once each).
    fn take_lines(&self) -> Vec<String> {
        Vec::new()
    }
}

pub type SignatureCheck = dyn TaskTrust;

/// Whether a queued task's id is archived (`grid::history::archive_gate`): `Some(file)`, its
/// day file in `dgrid-archive`.
pub trait ArchiveCheck: Send + Sync {
    fn archived(&self, task: &TaskRef) -> Option<String>;
}

/// A plain function checks, and names no signer.
impl<F> TaskTrust for F
where
    F: Fn(&TaskRef, &TaskSpec) -> Result<(), String> + Send + Sync,
{
    fn check(&self, task: &TaskRef, spec: &TaskSpec) -> Result<(), String> {
        self(task, spec)
    }

    fn signed_by(&self, _: &TaskSpec) -> Option<SignedBy> {
        None
    }
}

/// The image patterns of `--allow-image`: globs over the full image reference as the task
/// writes it. `*` and `?` do not cross a `/` (`ghcr.io/acme/*` is not `ghcr.io/acme/x/y`); `**`
/// does.
#[derive(Clone)]
pub struct ImagePatterns {
    patterns: Vec<String>,
    set: globset::GlobSet,
}

impl ImagePatterns {
    /// Parses the patterns; an empty list means "any image". Names the pattern that is wrong.
    pub fn parse(patterns: &[String]) -> Result<Option<ImagePatterns>, String> {
        let patterns: Vec<String> = patterns
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if patterns.is_empty() {
            return Ok(None);
        }
        let mut builder = globset::GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("image pattern {pattern:?}: {}", e.kind()))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| format!("image patterns: {e}"))?;
        Ok(Some(ImagePatterns { patterns, set }))
    }

    pub fn allows(&self, image: &str) -> bool {
        self.set.is_match(image)
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// What this node runs, and what it has said about the tasks it will not.
#[derive(Default)]
pub struct Admission {
    /// `None`: any image.
    pub images: Option<ImagePatterns>,
    /// The node's caps; `None` means no cap of the node's own (the grid's limits still apply).
    pub max_timeout: Option<u64>,
    pub max_cpus: Option<f64>,
    pub max_memory: Option<u64>,
    pub signatures: Option<Arc<SignatureCheck>>,
    /// Ids whose results are archived never run again.
    pub archived: Option<Arc<dyn ArchiveCheck>>,
    /// The keys of `--identity`; `None`: this node runs no task that has secrets.
    pub keys: Option<Arc<Keys>>,
    said: Mutex<Said>,
    /// Whether this node's keys open a file version's secrets (`None`) or why not: decrypting
    /// on every look would cost an RSA decryption per task and poll.
    opens: Mutex<HashMap<gix::ObjectId, Option<String>>>,
}

#[derive(Default)]
struct Said {
    /// (file version, reason) pairs already logged.
    seen: HashSet<(gix::ObjectId, Skip)>,
    /// Distinct file versions left queued per reason since the process started.
    counts: BTreeMap<Skip, u64>,
    /// Lines said by [`Admission::note`] that the worker has not logged yet.
    pending: Vec<String>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("images", &self.images.as_ref().map(|i| i.patterns()))
            .field("max_timeout", &self.max_timeout)
            .field("max_cpus", &self.max_cpus)
            .field("max_memory", &self.max_memory)
            .field("signatures", &self.signatures.is_some())
            .field("archived", &self.archived.is_some())
            .field("keys", &self.keys.is_some())
            .finish()
    }
}

impl Admission {
    /// Why this node will not run `spec`, or `None`. `allow_network`: whether this node runs
    /// tasks that ask for `"network": "bridge"` (the claim request says).
    pub fn refusal(
        &self,
        task: &TaskRef,
        spec: &TaskSpec,
        allow_network: bool,
    ) -> Option<(Skip, String)> {
        if let Some(file) = self.archived.as_ref().and_then(|a| a.archived(task)) {
            return Some((
                Skip::Archived,
                format!("its id's result is archived in dgrid-archive ({file}); ids are never reused, so a copy pushed again never runs"),
            ));
        }
        if let Some(why) = self.over_caps(spec, allow_network) {
            return Some((Skip::Caps, why));
        }
        if let Some(images) = &self.images {
            if !images.allows(&spec.image) {
                return Some((
                    Skip::Image,
                    format!(
                        "image {:?} matches no --allow-image pattern ({})",
                        spec.image,
                        images.patterns().join(", ")
                    ),
                ));
            }
        }
        if let Some(check) = &self.signatures {
            if let Err(why) = check.check(task, spec) {
                return Some((Skip::Untrusted, why));
            }
        }
        self.secrets_refusal(task, spec)
            .map(|why| (Skip::Secrets, why))
    }

    /// Why this node cannot open `spec`'s secrets, or `None` (no secrets, or every one opens).
    /// Decrypted only to know, the values dropped (and wiped) at once.
    fn secrets_refusal(&self, task: &TaskRef, spec: &TaskSpec) -> Option<String> {
        if spec.secrets.is_empty() {
            return None;
        }
        let Some(keys) = &self.keys else {
            return Some(
                "it has secrets, and this node has no --identity to decrypt them: it waits for a node that can".into(),
            );
        };
        let mut opens = self.opens.lock().unwrap_or_else(|p| p.into_inner());
        if opens.len() > 10_000 {
            opens.clear();
        }
        opens
            .entry(task.blob)
            .or_insert_with(|| {
                keys.open(&spec.secrets)
                    .err()
                    .map(|why| format!("{why}: it waits for a node that can decrypt it"))
            })
            .clone()
    }

    fn over_caps(&self, spec: &TaskSpec, allow_network: bool) -> Option<String> {
        if spec.network == Some(Network::Bridge) && !allow_network {
            return Some(
                "it asks for the network, and this node runs without --allow-network".into(),
            );
        }
        if let Some(max) = self.max_timeout {
            if spec.timeout > max {
                return Some(format!(
                    "its timeout {}s is over this node's --max-task-timeout {max}s",
                    spec.timeout
                ));
            }
        }
        let resources = spec.resources.as_ref();
        if let (Some(max), Some(cpus)) = (self.max_cpus, resources.and_then(|r| r.cpus)) {
            if cpus > max {
                return Some(format!(
                    "it asks for {cpus} CPUs, this node's --max-cpus is {max}"
                ));
            }
        }
        let memory = resources.and_then(|r| r.memory.as_deref());
        if let (Some(max), Some(text)) = (self.max_memory, memory) {
            if memory_bytes(text).is_some_and(|m| m > max) {
                return Some(format!(
                    "it asks for {text} of memory, this node's --max-memory is {max} bytes"
                ));
            }
        }
        None
    }

    /// Who signed `spec`, when this node checks signatures: recorded in the task's result.
    pub fn signed_by(&self, spec: &TaskSpec) -> Option<SignedBy> {
        self.signatures.as_ref().and_then(|s| s.signed_by(spec))
    }

    /// Notes that `task` stays queued for `skip`; returns the log line the first time this
    /// version of the file is skipped for this reason, and `None` after.
    pub fn note(&self, task: &TaskRef, skip: Skip, why: &str) -> Option<String> {
        let mut said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        if !said.seen.insert((task.blob, skip)) {
            return None;
        }
        *said.counts.entry(skip).or_default() += 1;
        let line = format!(
            "leaving {} in the queue ({}): {why}",
            task.path,
            skip.name()
        );
        said.pending.push(line.clone());
        Some(line)
    }

    /// The lines noted since the last call, for the worker's log (in its format, with its node).
    pub fn take_lines(&self) -> Vec<String> {
        let mut said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        let mut lines = self
            .signatures
            .as_ref()
            .map(|s| s.take_lines())
            .unwrap_or_default();
        lines.append(&mut said.pending);
        lines
    }

    /// Task versions left queued per reason since this process started, for the node record.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let said = self.said.lock().unwrap_or_else(|p| p.into_inner());
        said.counts
            .iter()
            .map(|(skip, n)| (skip.name().to_string(), *n))
            .collect()
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;

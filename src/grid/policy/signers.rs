//! Whom a worker trusts to sign tasks (docs/ARCHITECTURE.md#signed-tasks): the operator's
//! `--allowed-signers` file, and with `--trust-grid-signers` the grid's own
//! `.dgrid/allowed_signers`, but only as far as a chain of signed changes from a commit the
//! operator pinned (`dgrid.trustRoot`) reaches. As sequoia-git's `openpgp-policy.toml`: each
//! commit on `main`'s first-parent line that changes the file must be signed (git's SSH commit
//! signature, namespace `git`) by a key listed in the file's previous version. The first change
//! that is not ends the chain: the last good version stands, later ones are ignored, and the
//! worker says so once. So a collaborator who can push cannot add their own key.

use crate::gitcmd;
use crate::grid::policy::admission::TaskTrust;
use crate::grid::read::snapshot::TaskRef;
use crate::task::{SignedBy, TaskSpec};
use crate::trust::{self, AllowedSigners, VerdictCache};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use gix::ObjectId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The grid's signers file, at the top of the tree.
pub(crate) const GRID_SIGNERS_PATH: &str = ".dgrid/allowed_signers";

/// The grid's signers at `tip`, following the chain from `root` (a commit id or name).
/// Returns the trusted file text (of the last good version) and lines for the log: each change
/// that was not honoured, and why.
pub(crate) fn grid_signers(dir: &Path, root: &str, tip: ObjectId) -> Result<(String, Vec<String>)> {
    let root_id = gitcmd::run(
        dir,
        &["rev-parse", "--verify", &format!("{root}^{{commit}}")],
    )?;
    let root_id = root_id.stdout.trim().to_string();
    if root_id.is_empty() {
        bail!("the trust root {root:?} is not a commit here (dgrid.trustRoot)");
    }
    let tip = tip.to_string();
    let ancestor = gitcmd::run(dir, &["merge-base", "--is-ancestor", &root_id, &tip])?;
    if !ancestor.success {
        bail!("the trust root {root_id} is not in the history of main ({tip})");
    }
    let mut trusted = file_at(dir, &root_id)?;
    let changes = gitcmd::run(
        dir,
        &[
            "rev-list",
            "--reverse",
            "--first-parent",
            &format!("{root_id}..{tip}"),
            "--",
            GRID_SIGNERS_PATH,
        ],
    )?;
    let mut notes = Vec::new();
    for commit in changes.stdout.split_whitespace() {
        let previous =
            AllowedSigners::parse(&format!("{GRID_SIGNERS_PATH} before {commit}"), &trusted)
                .unwrap_or_default();
        match commit_signer(dir, commit, &previous) {
            Ok(_) => trusted = file_at(dir, commit)?,
            Err(why) => {
                notes.push(format!(
                    "ignoring the change to {GRID_SIGNERS_PATH} in commit {commit} and after: {why}"
                ));
                break;
            }
        }
    }
    Ok((trusted, notes))
}

/// The file at `commit`, empty when it has none.
fn file_at(dir: &Path, commit: &str) -> Result<String> {
    let out = gitcmd::run(dir, &["show", &format!("{commit}:{GRID_SIGNERS_PATH}")])?;
    Ok(if out.success {
        out.stdout
    } else {
        String::new()
    })
}

/// Who signed `commit` (its `gpgsig` header, SSH, namespace `git`), if `signers` trusts them.
fn commit_signer(dir: &Path, commit: &str, signers: &AllowedSigners) -> Result<SignedBy, String> {
    let raw = gitcmd::run(dir, &["cat-file", "commit", commit]).map_err(|e| e.to_string())?;
    if !raw.success {
        return Err(format!("cannot read the commit: {}", raw.stderr.trim()));
    }
    let (payload, signature) = split_signature(&raw.stdout);
    let signature = signature.ok_or("the commit is not signed")?;
    trust::verify_detached(&signature, "git", payload.as_bytes(), signers, Utc::now())
        .map_err(|why| format!("its signature is not by a key of the previous version ({why})"))
}

/// A commit object split into what was signed (the object without its `gpgsig` header) and
/// the signature, as git does it.
fn split_signature(raw: &str) -> (String, Option<String>) {
    let (header, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut payload = String::new();
    let mut signature: Option<String> = None;
    let mut in_sig = false;
    for line in header.split('\n') {
        if let Some(rest) = line.strip_prefix("gpgsig ") {
            signature = Some(format!("{rest}\n"));
            in_sig = true;
        } else if in_sig && line.starts_with(' ') {
            if let Some(s) = signature.as_mut() {
                s.push_str(&line[1..]);
                s.push('\n');
            }
        } else {
            in_sig = false;
            payload.push_str(line);
            payload.push('\n');
        }
    }
    payload.push('\n');
    payload.push_str(body);
    (payload, signature)
}

/// The worker's signature check: the operator's signers, and the grid's when trusted.
pub struct Trust {
    operator: Option<AllowedSigners>,
    grid: Option<GridChain>,
    cache: VerdictCache,
    /// The signer set the cache's verdicts were made with.
    current: Mutex<Current>,
}

struct GridChain {
    dir: PathBuf,
    root: String,
}

#[derive(Default)]
struct Current {
    tip: Option<ObjectId>,
    signers: Arc<AllowedSigners>,
    grid_text: String,
    /// Whether `signers` includes the grid's (built once at least).
    built: bool,
    /// Log lines not taken yet, and every line said, so each is said once.
    pending: Vec<String>,
    said: HashSet<String>,
}

impl Trust {
    pub fn new(operator: Option<AllowedSigners>, grid: Option<(PathBuf, String)>) -> Trust {
        let mut current = Current::default();
        if let Some(op) = &operator {
            current.signers = Arc::new(op.clone());
            for line in &op.skipped {
                current.say(line.clone());
            }
        }
        Trust {
            operator,
            grid: grid.map(|(dir, root)| GridChain { dir, root }),
            // Long enough to spare every poll, short enough that a key's dates are looked at again.
            cache: VerdictCache::new(Duration::from_secs(300)),
            current: Mutex::new(current),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The signers at `tip`: recomputed when the tip moved and the grid's file is trusted.
    fn signers_at(&self, tip: ObjectId) -> Arc<AllowedSigners> {
        let Some(chain) = &self.grid else {
            return self.lock().signers.clone();
        };
        let mut current = self.lock();
        if current.tip == Some(tip) {
            return current.signers.clone();
        }
        current.tip = Some(tip);
        let text = match grid_signers(&chain.dir, &chain.root, tip) {
            Ok((text, notes)) => {
                for note in notes {
                    current.say(note);
                }
                text
            }
            Err(why) => {
                current.say(format!("not trusting {GRID_SIGNERS_PATH}: {why:#}"));
                String::new()
            }
        };
        if text != current.grid_text || !current.built {
            let mut all = self.operator.clone().unwrap_or_default();
            match AllowedSigners::parse(GRID_SIGNERS_PATH, &text) {
                Ok(grid) => {
                    for line in &grid.skipped {
                        current.say(line.clone());
                    }
                    all.signers.extend(grid.signers);
                }
                Err(errors) => current.say(format!(
                    "not trusting {GRID_SIGNERS_PATH}: {}",
                    errors.join("; ")
                )),
            }
            if all.source.is_empty() {
                all.source = GRID_SIGNERS_PATH.to_string();
            } else {
                all.source = format!("{} or {GRID_SIGNERS_PATH}", all.source);
            }
            current.grid_text = text;
            current.built = true;
            current.signers = Arc::new(all);
            // The verdicts were made with other signers.
            self.cache.clear();
        }
        current.signers.clone()
    }
}

impl Current {
    fn say(&mut self, line: String) {
        if self.said.insert(line.clone()) {
            self.pending.push(line);
        }
    }
}

impl TaskTrust for Trust {
    fn check(&self, task: &TaskRef, spec: &TaskSpec) -> Result<(), String> {
        let signers = self.signers_at(task.commit);
        let now = Utc::now();
        self.cache
            .get_or(task.blob, now, || trust::verify(spec, &signers, now))
            .map(|_| ())
            .map_err(|why| why.to_string())
    }

    fn signed_by(&self, spec: &TaskSpec) -> Option<SignedBy> {
        let signers = self.lock().signers.clone();
        trust::verify(spec, &signers, Utc::now()).ok()
    }

    /// Grid signer changes ignored, allowed-signers lines skipped.
    fn take_lines(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().pending)
    }
}

/// Reads an allowed-signers file for `--allowed-signers`, naming every line that does not read.
pub fn read_allowed_signers(path: &Path) -> Result<AllowedSigners> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--allowed-signers {}: cannot read", path.display()))?;
    AllowedSigners::parse(&path.display().to_string(), &text)
        .map_err(|errors| anyhow::anyhow!("--allowed-signers: {}", errors.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::split_signature;

    #[test]
    fn the_signature_header_is_cut_out_of_the_payload() {
        let raw = "tree t\nparent p\nauthor a\ncommitter c\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n\nmessage\n";
        let (payload, sig) = split_signature(raw);
        assert_eq!(
            payload,
            "tree t\nparent p\nauthor a\ncommitter c\n\nmessage\n"
        );
        assert_eq!(
            sig.unwrap(),
            "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
        );
        let (payload, sig) = split_signature("tree t\n\nm\n");
        assert_eq!((payload.as_str(), sig), ("tree t\n\nm\n", None));
    }
}

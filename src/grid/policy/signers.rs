//! Whom a worker trusts to sign tasks (docs/ARCHITECTURE.md#signed-tasks): the operator's
//! `--allowed-signers` file, and with `--trust-grid-signers` the grid's own
//! `.dgrid/allowed_signers`, as far as the chain of signed changes from the commit the operator
//! pinned (`dgrid.trustRoot`) reaches (`signer_chain`). A broken chain means no grid signers,
//! said once, never an older set; the change accepted last is kept in the node's state dir, so a
//! history rewound to before it is refused after a restart too. So a collaborator who can push
//! can neither add their own key nor undo a signed revocation.

use super::signer_chain::{grid_signers, GRID_SIGNERS_PATH};
use crate::grid::policy::admission::TaskTrust;
use crate::grid::read::snapshot::TaskRef;
use crate::task::{SignedBy, TaskSpec};
use crate::trust::{self, AllowedSigners, VerdictCache};
use anyhow::{Context, Result};
use chrono::Utc;
use gix::ObjectId;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Where the change accepted last is kept (`root change`), so that a restarted worker too
    /// refuses a history rewound to before it.
    accepted: Option<PathBuf>,
}

/// The grid's signers as `--trust-grid-signers` follows them: the worker's clone, the pinned
/// root, and the file in the node's state dir that keeps the change accepted last.
pub struct GridSigners {
    pub dir: PathBuf,
    pub root: String,
    pub accepted: Option<PathBuf>,
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
    pub fn new(operator: Option<AllowedSigners>, grid: Option<GridSigners>) -> Trust {
        let mut current = Current::default();
        if let Some(op) = &operator {
            current.signers = Arc::new(op.clone());
            for line in &op.skipped {
                current.say(line.clone());
            }
        }
        Trust {
            operator,
            grid: grid.map(|g| GridChain {
                dir: g.dir,
                root: g.root,
                accepted: g.accepted,
            }),
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
        let text = match grid_signers(
            &chain.dir,
            &chain.root,
            tip,
            chain.accepted_change().as_deref(),
        ) {
            Ok(found) => {
                chain.accept(&found.root, &found.change, &mut current);
                found.text
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

impl GridChain {
    /// The change accepted last under this root (a file for another root is not this one's).
    fn accepted_change(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.accepted.as_ref()?).ok()?;
        let (root, change) = text.trim().split_once(' ')?;
        let root_here = crate::gitcmd::run(
            &self.dir,
            &[
                "rev-parse",
                "--verify",
                &format!("{}^{{commit}}", self.root),
            ],
        )
        .ok()?;
        (root_here.stdout.trim() == root).then(|| change.to_string())
    }

    /// Keeps `change` as accepted; said (once) when it cannot be written, as a restart would
    /// then not know it.
    fn accept(&self, root: &str, change: &str, current: &mut Current) {
        let Some(path) = &self.accepted else { return };
        let line = format!("{root} {change}\n");
        if std::fs::read_to_string(path).ok().as_deref() == Some(line.as_str()) {
            return;
        }
        let write = || -> std::io::Result<()> {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &line)?;
            std::fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            current.say(format!(
                "cannot keep the accepted grid signers in {}: {e}",
                path.display()
            ));
        }
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

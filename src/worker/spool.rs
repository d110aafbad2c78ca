//! The local spool: a finished task's result is written here, flushed to disk, before it is pushed,
//! so a worker killed between the two pushes it when it starts again. Never lost, never twice: the
//! grid transition recognises a result that is already recorded.

use crate::task::{self, Attempt, Limits, TaskResult};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never a part: a
/// temporary file, fsync, rename, fsync of the folder.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot flush {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the spool {}", dir.display()))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self, id: &str, attempt: Attempt) -> PathBuf {
        self.dir.join(format!("{id}.{attempt}.json"))
    }

    pub fn write(&self, result: &TaskResult) -> Result<()> {
        let path = self.path(&result.task_id, result.attempt());
        write_durably(&path, &result.to_json())
    }

    pub fn remove(&self, id: &str, attempt: Attempt) {
        let _ = std::fs::remove_file(self.path(id, attempt));
    }

    /// Every spooled result. A file that does not parse is set aside as `.bad`, with a warning.
    pub fn load(&self, limits: &Limits) -> Result<Vec<TaskResult>> {
        let mut results = Vec::new();
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for path in names {
            let bytes = std::fs::read(&path)?;
            match task::parse_result(&path.display().to_string(), &bytes, limits) {
                Ok(r) => results.push(r),
                Err(problems) => {
                    eprintln!(
                        "warning: set aside an unreadable spooled result: {}",
                        crate::problem::Problems(problems)
                    );
                    let _ = std::fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        Ok(results)
    }
}

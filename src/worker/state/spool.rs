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
    /// A temporary file is a write cut short by a crash: its result was never spooled (the task's
    /// claim is taken back instead), so it is removed.
    pub fn load(&self, limits: &Limits) -> Result<Vec<TaskResult>> {
        let mut results = Vec::new();
        let paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot read the spool {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        let has_extension = |p: &Path, ext: &str| p.extension().is_some_and(|x| x == ext);
        for tmp in paths.iter().filter(|p| has_extension(p, "tmp")) {
            let _ = std::fs::remove_file(tmp);
        }
        let mut names: Vec<&PathBuf> = paths.iter().filter(|p| has_extension(p, "json")).collect();
        names.sort();
        for path in names {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            match task::parse_result(&path.display().to_string(), &bytes, limits) {
                Ok(r) => results.push(r),
                Err(problems) => {
                    crate::log::warning(&format!(
                        "set aside an unreadable spooled result: {}",
                        crate::problem::Problems(problems)
                    ));
                    let _ = std::fs::rename(path, path.with_extension("bad"));
                }
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_cut_short_by_a_crash_is_cleared_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("t1.3.tmp"), b"{\"task_id\": ").unwrap();
        assert!(spool.load(&Limits::default()).unwrap().is_empty());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_unreadable_result_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("t1.1.json"), b"not json").unwrap();
        assert!(spool.load(&Limits::default()).unwrap().is_empty());
        assert!(dir.path().join("t1.1.bad").exists());
    }
}

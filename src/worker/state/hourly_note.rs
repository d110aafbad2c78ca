//! The `--max-tasks-per-hour` window across processes: the wall-clock times of this node's task
//! starts in the last hour, `hourly-starts.json` in its folder of the state dir. The window itself
//! is `policy/hourly.rs` (on the monotonic clock); this note is what a restart, or the next `work
//! --once` from cron, takes back in, so that N per hour means N per hour, not N per run.
//!
//! An unreadable note is set aside with a warning (the window starts empty, as it did before the
//! note existed); the note is rewritten whole, durably, at each start.

use super::spool::write_durably;
use crate::log;
use crate::time::rfc3339;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

pub struct HourlyNote {
    path: PathBuf,
}

impl HourlyNote {
    pub fn open(node_dir: &Path) -> HourlyNote {
        HourlyNote {
            path: node_dir.join("hourly-starts.json"),
        }
    }

    /// The starts a previous process noted (none when there is no note).
    pub fn read(&self) -> Vec<DateTime<Utc>> {
        let Ok(bytes) = std::fs::read(&self.path) else {
            return Vec::new();
        };
        let times: Result<Vec<String>, String> =
            serde_json::from_slice(&bytes).map_err(|e| e.to_string());
        let parsed = times.and_then(|times| {
            times
                .iter()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| format!("{t:?}: {e}"))
                })
                .collect()
        });
        parsed.unwrap_or_else(|e| {
            log::warning(&format!(
                "{}: not a list of start times ({e}); the --max-tasks-per-hour window starts empty",
                self.path.display()
            ));
            Vec::new()
        })
    }

    /// Notes the starts in the window now (the whole list, replacing the note).
    pub fn write(&self, starts: &[DateTime<Utc>]) -> Result<()> {
        let times: Vec<String> = starts.iter().map(|t| rfc3339(*t)).collect();
        write_durably(&self.path, &serde_json::to_vec(&times)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_survives_a_restart_and_a_bad_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let note = HourlyNote::open(dir.path());
        assert!(note.read().is_empty());
        let at = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        note.write(&[at]).unwrap();
        assert_eq!(HourlyNote::open(dir.path()).read(), [at]);
        std::fs::write(dir.path().join("hourly-starts.json"), b"[1, 2").unwrap();
        assert!(HourlyNote::open(dir.path()).read().is_empty());
    }
}

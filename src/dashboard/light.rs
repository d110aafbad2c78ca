//! Light reads of task files for the status: only the fields a view shows (serde skips the rest),
//! and how a command, an output line and an age are shown.

use crate::grid::TaskRef;
use crate::task;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// How many queued tasks, and recent results, the status lists.
pub(super) const LIST_LIMIT: usize = 50;

/// A command for display: the shell string, or the argv joined by spaces.
pub(super) fn short_command(command: Option<&task::TaskCommand>) -> String {
    let text = match command {
        Some(task::TaskCommand::Shell(s)) => s.clone(),
        Some(task::TaskCommand::Argv(a)) => a.join(" "),
        None => String::new(),
    };
    shorten(&text)
}

pub(super) fn shorten(text: &str) -> String {
    let one_line = text.replace(['\n', '\r'], " ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(119).collect::<String>())
    } else {
        one_line
    }
}

pub(super) fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

pub(super) fn age(now: DateTime<Utc>, time: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds())
}

/// Like [`read`], in one object lookup instead of two: the size check first (`odb::read_blob`)
/// walks the whole delta chain of a packed blob to learn its size, without the pack's delta-base
/// cache, and for 100,000 queued files that walk cost as much CPU as reading them. Here the blob
/// is read and then measured: a file over the cap is dropped as unreadable, as `read` drops it,
/// at the price of holding it once (a one-shot reader, like `git cat-file`, not a worker).
pub(super) fn read_in_one_lookup<T: for<'de> Deserialize<'de>>(
    repo: &gix::Repository,
    task: &TaskRef,
) -> Option<T> {
    let blob = repo.find_blob(task.blob).ok()?;
    if blob.data.len() as u64 > task::MAX_FILE_BYTES {
        return None;
    }
    serde_json::from_slice(&blob.data).ok()
}

pub(super) fn read<T: for<'de> Deserialize<'de>>(
    repo: &gix::Repository,
    task: &TaskRef,
) -> Option<T> {
    let bytes = crate::grid::read_bytes(repo, task).ok()?;
    serde_json::from_slice(&bytes).ok()
}

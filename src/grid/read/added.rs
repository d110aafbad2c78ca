//! Who added a task file, and when: the author of the latest commit, in the history of the
//! snapshot's commit, that added the file at its path. A file of the Python implementation has no
//! `created_at` or `submitted_by`; this is where they come from (`docs/ARCHITECTURE.md#formats`).

use crate::gitcmd;
use crate::grid::read::task_ref::TaskRef;
use crate::task::{AddedBy, MAX_SHORT_TEXT};
use gix::ObjectId;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Answers already found, by path and content: a worker reads the queue on every cycle, and
/// asking git once per such file is enough.
static KNOWN: Mutex<Option<HashMap<(String, ObjectId), AddedBy>>> = Mutex::new(None);

fn known(task: &TaskRef) -> Option<AddedBy> {
    let cache = KNOWN.lock().ok()?;
    cache
        .as_ref()?
        .get(&(task.path.clone(), task.blob))
        .cloned()
}

/// At most this many answers are kept: a grid flooded with such files costs a worker memory in
/// proportion, so past this the cache starts again (and git is asked again).
const MAX_KNOWN: usize = 100_000;

fn remember(task: &TaskRef, added: &AddedBy) {
    if let Ok(mut cache) = KNOWN.lock() {
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= MAX_KNOWN {
            cache.clear();
        }
        cache.insert((task.path.clone(), task.blob), added.clone());
    }
}

/// Who added `task`'s file, and when.
pub(crate) fn added_by(repo: &gix::Repository, task: &TaskRef) -> Result<AddedBy, String> {
    if let Some(added) = known(task) {
        return Ok(added);
    }
    let found = scan(
        repo,
        task.commit,
        &[task.path.as_str()],
        std::slice::from_ref(&task.path),
    )?;
    let added = found.get(&task.path).cloned().ok_or_else(|| {
        format!(
            "no commit in the history of {} adds {}",
            task.commit, task.path
        )
    })?;
    remember(task, &added);
    Ok(added)
}

/// [`added_by`] for many files at once, with one walk over the history per commit read (what
/// `status` needs for a queue with many such files). Files no commit adds are left out.
pub fn added_by_all(repo: &gix::Repository, tasks: &[&TaskRef]) -> HashMap<String, AddedBy> {
    let mut out = HashMap::new();
    let mut wanted: HashMap<ObjectId, Vec<&TaskRef>> = HashMap::new();
    for &task in tasks {
        match known(task) {
            Some(added) => {
                out.insert(task.path.clone(), added);
            }
            None => wanted.entry(task.commit).or_default().push(task),
        }
    }
    for (commit, group) in wanted {
        // The folders, not every path: a queue of 100,000 files would not fit on a command line.
        let folders: BTreeSet<&str> = group
            .iter()
            .map(|t| {
                t.path
                    .rsplit_once('/')
                    .map_or(t.path.as_str(), |(dir, _)| dir)
            })
            .collect();
        let folders: Vec<&str> = folders.into_iter().collect();
        let paths: Vec<String> = group.iter().map(|t| t.path.clone()).collect();
        let Ok(found) = scan(repo, commit, &folders, &paths) else {
            continue;
        };
        for task in group {
            if let Some(added) = found.get(&task.path) {
                remember(task, added);
                out.insert(task.path.clone(), added.clone());
            }
        }
    }
    out
}

/// Walks the history of `commit` below `pathspecs`, newest first, until each of `paths` was seen
/// added (the latest add is the one that counts), or the history ends.
fn scan(
    repo: &gix::Repository,
    commit: ObjectId,
    pathspecs: &[&str],
    paths: &[String],
) -> Result<HashMap<String, AddedBy>, String> {
    let commit_hex = commit.to_string();
    let mut args = vec![
        "log",
        "--diff-filter=A",
        "--no-renames",
        "--name-only",
        // \x01 starts a commit's line: the author's time, email and name, NUL-separated.
        "--format=%x01%at%x00%ae%x00%an",
        &commit_hex,
        "--",
    ];
    args.extend_from_slice(pathspecs);
    let mut missing: std::collections::HashSet<&str> = paths.iter().map(String::as_str).collect();
    let mut found = HashMap::new();
    let mut author: Option<AddedBy> = None;
    gitcmd::each_line(repo.path(), &args, |line| {
        if let Some(header) = line.strip_prefix('\u{1}') {
            author = parse_author(header);
        } else if let Some(added) = &author {
            if missing.remove(line) {
                found.insert(line.to_string(), added.clone());
            }
        }
        !missing.is_empty()
    })
    .map_err(|e| format!("{e:#}"))?;
    Ok(found)
}

/// `<unix time>\0<email>\0<name>`: the time as RFC 3339 UTC, the email or else the name (cut to
/// what the field allows), "unknown" when both are empty.
fn parse_author(header: &str) -> Option<AddedBy> {
    let mut parts = header.splitn(3, '\0');
    let secs = parts.next()?.parse::<i64>().ok()?;
    let when = chrono::DateTime::from_timestamp(secs, 0)?;
    let who = parts
        .map(str::trim)
        .find(|w| !w.is_empty())
        .unwrap_or("unknown");
    Some(AddedBy {
        created_at: crate::time::rfc3339(when),
        submitted_by: at_most(who, MAX_SHORT_TEXT),
    })
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn at_most(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_author_line_gives_utc_time_and_email_else_name() {
        let added = parse_author("1714979289\0py@example.com\0Py Thon").unwrap();
        assert_eq!(added.created_at, "2024-05-06T07:08:09Z");
        assert_eq!(added.submitted_by, "py@example.com");
        assert_eq!(parse_author("0\0\0Py").unwrap().submitted_by, "Py");
        assert_eq!(parse_author("0\0 \0 ").unwrap().submitted_by, "unknown");
        assert!(parse_author("soon\0a\0b").is_none());
        let long = "é".repeat(MAX_SHORT_TEXT);
        let cut = parse_author(&format!("0\0{long}\0x")).unwrap().submitted_by;
        assert!(cut.len() <= MAX_SHORT_TEXT && cut.chars().all(|c| c == 'é'));
    }
}

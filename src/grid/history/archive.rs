//! The archive (`docs/ARCHITECTURE.md#archive`): what `git dgrid archive` moves off `main` and how
//! the branch `dgrid-archive` holds it. This file is the plan and the reading side: choosing the
//! results to move (the retention rule), building the edits of both trees, and finding an archived
//! task or the running totals. Landing the two commits in one atomic push is `archive_run`.
//!
//! The archive's tree:
//!
//! ```text
//! results/<YYYY-MM-DD>/<shard>.jsonl   one line per result: {"id","path","result","state"}
//! index/<shard>.json                   {"<id>": {"file": "results/…jsonl", "state": "completed"}}
//! totals.json                          {"completed": N, "failed": M}: running counts
//! ```
//!
//! The day is the result's finish time (UTC), the shard that of the id on `main`, so a lookup reads
//! one index shard and one day file, and `status` reads one small blob: a copy of `totals.json`
//! in `main`'s own tree (`dgrid-archive.json`), so it never fetches the archive. Compaction's kept history
//! hangs off the same branch as extra parents of its commits; their trees stay the archive's.

use crate::grid::read::snapshot::{self, Snapshot, TaskRef};
use crate::layout::{self, State};
use crate::odb::{self, Blob, Edit};
use crate::task::{self, Limits, TaskResult};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use gix::ObjectId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

pub(crate) const TOTALS_PATH: &str = "totals.json";
/// The same running totals in `main`'s tree, written in the same atomic push: `status` reads them
/// there and never fetches the archive (a fresh clone of `main` alone counts everything).
pub(crate) const MAIN_TOTALS_PATH: &str = "dgrid-archive.json";
const RESULTS_DIR: &str = "results";
const INDEX_DIR: &str = "index";
/// Larger than any archive file git-dgrid writes (a day's results of one shard); a bigger blob is
/// somebody else's file and is refused, naming it, rather than read into memory.
const MAX_ARCHIVE_FILE: u64 = 1 << 30;

/// How many results `main` keeps: the newest `keep`, and those younger than `older_than`;
/// whichever keeps more (a result is archived only when both let it go). `None`: no such bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retain {
    pub keep: Option<usize>,
    pub older_than: Option<chrono::Duration>,
}

impl Retain {
    /// `dgrid.retain`'s default: the newest 10,000 results or 7 days, whichever keeps more.
    pub const DEFAULT: &'static str = "10000,7d";
}

/// A duration as `7d`, `12h`, `30m`, `90s` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 7d, 12h, 30m)"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(secs)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(|| format!("{text:?} is too long"))
}

impl FromStr for Retain {
    type Err = String;

    /// `10000`, `7d`, or both comma-separated (`10000,7d`).
    fn from_str(text: &str) -> Result<Retain, String> {
        let mut retain = Retain {
            keep: None,
            older_than: None,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.chars().all(|c| c.is_ascii_digit()) {
                if retain.keep.is_some() {
                    return Err(format!("{text:?}: two counts"));
                }
                retain.keep = Some(part.parse().map_err(|_| format!("{part:?} is too large"))?);
            } else {
                if retain.older_than.is_some() {
                    return Err(format!("{text:?}: two durations"));
                }
                retain.older_than = Some(parse_duration(part)?);
            }
        }
        if retain.keep.is_none() && retain.older_than.is_none() {
            return Err(format!(
                "{text:?}: expected a count, a duration or both (e.g. 10000,7d)"
            ));
        }
        Ok(retain)
    }
}

impl fmt::Display for Retain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(k) = self.keep {
            parts.push(k.to_string());
        }
        if let Some(d) = self.older_than {
            let s = d.num_seconds();
            parts.push(match s {
                _ if s % 86_400 == 0 => format!("{}d", s / 86_400),
                _ if s % 3600 == 0 => format!("{}h", s / 3600),
                _ if s % 60 == 0 => format!("{}m", s / 60),
                _ => format!("{s}s"),
            });
        }
        f.write_str(&parts.join(","))
    }
}

/// The archive's running counts (`totals.json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub completed: u64,
    pub failed: u64,
}

impl Totals {
    fn slot(&mut self, state: State) -> &mut u64 {
        match state {
            State::Failed => &mut self.failed,
            _ => &mut self.completed,
        }
    }
}

/// Where an archived id is: `index/<shard>.json`'s entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub file: String,
    pub state: String,
}

/// One line of a day file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    pub state: String,
    /// Where the result was on `main`.
    pub path: String,
    pub result: serde_json::Value,
}

/// An archived task as `show` and `logs` read it.
pub struct Found {
    pub file: String,
    pub line: Line,
    pub state: State,
}

impl Found {
    /// The result, parsed as the file it was on `main`.
    pub fn result(&self, limits: &Limits) -> Result<TaskResult> {
        let bytes = serde_json::to_vec(&self.line.result)?;
        task::parse_result(&self.line.path, &bytes, limits)
            .map_err(|p| crate::problem::Problems(p).into())
    }
}

/// The archive's tree at one commit (or none yet), read on demand.
pub struct View<'r> {
    pub repo: &'r gix::Repository,
    pub commit: Option<ObjectId>,
    tree: Option<ObjectId>,
}

impl<'r> View<'r> {
    pub fn at(repo: &'r gix::Repository, commit: Option<ObjectId>) -> Result<View<'r>> {
        let tree = commit.map(|c| odb::commit_tree(repo, c)).transpose()?;
        Ok(View { repo, commit, tree })
    }

    /// The bytes of `path` in the archive, if it is there.
    fn file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(tree) = self.tree else {
            return Ok(None);
        };
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let Some(dir_tree) = odb::subtree(self.repo, tree, dir)? else {
            return Ok(None);
        };
        let object = self.repo.find_tree(dir_tree)?;
        let decoded = object.decode().context("cannot decode an archive tree")?;
        let Some(entry) = decoded.entries.iter().find(|e| e.filename == name) else {
            return Ok(None);
        };
        if !entry.mode.is_blob() {
            bail!("dgrid-archive: {path}: is not a regular file");
        }
        let oid = entry.oid.to_owned();
        drop(decoded);
        match odb::read_blob(self.repo, oid, MAX_ARCHIVE_FILE)? {
            Blob::Bytes(b) => Ok(Some(b)),
            Blob::TooLarge(n) => bail!("dgrid-archive: {path}: is {n} bytes, too large to read"),
        }
    }

    /// The running totals (zero without an archive).
    pub fn totals(&self) -> Result<Totals> {
        match self.file(TOTALS_PATH)? {
            None => Ok(Totals::default()),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                anyhow!(
                    "dgrid-archive: {TOTALS_PATH}: not {{\"completed\": N, \"failed\": M}}: {e}"
                )
            }),
        }
    }

    /// `index/<shard>.json`: id → where.
    pub fn index(&self, shard: &str) -> Result<BTreeMap<String, IndexEntry>> {
        let path = index_path(shard);
        match self.file(&path)? {
            None => Ok(BTreeMap::new()),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow!("dgrid-archive: {path}: not an index of ids: {e}")),
        }
    }

    /// The lines of a day file, as text (a line that does not read is kept as it is).
    fn lines(&self, path: &str) -> Result<Vec<String>> {
        Ok(match self.file(path)? {
            None => Vec::new(),
            Some(bytes) => String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// The archived task `id`, if the archive has it.
    pub fn find(&self, id: &str) -> Result<Option<Found>> {
        let Some(entry) = self.index(&layout::shard(id))?.remove(id) else {
            return Ok(None);
        };
        let state = parse_state(&entry.state).ok_or_else(|| {
            anyhow!(
                "dgrid-archive: {}: {id}: state {:?} is not completed or failed",
                index_path(&layout::shard(id)),
                entry.state
            )
        })?;
        for (n, text) in self.lines(&entry.file)?.iter().enumerate() {
            if !text.contains(id) {
                continue;
            }
            let line: Line = serde_json::from_str(text).map_err(|e| {
                anyhow!(
                    "dgrid-archive: {}: line {}: not an archived result: {e}",
                    entry.file,
                    n + 1
                )
            })?;
            if line.id == id {
                return Ok(Some(Found {
                    file: entry.file,
                    line,
                    state,
                }));
            }
        }
        bail!(
            "dgrid-archive: {}: has no line for {id}, though the index names it",
            entry.file
        )
    }
}

fn parse_totals(bytes: Option<Vec<u8>>, name: &str) -> Result<Totals> {
    match bytes {
        None => Ok(Totals::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "{name}: not {{\"completed\": N, \"failed\": M}} (counts of archived results): {e}"
            )
        }),
    }
}

/// The archive's running totals as `main`'s tree at `tip` has them (zero: nothing archived).
pub fn main_totals(repo: &gix::Repository, tip: Option<ObjectId>) -> Result<Totals> {
    let view = View::at(repo, tip)?;
    parse_totals(view.file(MAIN_TOTALS_PATH)?, MAIN_TOTALS_PATH)
}

fn parse_state(name: &str) -> Option<State> {
    State::from_name(name).filter(|s| s.holds_results())
}

fn index_path(shard: &str) -> String {
    format!("{INDEX_DIR}/{shard}.json")
}

fn day_path(day: &str, shard: &str) -> String {
    format!("{RESULTS_DIR}/{day}/{shard}.jsonl")
}

/// The finish time of a result (its `finished_at`, else `timestamp`); `None` when neither reads.
fn finished(result: &TaskResult) -> Option<DateTime<Utc>> {
    let text = result.finished_at.as_deref().unwrap_or(&result.timestamp);
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A result on `main` that may be archived.
struct Candidate<'s> {
    task: &'s TaskRef,
    at: Option<DateTime<Utc>>,
    value: serde_json::Value,
    result: TaskResult,
}

/// What one archive run writes.
pub(crate) struct Plan {
    /// Removals from `main`.
    pub main: Vec<Edit>,
    /// Files of `dgrid-archive`.
    pub archive: Vec<Edit>,
    pub moved: usize,
    pub totals: Totals,
}

/// Chooses the results on `main` (at `snapshot`) that `retain` lets go and builds both trees'
/// edits against the archive at `view`; `None` when nothing is to move. A result file that does
/// not read, or an id with two files, stays on `main` (`validate` reports it).
pub(crate) fn plan(
    snapshot: &Snapshot,
    view: &View,
    retain: Retain,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<Option<Plan>> {
    let repo = view.repo;
    let mut candidates: Vec<Candidate> = Vec::new();
    for task in snapshot.tasks.iter().filter(|t| t.state.holds_results()) {
        if snapshot.is_duplicated(&task.id) {
            continue;
        }
        let Ok(bytes) = snapshot::read_bytes(repo, task) else {
            continue;
        };
        let Ok(result) = task::parse_result(&task.path, &bytes, limits) else {
            continue;
        };
        let Ok(value) = serde_json::from_slice(&bytes) else {
            continue;
        };
        candidates.push(Candidate {
            task,
            at: finished(&result),
            value,
            result,
        });
    }
    // Newest first; a result whose time does not read counts as the oldest.
    candidates.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.task.id.cmp(&b.task.id)));
    let cutoff = retain.older_than.map(|d| now - d);
    let chosen: Vec<Candidate> = candidates
        .into_iter()
        .enumerate()
        .filter(|(rank, c)| {
            let beyond_count = retain.keep.is_none_or(|k| *rank >= k);
            let old_enough = match (cutoff, c.at) {
                (None, _) | (_, None) => true,
                (Some(cut), Some(at)) => at < cut,
            };
            beyond_count && old_enough
        })
        .map(|(_, c)| c)
        .collect();
    if chosen.is_empty() {
        return Ok(None);
    }
    build(view, chosen, limits).map(Some)
}

fn build(view: &View, chosen: Vec<Candidate>, limits: &Limits) -> Result<Plan> {
    let mut totals = view.totals()?;
    let mut indexes: HashMap<String, BTreeMap<String, IndexEntry>> = HashMap::new();
    let mut days: HashMap<String, Vec<String>> = HashMap::new();
    let mut main = Vec::new();
    let moved = chosen.len();
    for c in chosen {
        let id = c.task.id.clone();
        let shard = layout::shard(&id);
        main.push(Edit::Remove {
            path: c.task.path.clone(),
        });
        if !indexes.contains_key(&shard) {
            indexes.insert(shard.clone(), view.index(&shard)?);
        }
        let existing = indexes[&shard].get(&id).cloned();
        match existing {
            // Already archived (a late result, a file pushed again around the hook): the
            // archived result stays the task's result and this one joins its `late_results`,
            // as on `main` (`record::record_result`); nothing is dropped.
            Some(entry) => {
                let lines = day_lines(view, &mut days, &entry.file)?;
                merge_late(lines, &entry.file, &id, &c.result, limits)?;
            }
            None => {
                let state = c.task.state;
                let day =
                    c.at.map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "undated".into());
                let file = day_path(&day, &shard);
                let line = Line {
                    id: id.clone(),
                    state: state.name().into(),
                    path: c.task.path.clone(),
                    result: c.value,
                };
                day_lines(view, &mut days, &file)?.push(serde_json::to_string(&line)?);
                *totals.slot(state) += 1;
                indexes.get_mut(&shard).expect("loaded above").insert(
                    id,
                    IndexEntry {
                        file,
                        state: state.name().into(),
                    },
                );
            }
        }
    }
    let mut archive = Vec::new();
    for (file, lines) in days {
        archive.push(Edit::Write {
            path: file,
            content: (lines.join("\n") + "\n").into_bytes(),
        });
    }
    for (shard, index) in indexes {
        archive.push(Edit::Write {
            path: index_path(&shard),
            content: (serde_json::to_string_pretty(&index)? + "\n").into_bytes(),
        });
    }
    write_totals(&mut archive, TOTALS_PATH, totals)?;
    write_totals(&mut main, MAIN_TOTALS_PATH, totals)?;
    archive.sort_by(|a, b| edit_path(a).cmp(edit_path(b)));
    Ok(Plan {
        main,
        archive,
        moved,
        totals,
    })
}

fn write_totals(edits: &mut Vec<Edit>, path: &str, totals: Totals) -> Result<()> {
    edits.push(Edit::Write {
        path: path.into(),
        content: (serde_json::to_string(&totals)? + "\n").into_bytes(),
    });
    Ok(())
}

/// The edits that add worker results for tasks only the archive holds (`late` results: the task
/// was taken over, finished elsewhere and archived before this node reported) to the archived
/// results' `late_results`, and the ids of `results` that the archive holds (recorded now or
/// before). A result for an id the archive does not hold is not for the archive.
pub(crate) fn plan_late(
    view: &View,
    results: &[TaskResult],
    limits: &Limits,
) -> Result<(Vec<Edit>, Vec<String>)> {
    let mut days: HashMap<String, Vec<String>> = HashMap::new();
    let mut held = Vec::new();
    let mut changed = false;
    for result in results {
        let id: &str = &result.task_id;
        let Some(entry) = view.index(&layout::shard(id))?.remove(id) else {
            continue;
        };
        let lines = day_lines(view, &mut days, &entry.file)?;
        changed |= merge_late(lines, &entry.file, id, result, limits)?;
        held.push(id.to_string());
    }
    let mut edits = Vec::new();
    if changed {
        for (file, lines) in days {
            edits.push(Edit::Write {
                path: file,
                content: (lines.join("\n") + "\n").into_bytes(),
            });
        }
    }
    Ok((edits, held))
}

fn edit_path(edit: &Edit) -> &str {
    match edit {
        Edit::Write { path, .. } | Edit::Remove { path } => path,
    }
}

/// The lines of `file` as this plan has them (read from the archive the first time).
fn day_lines<'d>(
    view: &View,
    days: &'d mut HashMap<String, Vec<String>>,
    file: &str,
) -> Result<&'d mut Vec<String>> {
    if !days.contains_key(file) {
        days.insert(file.to_string(), view.lines(file)?);
    }
    Ok(days.get_mut(file).expect("inserted above"))
}

/// Adds `late` to the `late_results` of `id`'s line in `lines` (unless that node's attempt is
/// there already).
fn merge_late(
    lines: &mut [String],
    file: &str,
    id: &str,
    late: &TaskResult,
    limits: &Limits,
) -> Result<bool> {
    for text in lines.iter_mut() {
        let Ok(mut line) = serde_json::from_str::<Line>(text) else {
            continue;
        };
        if line.id != id {
            continue;
        }
        let bytes = serde_json::to_vec(&line.result)?;
        let mut kept = task::parse_result(&line.path, &bytes, limits).map_err(|p| {
            anyhow!(
                "dgrid-archive: {file}: {id}: {}",
                crate::problem::Problems(p)
            )
        })?;
        let attempt = late.attempt();
        let same = |node: &str, a: task::Attempt| node == late.node_id && a == attempt;
        let there = same(&kept.node_id, kept.attempt())
            || kept
                .late_results
                .iter()
                .any(|l| same(&l.node_id, l.attempt));
        if !there {
            kept.late_results
                .push(crate::grid::plan::record::late(late));
            line.result = serde_json::to_value(&kept)?;
            *text = serde_json::to_string(&line)?;
        }
        return Ok(!there);
    }
    bail!("dgrid-archive: {file}: has no line for {id}, though the index names it")
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;

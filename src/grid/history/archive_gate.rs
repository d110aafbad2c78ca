//! The worker's check that a queued task's id is not archived (docs/ARCHITECTURE.md#archive):
//! a signed task re-queued by plain git after `archive` would otherwise run again. Cheap: a
//! `main` whose `dgrid-archive.json` counts nothing has no archive to ask;
//! otherwise the archive is fetched only when those counts change (an archive run moves both
//! refs at once and always rewrites them), and each index shard is read once per archive tip.

use super::archive::{self, IndexEntry, Totals, View};
use super::archive_run::fetch_archive;
use crate::grid::engine::grid::Grid;
use crate::grid::policy::admission::ArchiveCheck;
use crate::grid::read::snapshot::TaskRef;
use crate::layout;
use gix::ObjectId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Archived ids as of the `main` a task was read from.
pub struct ArchiveGate {
    state: Mutex<State>,
}

struct State {
    grid: Grid,
    /// The `main` commit last looked at, and the archive counts it had.
    main: Option<ObjectId>,
    totals: Option<Totals>,
    /// The archive's tip as fetched for those counts; `None`: nothing archived.
    tip: Option<ObjectId>,
    shards: HashMap<String, BTreeMap<String, IndexEntry>>,
}

impl ArchiveGate {
    /// `grid`: a handle of its own on the worker's clone (the gate fetches the archive).
    pub fn new(grid: Grid) -> ArchiveGate {
        ArchiveGate {
            state: Mutex::new(State {
                grid,
                main: None,
                totals: None,
                tip: None,
                shards: HashMap::new(),
            }),
        }
    }
}

impl State {
    /// Brings the archive up to `main`'s counts. An archive that cannot be read now leaves the
    /// last one known (the next `main` asks again).
    fn follow(&mut self, main: ObjectId) {
        if self.main == Some(main) {
            return;
        }
        self.main = Some(main);
        let Ok(totals) = archive::main_totals(&self.grid.repo, Some(main)) else {
            return;
        };
        if self.totals == Some(totals) {
            return;
        }
        let tip = if totals == Totals::default() {
            Ok(None)
        } else {
            fetch_archive(&self.grid)
        };
        if let Ok(tip) = tip {
            self.totals = Some(totals);
            if tip != self.tip {
                self.tip = tip;
                self.shards.clear();
            }
        }
    }
}

impl ArchiveCheck for ArchiveGate {
    fn archived(&self, task: &TaskRef) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.follow(task.commit);
        let tip = state.tip?;
        let shard = layout::shard(&task.id);
        if !state.shards.contains_key(&shard) {
            let index = View::at(&state.grid.repo, Some(tip))
                .and_then(|view| view.index(&shard))
                .unwrap_or_default();
            state.shards.insert(shard.clone(), index);
        }
        state.shards[&shard].get(&task.id).map(|e| e.file.clone())
    }
}

/// `validate` and the pre-push hook: a queued or claimed file (in `scope`, when given) whose id
/// the archive already holds is a problem of its `id` field. Reads the archive as last fetched
/// into this clone (from `remote`, or the grid's own branch), first found, without asking the remote: a clone that never fetched
/// `dgrid-archive` checks nothing here, and workers refuse the id all the same.
pub fn archived_problems(
    dir: &std::path::Path,
    repo: &gix::Repository,
    remote: &str,
    entries: &[crate::validate::Entry],
    scope: Option<&std::collections::BTreeSet<String>>,
) -> anyhow::Result<Vec<crate::problem::Problem>> {
    use crate::layout::{classify, PathKind, State};
    let refs = [
        format!("refs/dgrid/{remote}/archive"),
        format!("refs/remotes/{remote}/dgrid-archive"),
        "refs/heads/dgrid-archive".to_string(),
    ];
    let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
    let Some(tip) = super::archive_run::local_archive(dir, &refs)? else {
        return Ok(Vec::new());
    };
    let view = View::at(repo, Some(tip))?;
    let mut shards: HashMap<String, BTreeMap<String, IndexEntry>> = HashMap::new();
    let mut problems = Vec::new();
    for entry in entries {
        if scope.is_some_and(|s| !s.contains(&entry.path)) {
            continue;
        }
        let Ok(PathKind::Task { state, stem, .. }) = classify(&entry.path) else {
            continue;
        };
        if !matches!(state, State::Queue | State::InProgress) {
            continue;
        }
        let shard = layout::shard(&stem);
        if !shards.contains_key(&shard) {
            shards.insert(shard.clone(), view.index(&shard).unwrap_or_default());
        }
        if let Some(found) = shards[&shard].get(&stem) {
            problems.push(crate::problem::Problem::field(
                &entry.path,
                "id",
                format!(
                    "task id {stem:?} is archived in dgrid-archive ({}); ids are never reused, and workers never run it",
                    found.file
                ),
            ));
        }
    }
    Ok(problems)
}

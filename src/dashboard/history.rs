//! What the history of `main` tells: which results are newest, and the series the dashboard charts
//! (tasks finished per hour, queue length over time, throughput per node). Read with gix, diffing
//! each commit against its first parent and skipping identical subtrees.
//!
//! A shallow clone is enough: the charts read back to the start of the oldest hour of the window,
//! and history ends quietly at the first commit whose parent was not fetched.

use crate::grid::{changed_paths_under, queue_length};
use crate::layout::{self, PathKind, State};
use anyhow::Result;
use chrono::{DateTime, Utc};
use gix::ObjectId;

/// A commit on the first-parent line of `main`, newest first.
struct Step {
    id: ObjectId,
    time: i64,
    author: String,
    /// Written by a worker (not by a person cancelling, retrying or editing by hand).
    by_node: bool,
    /// The root commit `git dgrid compact` made: it holds the old tip's tree unchanged, so the
    /// results in it were finished before, not by it (diffed against nothing, it would seem to
    /// add every result on `main` at the hour of the compaction).
    compaction_root: bool,
}

fn first_parent_line(
    repo: &gix::Repository,
    tip: ObjectId,
    max: usize,
    since: Option<i64>,
) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut current = Some(tip);
    while let Some(id) = current {
        if steps.len() >= max {
            break;
        }
        let commit = repo.find_commit(id)?;
        let time = commit.time()?.seconds;
        if since.is_some_and(|s| time < s) {
            break;
        }
        let signature = commit.author()?;
        let author = signature.name.to_string();
        let by_node = signature
            .email
            .to_string()
            .ends_with(crate::grid::NODE_EMAIL_DOMAIN);
        let parent = commit.parent_ids().next().map(|p| p.detach());
        let compaction_root = parent.is_none() && is_compaction(&commit.message_raw()?.to_string());
        // The edge of a shallow clone (the dashboard workflow fetches two days): a commit whose
        // parent is not here cannot be diffed, so what it changed is unknown and history ends.
        if parent.is_some_and(|p| !repo.has_object(p)) {
            break;
        }
        current = parent;
        steps.push(Step {
            id,
            time,
            author,
            by_node,
            compaction_root,
        });
    }
    Ok(steps)
}

fn is_compaction(message: &str) -> bool {
    let trailer = format!("{}: ", crate::grid::COMPACTED_FROM_TRAILER);
    message.lines().any(|line| line.starts_with(&trailer))
}

/// Ids of results a commit added or rewrote, with their state.
fn finished_in(repo: &gix::Repository, commit: ObjectId) -> Result<Vec<(String, State)>> {
    let results = [State::Completed.dir(), State::Failed.dir()];
    Ok(changed_paths_under(repo, &[commit], &results)?
        .into_iter()
        .filter_map(|path| match layout::classify(&path) {
            Ok(PathKind::Task { state, stem, .. }) if state.holds_results() => Some((stem, state)),
            _ => None,
        })
        .collect())
}

/// The ids of the `n` newest results, newest first (looking back at most 2,000 commits).
pub fn recent_results(
    repo: &gix::Repository,
    tip: Option<ObjectId>,
    n: usize,
) -> Result<Vec<String>> {
    let Some(tip) = tip else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for step in first_parent_line(repo, tip, 2000, None)? {
        for (id, _) in finished_in(repo, step.id)? {
            if ids.len() < n && seen.insert(id.clone()) {
                ids.push(id);
            }
        }
        if ids.len() >= n {
            break;
        }
    }
    Ok(ids)
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Series {
    /// (hour start, unix seconds; completed, failed) for each of the last 48 hours, oldest first.
    pub finished_per_hour: Vec<(i64, u32, u32)>,
    /// (unix seconds, queued tasks), oldest first, sampled.
    pub queue_length: Vec<(i64, usize)>,
    /// (node, results recorded) over the window, most first.
    pub per_node: Vec<(String, u32)>,
    /// Of the failed results of the last hour, those cancelled: a person's choice, not a failure
    /// the dashboard should raise.
    pub cancelled_last_hour: u32,
}

/// Whether the failed result `id` as written by `commit` says `cancelled` (unreadable: not).
fn cancelled(repo: &gix::Repository, commit: ObjectId, id: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(default)]
        status: String,
    }
    let path = layout::task_path(State::Failed, id);
    let entry = repo
        .find_commit(commit)
        .ok()
        .and_then(|c| c.tree().ok())
        .and_then(|t| t.lookup_entry_by_path(&path).ok().flatten());
    let Some(entry) = entry else { return false };
    let Ok(blob) = repo.find_blob(entry.object_id()) else {
        return false;
    };
    serde_json::from_slice::<Status>(&blob.data).is_ok_and(|s| s.status == "cancelled")
}

/// The dashboard's charts over the last `hours` hours.
pub fn series(
    repo: &gix::Repository,
    tip: Option<ObjectId>,
    now: DateTime<Utc>,
    hours: i64,
) -> Result<Series> {
    let mut series = Series::default();
    let start_hour = now.timestamp() - now.timestamp().rem_euclid(3600) - (hours - 1) * 3600;
    series.finished_per_hour = (0..hours).map(|h| (start_hour + h * 3600, 0, 0)).collect();
    let Some(tip) = tip else { return Ok(series) };
    let steps = first_parent_line(repo, tip, 20_000, Some(start_hour))?;
    let mut per_node: std::collections::BTreeMap<String, u32> = Default::default();
    for step in steps.iter().filter(|s| !s.compaction_root) {
        for (id, state) in finished_in(repo, step.id)? {
            let bucket = ((step.time - start_hour) / 3600) as usize;
            if let Some(slot) = series.finished_per_hour.get_mut(bucket) {
                match state {
                    State::Completed => slot.1 += 1,
                    _ => slot.2 += 1,
                }
            }
            // Only the last hour's failures are read again: the health line names them.
            let last_hour = bucket + 1 == series.finished_per_hour.len();
            if last_hour && state == State::Failed && cancelled(repo, step.id, &id) {
                series.cancelled_last_hour += 1;
            }
            // Results per *node*: a person's `cancel` writes a result too, but ran nothing.
            if step.by_node {
                *per_node.entry(step.author.clone()).or_default() += 1;
            }
        }
    }
    let mut per_node: Vec<(String, u32)> = per_node.into_iter().collect();
    per_node.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    series.per_node = per_node;
    // Queue length at up to 120 commits spread over the window (counting is a tree walk each).
    let stride = (steps.len() / 120).max(1);
    for step in steps.iter().step_by(stride).rev() {
        series
            .queue_length
            .push((step.time, queue_length(repo, step.id)?));
    }
    if series.queue_length.is_empty() {
        series
            .queue_length
            .push((now.timestamp(), queue_length(repo, tip)?));
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::testkit::{file, grid, result};
    use crate::grid::Identity;

    #[test]
    fn results_per_node_count_only_what_nodes_wrote() {
        let fx = grid(&[]);
        let [(path_a, a), (path_b, b)] = [
            file(State::Completed, "a", result("a", "n1", "success", 1)),
            file(
                State::Failed,
                "b",
                result("b", "alice@example.com", "cancelled", 1),
            ),
        ];
        let write = |path: String, content: serde_json::Value| crate::grid::testkit::Edit::Write {
            path,
            content: content.to_string().into_bytes(),
        };
        let by_node = fx.commit_as(fx.snapshot.tip, &[write(path_a, a)], &Identity::node("n1"));
        let person = Identity {
            name: "Alice".into(),
            email: "alice@example.com".into(),
        };
        let tip = fx.commit_as(Some(by_node), &[write(path_b, b)], &person);
        let series = series(&fx.repo, Some(tip), chrono::Utc::now(), 48).unwrap();
        assert_eq!(series.per_node, [("n1".to_string(), 1)]);
        let finished: u32 = series.finished_per_hour.iter().map(|h| h.1 + h.2).sum();
        assert_eq!(finished, 2, "the cancel still counts as a failed result");
        assert_eq!(series.cancelled_last_hour, 1, "and is known as a cancel");
    }

    #[test]
    fn a_compaction_root_adds_no_results_to_the_charts() {
        let fx = grid(&[]);
        let write =
            |(path, content): (String, serde_json::Value)| crate::grid::testkit::Edit::Write {
                path,
                content: content.to_string().into_bytes(),
            };
        let old = write(file(
            State::Completed,
            "old",
            result("old", "n1", "success", 1),
        ));
        let root = fx.commit_with_message(
            None,
            &[old],
            &Identity::node("maint"),
            "dgrid: compact history\n\nDgrid-Compacted-From: 0123abcd\n",
        );
        let new = write(file(State::Failed, "new", result("new", "n2", "failed", 1)));
        let tip = fx.commit_as(Some(root), &[new], &Identity::node("n2"));
        let series = series(&fx.repo, Some(tip), chrono::Utc::now(), 48).unwrap();
        let finished: Vec<(u32, u32)> = series
            .finished_per_hour
            .iter()
            .map(|h| (h.1, h.2))
            .filter(|h| *h != (0, 0))
            .collect();
        assert_eq!(finished, [(0, 1)], "only the result added after compaction");
        assert_eq!(series.per_node, [("n2".to_string(), 1)]);
    }
}

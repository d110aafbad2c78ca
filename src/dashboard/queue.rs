//! The queue part of the status: how long the oldest task has waited and the next tasks in claim
//! order. A grid may hold 100,000 queued tasks, so this reads of each file only what ordering needs
//! (priority, creation time, attempts), on every idle core, and reads the command of the few it
//! shows.

use super::light::{age, read, read_in_one_lookup, short_command, LIST_LIMIT};
use crate::grid::{added_by_all, Snapshot, TaskRef};
use crate::layout::State;
use crate::task;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// Seconds the oldest queued task has waited since it was created.
    pub oldest_wait: Option<i64>,
    /// The next tasks in claim order (priority, then age), at most 50.
    pub next: Vec<QueuedTask>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedTask {
    pub id: String,
    /// The command, shortened to 120 characters.
    pub command: String,
    pub priority: i64,
    pub created_at: String,
    pub wait: Option<i64>,
    pub attempts: u32,
    /// What the task waits for besides a free node, when the file says (its secrets: a node
    /// whose `--identity` decrypts them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
}

/// What ordering needs of a queued file; serde skips the rest (the command, the env, ...).
#[derive(Deserialize)]
struct Ordering {
    #[serde(default)]
    created_at: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    attempts: Option<u32>,
}

/// The command of a task shown in the list.
#[derive(Deserialize)]
struct Command {
    #[serde(default, alias = "script")]
    command: Option<task::TaskCommand>,
    #[serde(default)]
    secrets: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One queued task, ordered as claims pick them: highest priority, then oldest, then by id.
struct InLine<'s> {
    task: &'s TaskRef,
    priority: i64,
    created_at: String,
    /// `created_at` as the claim order reads it (`task::created_seconds`).
    created: i64,
    attempts: u32,
    /// Whether the file could be read at all (an unreadable one is not looked up in the history).
    readable: bool,
}

/// Below this many files, one thread is as fast as several.
const PARALLEL_FROM: usize = 2_000;

/// How many threads read the queue: one per core while the cores are idle, one when they are busy.
/// Each thread reads through its own handle, so each decodes again the delta bases the other
/// already holds in its cache: on a busy machine a second thread only adds CPU time (100,000 queued
/// files at a load of 13 on 2 cores: ~540-620 ms of CPU on two threads, ~450-490 ms on one, which
/// was also sooner). Busy: the last minute's load average leaves less than one core idle.
fn queue_threads(files: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if files < PARALLEL_FROM || cores < 2 {
        return 1;
    }
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok());
    match load {
        Some(load) if load + 1.0 > cores as f64 => 1,
        _ => cores,
    }
}

pub fn status(repo: &gix::Repository, snapshot: &Snapshot, now: DateTime<Utc>) -> QueueStatus {
    let queued: Vec<&TaskRef> = snapshot.in_state(State::Queue).collect();
    let mut line = in_line_on(repo, &queued, queue_threads(queued.len()));
    // A file of the Python era says no time: the commit that added it does, as when the grid
    // reads the whole file; one walk over the history for all of them.
    let untimed: Vec<&TaskRef> = line
        .iter()
        .filter(|t| t.created_at.is_empty() && t.readable)
        .map(|t| t.task)
        .collect();
    if !untimed.is_empty() {
        let found = added_by_all(repo, &untimed);
        for t in line.iter_mut().filter(|t| t.created_at.is_empty()) {
            if let Some(added) = found.get(&t.task.path) {
                t.created_at = added.created_at.clone();
                t.created = task::created_seconds(&t.created_at);
            }
        }
    }
    let oldest_wait = line.iter().filter_map(|t| age(now, &t.created_at)).max();
    // The grid's claim order (`task::claim_order`), not a copy of it.
    let order = |a: &InLine, b: &InLine| {
        task::claim_order(a.priority, a.created, &a.task.id)
            .cmp(&task::claim_order(b.priority, b.created, &b.task.id))
    };
    if line.len() > LIST_LIMIT {
        line.select_nth_unstable_by(LIST_LIMIT, order);
        line.truncate(LIST_LIMIT);
    }
    line.sort_by(order);
    let next = line
        .into_iter()
        .map(|t| {
            let command: Option<Command> = read(repo, t.task);
            let secrets = command
                .as_ref()
                .and_then(|c| c.secrets.as_ref())
                .filter(|s| !s.is_empty());
            let waits_for = secrets.map(|s| {
                let names: Vec<&str> = s.keys().map(String::as_str).collect();
                format!(
                    "a node that can decrypt its secrets ({}): --identity with a key they are encrypted to",
                    names.join(", ")
                )
            });
            QueuedTask {
                id: t.task.id.clone(),
                waits_for,
                command: short_command(command.and_then(|c| c.command).as_ref()),
                priority: t.priority,
                wait: age(now, &t.created_at),
                created_at: t.created_at,
                attempts: t.attempts,
            }
        })
        .collect();
    QueueStatus { oldest_wait, next }
}

/// [`in_line`] on `threads` threads, each over its own part of `queued`.
fn in_line_on<'s>(
    repo: &gix::Repository,
    queued: &[&'s TaskRef],
    threads: usize,
) -> Vec<InLine<'s>> {
    if threads < 2 {
        return in_line(repo, queued);
    }
    let chunk = queued.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = queued
            .chunks(chunk)
            .map(|part| {
                // Each thread reads through its own handle on the same object store.
                let repo = repo.clone();
                scope.spawn(move || in_line(&repo, part))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

fn in_line<'s>(repo: &gix::Repository, tasks: &[&'s TaskRef]) -> Vec<InLine<'s>> {
    tasks
        .iter()
        .map(|&task| {
            // An unreadable file still counts and still shows, at the end of the line.
            let ordering: Option<Ordering> = read_in_one_lookup(repo, task);
            let readable = ordering.is_some();
            let (created_at, priority, attempts) = ordering
                .map(|o| {
                    (
                        o.created_at,
                        o.priority.unwrap_or(0),
                        o.attempts.unwrap_or(0),
                    )
                })
                .unwrap_or_default();
            InLine {
                task,
                priority,
                created: task::created_seconds(&created_at),
                created_at,
                attempts,
                readable,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::testkit::{file, grid, now, task, with};
    use serde_json::json;

    /// Enough tasks for the parallel path: the list is the top 50 in claim order, as a full sort
    /// of every task would give, on one thread or two.
    #[test]
    fn the_next_tasks_are_the_first_in_claim_order() {
        let n = PARALLEL_FROM + 500;
        let files: Vec<_> = (0..n)
            .map(|i| {
                let id = format!("t{i:05}");
                let created = format!("2026-01-01T{:02}:{:02}:00Z", (i / 60) % 12, i % 60);
                let spec = with(task(&id), "created_at", json!(created));
                file(
                    State::Queue,
                    &id,
                    with(spec, "priority", json!((i % 7) as i64)),
                )
            })
            .collect();
        let fx = grid(&files);
        let status = status(&fx.repo, &fx.snapshot, now());
        let mut expected: Vec<(i64, String, String)> = (0..n)
            .map(|i| {
                let created = format!("2026-01-01T{:02}:{:02}:00Z", (i / 60) % 12, i % 60);
                ((i % 7) as i64, created, format!("t{i:05}"))
            })
            .collect();
        expected.sort_by(|a, b| (b.0, &a.1, &a.2).cmp(&(a.0, &b.1, &b.2)));
        let got: Vec<(i64, String, String)> = status
            .next
            .iter()
            .map(|t| (t.priority, t.created_at.clone(), t.id.clone()))
            .collect();
        assert_eq!(got, expected[..LIST_LIMIT].to_vec());
        assert!(status.next.iter().all(|t| !t.command.is_empty()));
        assert_eq!(status.oldest_wait, Some(12 * 3600));
        // One thread or two (as the machine's load decides) read the same line.
        let queued: Vec<&TaskRef> = fx.snapshot.in_state(State::Queue).collect();
        let read = |threads: usize| -> Vec<(String, i64, i64, u32)> {
            (in_line_on(&fx.repo, &queued, threads).into_iter())
                .map(|t| (t.task.id.clone(), t.priority, t.created, t.attempts))
                .collect()
        };
        assert_eq!(read(1), read(2));
    }
}

//! The terminal view of `git dgrid status`: aligned tables, colour on a terminal, plain in a pipe.

use super::model::{human_duration, Liveness, QuorumSummary, RunningTask, StatusModel};
use crate::node::Reputation;
use crate::task::Status;
use crate::text::clean;
use std::fmt::Write;

#[derive(Clone, Copy)]
enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Dim,
    Bold,
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Plain => return text.to_string(),
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Dim => "2",
            Tone::Bold => "1",
        };
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Lays out rows in columns; each cell carries its tone, applied after padding.
fn table(p: &Painter, out: &mut String, header: &[&str], rows: &[Vec<(String, Tone)>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, (cell, _)) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<(String, Tone)>| {
        let last = cells.len() - 1;
        let mut s = String::from("  ");
        for (i, (cell, tone)) in cells.into_iter().enumerate() {
            let pad = if i == last {
                0
            } else {
                widths[i] - cell.chars().count() + 2
            };
            s.push_str(&p.paint(tone, &cell));
            s.push_str(&" ".repeat(pad));
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            Tone::Dim,
            &line(
                header
                    .iter()
                    .map(|h| (h.to_string(), Tone::Plain))
                    .collect()
            )
        )
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row.clone()));
    }
}

fn ago(secs: Option<i64>) -> String {
    match secs {
        Some(s) if s >= 0 => format!("{} ago", human_duration(s)),
        Some(s) => human_duration(s),
        None => "-".into(),
    }
}

/// `valid/invalid`, as the NODES table and the dashboard show a node's reputation.
pub fn reputation(rep: Option<&Reputation>) -> String {
    rep.map_or_else(|| "-".into(), |r| format!("{}/{}", r.valid, r.invalid))
}

/// Who runs a task: its node, or each live instance's node and where it stands.
pub fn running_nodes(t: &RunningTask) -> String {
    if t.instances.is_empty() {
        return t.node_id.clone();
    }
    t.instances
        .iter()
        .map(|i| format!("{}:{}", i.node_id, i.state))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A result's agreement in a few words: `3/3 agree`, `2/3 agree, against: liar`, `no quorum (5
/// votes)`.
pub fn quorum_words(q: &QuorumSummary) -> String {
    let mut text = if q.digest.is_none() {
        format!("no quorum ({} votes)", q.votes)
    } else {
        format!("{}/{} agree", q.agreeing.len(), q.votes)
    };
    if !q.dissenting.is_empty() {
        text.push_str(&format!(", against: {}", q.dissenting.join(" ")));
    }
    if q.unchecked {
        text.push_str(", unchecked");
    }
    text
}

pub fn render(model: &StatusModel, grid: &str, color: bool) -> String {
    let p = Painter { color };
    let mut out = String::new();
    render_heading(&p, &mut out, model, grid);
    render_nodes(&p, &mut out, model);
    render_running(&p, &mut out, model);
    render_queue(&p, &mut out, model);
    render_recent(&p, &mut out, model);
    out
}

/// The first lines: which grid at which commit, and the task counts.
fn render_heading(p: &Painter, out: &mut String, model: &StatusModel, grid: &str) {
    let commit = model
        .commit
        .as_deref()
        .map_or("(empty)".to_string(), |c| c[..c.len().min(12)].to_string());
    let _ = writeln!(
        out,
        "{} {grid} at {commit}, {}",
        p.paint(Tone::Bold, "grid"),
        model.generated_at
    );
    let c = &model.counts;
    let wait = model
        .queue
        .oldest_wait
        .map(|w| format!("   oldest waiting {}", human_duration(w)))
        .unwrap_or_default();
    let a = &model.archived;
    let archived = if a.completed + a.failed > 0 {
        format!(
            "   ({} completed, {} failed archived)",
            a.completed, a.failed
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\n{}  queued {}   running {}   completed {}   failed {}{archived}{wait}",
        p.paint(Tone::Bold, "TASKS"),
        c.queue,
        c.in_progress,
        p.paint(Tone::Good, &c.completed.to_string()),
        p.paint(
            if c.failed > 0 { Tone::Bad } else { Tone::Plain },
            &c.failed.to_string()
        ),
    );
    if let Some(note) = &model.budget_eaten {
        let _ = writeln!(
            out,
            "  {}",
            p.paint(Tone::Warn, &format!("push budget: {note}"))
        );
    }
}

/// The NODES table, or a hint on how to start one.
fn render_nodes(p: &Painter, out: &mut String, model: &StatusModel) {
    let _ = writeln!(out, "\n{}", p.paint(Tone::Bold, "NODES"));
    if model.nodes.is_empty() {
        let _ = writeln!(out, "  (none yet: start one with git dgrid work)");
    } else {
        let rows: Vec<Vec<(String, Tone)>> = model
            .nodes
            .iter()
            .map(|n| {
                let tone = match n.state {
                    Liveness::Alive => Tone::Good,
                    Liveness::Late => Tone::Warn,
                    Liveness::Dead => Tone::Bad,
                    Liveness::Stopped => Tone::Dim,
                };
                let state = n.state.name().to_string();
                let running = if n.running.is_empty() {
                    "-".into()
                } else {
                    clean(&n.running.join(" "))
                };
                vec![
                    (clean(&n.id), Tone::Plain),
                    (state, tone),
                    (ago(n.heartbeat_age), Tone::Plain),
                    (n.completed.to_string(), Tone::Plain),
                    (n.failed.to_string(), Tone::Plain),
                    (
                        reputation(n.reputation.as_ref()),
                        if n.reputation.is_some_and(|r| r.consecutive_valid == 0) {
                            Tone::Warn
                        } else {
                            Tone::Plain
                        },
                    ),
                    (running, Tone::Plain),
                    (
                        n.problem.as_deref().map(clean).unwrap_or_default(),
                        Tone::Bad,
                    ),
                ]
            })
            .collect();
        table(
            p,
            out,
            &[
                "NODE",
                "STATE",
                "HEARTBEAT",
                "DONE",
                "FAILED",
                "REP",
                "RUNNING",
                "PROBLEM",
            ],
            &rows,
        );
    }
}

/// The RUNNING table, when a task is running.
fn render_running(p: &Painter, out: &mut String, model: &StatusModel) {
    if !model.in_progress.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Bold, "RUNNING"));
        let rows: Vec<Vec<(String, Tone)>> = model
            .in_progress
            .iter()
            .map(|t| {
                vec![
                    (clean(&t.id), Tone::Plain),
                    (clean(&running_nodes(t)), Tone::Plain),
                    (
                        t.elapsed.map(human_duration).unwrap_or_default(),
                        Tone::Plain,
                    ),
                    (t.attempt.to_string(), Tone::Plain),
                    (clean(&t.lease_expires_at), Tone::Dim),
                ]
            })
            .collect();
        table(
            p,
            out,
            &["TASK", "NODE", "ELAPSED", "ATTEMPT", "LEASE UNTIL"],
            &rows,
        );
    }
}

/// The next tasks of the queue, at most ten, and how many more wait.
fn render_queue(p: &Painter, out: &mut String, model: &StatusModel) {
    if !model.queue.next.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Bold, "QUEUE (next)"));
        let rows: Vec<Vec<(String, Tone)>> = model
            .queue
            .next
            .iter()
            .take(10)
            .map(|q| {
                vec![
                    (clean(&q.id), Tone::Plain),
                    (q.priority.to_string(), Tone::Plain),
                    (q.wait.map(human_duration).unwrap_or_default(), Tone::Plain),
                    (q.attempts.to_string(), Tone::Plain),
                ]
            })
            .collect();
        table(p, out, &["TASK", "PRIORITY", "WAITING", "ATTEMPTS"], &rows);
        if model.counts.queue > rows.len() {
            let _ = writeln!(out, "  … and {} more", model.counts.queue - rows.len());
        }
        for q in model.queue.next.iter().take(10) {
            if let Some(what) = &q.waits_for {
                let _ = writeln!(out, "  {} waits for {}", clean(&q.id), clean(what));
            }
        }
    }
}

/// The ten latest results, with a QUORUM column on a grid that runs replicated tasks.
fn render_recent(p: &Painter, out: &mut String, model: &StatusModel) {
    if !model.recent.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Tone::Bold, "RECENT RESULTS"));
        // Only a grid that runs replicated tasks gets the column.
        let replicated = model.recent.iter().take(10).any(|r| r.quorum.is_some());
        let rows: Vec<Vec<(String, Tone)>> = model
            .recent
            .iter()
            .take(10)
            .map(|r| {
                let tone = match r.status {
                    Status::Success => Tone::Good,
                    Status::Cancelled => Tone::Warn,
                    Status::Failed
                    | Status::Timeout
                    | Status::Lost
                    | Status::Unrunnable
                    | Status::NoQuorum
                    | Status::Invalid => Tone::Bad,
                };
                let name = r.status.name();
                let mut row = vec![
                    (clean(&r.id), Tone::Plain),
                    (name.to_string(), tone),
                    (
                        r.exit_code
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-".into()),
                        Tone::Plain,
                    ),
                    (clean(r.node_id.as_deref().unwrap_or("-")), Tone::Plain),
                    (
                        r.duration_ms
                            .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                            .unwrap_or_default(),
                        Tone::Plain,
                    ),
                    (clean(&r.finished_at), Tone::Dim),
                ];
                if replicated {
                    let (words, tone) = match &r.quorum {
                        None => ("-".to_string(), Tone::Plain),
                        Some(q) if q.digest.is_none() => (quorum_words(q), Tone::Bad),
                        Some(q) if !q.dissenting.is_empty() => (quorum_words(q), Tone::Warn),
                        Some(q) => (quorum_words(q), Tone::Plain),
                    };
                    row.push((clean(&words), tone));
                }
                row
            })
            .collect();
        let mut header = vec!["TASK", "STATUS", "EXIT", "NODE", "TOOK", "FINISHED"];
        if replicated {
            header.push("QUORUM");
        }
        table(p, out, &header, &rows);
    }
}

//! The static dashboard: one self-contained `index.html` (no scripts, no CDN, no external fonts;
//! charts are inline SVG) and `status.json` beside it. It works from `file://` and from any Pages
//! sub-path. Every string from the repository is escaped: ids, commands and output are hostile.

use super::history::Series;
use super::model::{human_duration, Liveness, StatusModel};
use std::fmt::Write;

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#6b7385;--line:#e3e6ec;--ok:#1f9d55;--warn:#c98a00;--bad:#d64545;--acc:#3b6fd8}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{padding:20px 28px;background:var(--ink);color:#fff;display:flex;justify-content:space-between;align-items:baseline;flex-wrap:wrap;gap:8px}
header h1{margin:0;font-size:20px}header .meta{color:#b8c0d0;font-size:12px}
main{padding:20px 28px;max-width:1280px;margin:auto}
.health{padding:14px 18px;border-radius:10px;margin-bottom:18px;font-weight:600;font-size:16px}
.health.ok{background:#e6f6ed;color:#146c3b}.health.warn{background:#fff5d9;color:#805600}.health.bad{background:#fde8e8;color:#9b2222}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:14px;margin-bottom:18px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card .n{font-size:30px;font-weight:700}.card .l{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:14px;margin-bottom:18px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin-bottom:14px;overflow-x:auto}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--mute);margin:0 0 10px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 10px 6px 0;border-bottom:1px solid var(--line);vertical-align:top;white-space:nowrap;max-width:420px;overflow:hidden;text-overflow:ellipsis}
th{color:var(--mute);font-weight:600;font-size:12px}td.wrap{white-space:normal;word-break:break-all}
.pill{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600}
.alive,.success{background:#e6f6ed;color:var(--ok)}.late,.cancelled{background:#fff5d9;color:var(--warn)}
.dead,.failed,.timeout,.lost,.unrunnable,.no_quorum,.invalid{background:#fde8e8;color:var(--bad)}.stopped{background:#eef0f4;color:var(--mute)}
.empty{color:var(--mute)}svg text{font:11px system-ui,sans-serif;fill:var(--mute)}
footer{color:var(--mute);font-size:12px;padding:0 28px 24px;max-width:1280px;margin:auto}
"#;

/// One sentence on the grid's health, and its tone.
fn health(model: &StatusModel, series: &Series) -> (&'static str, String) {
    let alive = model
        .nodes
        .iter()
        .filter(|n| n.state == Liveness::Alive)
        .count();
    let dead = model
        .nodes
        .iter()
        .filter(|n| n.state == Liveness::Dead)
        .count();
    let problems = model.nodes.iter().filter(|n| n.problem.is_some()).count();
    // A cancel is written as a failed result, but nothing failed: the health line leaves it out.
    let failed_last_hour = series
        .finished_per_hour
        .last()
        .map_or(0, |h| h.2)
        .saturating_sub(series.cancelled_last_hour);
    let mut issues = Vec::new();
    if dead > 0 {
        issues.push(format!("{dead} node(s) dead"));
    }
    if problems > 0 {
        issues.push(format!("{problems} node(s) report a problem"));
    }
    if failed_last_hour > 0 {
        issues.push(format!("{failed_last_hour} failure(s) this hour"));
    }
    if model.counts.queue > 0 && alive == 0 {
        issues.push(format!(
            "{} task(s) queued and no node alive",
            model.counts.queue
        ));
    }
    if issues.is_empty() {
        let work = if model.counts.queue + model.counts.in_progress == 0 {
            "nothing waiting".to_string()
        } else {
            format!(
                "{} running, {} queued",
                model.counts.in_progress, model.counts.queue
            )
        };
        ("ok", format!("Healthy: {alive} node(s) alive, {work}."))
    } else {
        let tone = if dead > 0 || (model.counts.queue > 0 && alive == 0) {
            "bad"
        } else {
            "warn"
        };
        (tone, format!("Attention: {}.", issues.join(", ")))
    }
}

fn bars_per_hour(series: &Series) -> String {
    let (w, h, pad) = (560.0, 160.0, 24.0);
    let hours = series.finished_per_hour.len().max(1) as f64;
    let max = series
        .finished_per_hour
        .iter()
        .map(|(_, c, f)| c + f)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bw = (w - pad) / hours;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="tasks finished per hour">"#
    );
    for (i, (_, ok, bad)) in series.finished_per_hour.iter().enumerate() {
        let x = pad + i as f64 * bw;
        let ok_h = (*ok as f64 / max) * (h - 30.0);
        let bad_h = (*bad as f64 / max) * (h - 30.0);
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{ok_h:.1}" fill="#1f9d55"><title>{ok} completed</title></rect>"##,
            h - 18.0 - ok_h,
            bw * 0.8
        );
        let _ = write!(
            svg,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bad_h:.1}" fill="#d64545"><title>{bad} failed</title></rect>"##,
            h - 18.0 - ok_h - bad_h,
            bw * 0.8
        );
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="12">{}</text><text x="{pad}" y="{h}">-48h</text><text x="{}" y="{h}">now</text></svg>"#,
        max as u64,
        w - 24.0
    );
    svg
}

fn queue_line(series: &Series) -> String {
    let (w, h, pad) = (560.0, 160.0, 24.0);
    let points = &series.queue_length;
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let (t0, t1) = (
        points.first().map_or(0, |p| p.0),
        points.last().map_or(1, |p| p.0),
    );
    let span = ((t1 - t0) as f64).max(1.0);
    let at = |t: i64, n: usize| {
        let x = if points.len() == 1 {
            w - 4.0
        } else {
            pad + (t - t0) as f64 / span * (w - pad - 4.0)
        };
        format!("{x:.1},{:.1}", h - 18.0 - (n as f64 / max) * (h - 30.0))
    };
    // Steps, not ramps: the queue length changes only at a commit, so between two samples it
    // stays what the earlier one says (a line straight across a quiet night would invent a
    // queue draining slowly through it).
    let mut coords: Vec<String> = Vec::new();
    for (i, (t, n)) in points.iter().enumerate() {
        if i > 0 {
            coords.push(at(*t, points[i - 1].1));
        }
        coords.push(at(*t, *n));
    }
    format!(
        r##"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="queue length over time"><polyline fill="none" stroke="#3b6fd8" stroke-width="2" points="{}"/><text x="0" y="12">{}</text><text x="{pad}" y="{h}">{}</text><text x="{}" y="{h}">now</text></svg>"##,
        coords.join(" "),
        max as u64,
        if points.len() > 1 {
            format!("-{}", human_duration(t1 - t0))
        } else {
            String::new()
        },
        w - 24.0
    )
}

fn per_node_bars(series: &Series) -> String {
    if series.per_node.is_empty() {
        return r#"<p class="empty">No results in the last 48 hours.</p>"#.into();
    }
    let rows = series.per_node.len().min(12);
    let (w, row) = (560.0, 22.0);
    let max = series
        .per_node
        .iter()
        .map(|p| p.1)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let height = rows as f64 * row + 4.0;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {w} {height}" width="100%" style="max-width:{w}px" role="img" aria-label="results per node">"#
    );
    for (i, (node, n)) in series.per_node.iter().take(rows).enumerate() {
        let y = i as f64 * row;
        let bar = (*n as f64 / max) * (w - 200.0);
        let _ = write!(
            svg,
            r##"<text x="0" y="{:.1}">{}</text><rect x="150" y="{:.1}" width="{bar:.1}" height="14" rx="3" fill="#3b6fd8"/><text x="{:.1}" y="{:.1}">{n}</text>"##,
            y + 14.0,
            escape(&node.chars().take(22).collect::<String>()),
            y + 3.0,
            156.0 + bar,
            y + 14.0
        );
    }
    svg.push_str("</svg>");
    svg
}

fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        let _ = write!(out, r#"<p class="empty">{}</p>"#, escape(empty));
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            // Cells arrive escaped (some hold a pill); never raw repository text.
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

fn pill(class: &str) -> String {
    format!(r#"<span class="pill {class}">{class}</span>"#)
}

pub fn render(model: &StatusModel, series: &Series, title: &str, refresh_secs: u32) -> String {
    let (tone, sentence) = health(model, series);
    let mut out = String::new();
    render_head(&mut out, model, title, refresh_secs, tone, &sentence);
    render_cards(&mut out, model);
    render_charts(&mut out, series);
    render_nodes(&mut out, model, series);
    render_running(&mut out, model);
    render_queue(&mut out, model);
    render_recent(&mut out, model);
    render_footer(&mut out, refresh_secs);
    out
}

/// The page up to the count cards: title, refresh, the health sentence.
fn render_head(
    out: &mut String,
    model: &StatusModel,
    title: &str,
    refresh_secs: u32,
    tone: &str,
    sentence: &str,
) {
    let _ = write!(
        out,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="{refresh_secs}"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{} · git-dgrid</title><style>{STYLE}</style></head><body>
<header><h1>{}</h1><div class="meta">updated {} · main at {} · <a style="color:#b8c0d0" href="status.json">status.json</a></div></header><main>
<div class="health {tone}" id="health">{}</div>
<div class="cards">"#,
        escape(title),
        escape(title),
        escape(&model.generated_at),
        escape(
            model
                .commit
                .as_deref()
                .map_or("-", |c| &c[..c.len().min(12)])
        ),
        escape(sentence)
    );
}

/// The count cards: tasks by state and the nodes alive.
fn render_cards(out: &mut String, model: &StatusModel) {
    let c = &model.counts;
    for (id, label, n) in [
        ("count-queue", "queued", c.queue),
        ("count-in_progress", "running", c.in_progress),
        ("count-completed", "completed", c.completed),
        ("count-failed", "failed", c.failed),
    ] {
        let _ = write!(
            out,
            r#"<div class="card"><div class="n" id="{id}">{n}</div><div class="l">{label}</div></div>"#
        );
    }
    let alive = model
        .nodes
        .iter()
        .filter(|n| n.state == Liveness::Alive)
        .count();
    let _ = write!(
        out,
        r#"<div class="card"><div class="n" id="count-nodes-alive">{alive}</div><div class="l">nodes alive of {}</div></div></div>"#,
        model.nodes.len()
    );
}

/// The two charts side by side: tasks finished per hour and the queue length.
fn render_charts(out: &mut String, series: &Series) {
    let _ = write!(
        out,
        r#"<div class="grid2"><section><h2>Tasks finished per hour (48 h)</h2>{}</section><section><h2>Queue length</h2>{}</section></div>"#,
        bars_per_hour(series),
        queue_line(series)
    );
}

/// The nodes table, then the results per node.
fn render_nodes(out: &mut String, model: &StatusModel, series: &Series) {
    out.push_str(r#"<section id="nodes"><h2>Nodes</h2>"#);
    table(
        out,
        &[
            "node",
            "state",
            "heartbeat",
            "done",
            "failed",
            "reputation",
            "running",
            "host",
            "problem",
        ],
        model
            .nodes
            .iter()
            .map(|n| {
                vec![
                    escape(&n.id),
                    pill(n.state.name()),
                    n.heartbeat_age
                        .map(|a| format!("{} ago", human_duration(a)))
                        .unwrap_or_default(),
                    n.completed.to_string(),
                    n.failed.to_string(),
                    escape(&super::table::reputation(n.reputation.as_ref())),
                    escape(&n.running.join(" ")),
                    escape(&n.hostname),
                    escape(n.problem.as_deref().unwrap_or("")),
                ]
            })
            .collect(),
        "No node has joined yet.",
    );
    let _ = write!(
        out,
        r#"</section><section id="per-node"><h2>Results per node (48 h)</h2>{}</section>"#,
        per_node_bars(series)
    );
}

/// The running tasks.
fn render_running(out: &mut String, model: &StatusModel) {
    out.push_str(r#"<section id="running"><h2>Running</h2>"#);
    table(
        out,
        &[
            "task",
            "node",
            "elapsed",
            "attempt",
            "image",
            "command",
            "lease until",
        ],
        model
            .in_progress
            .iter()
            .map(|t| {
                vec![
                    escape(&t.id),
                    escape(&super::table::running_nodes(t)),
                    t.elapsed.map(human_duration).unwrap_or_default(),
                    t.attempt.to_string(),
                    escape(&t.image),
                    escape(&t.command),
                    escape(&t.lease_expires_at),
                ]
            })
            .collect(),
        "Nothing running.",
    );
}

/// The next tasks of the queue.
fn render_queue(out: &mut String, model: &StatusModel) {
    out.push_str(r#"</section><section id="queue"><h2>Queue (next)</h2>"#);
    table(
        out,
        &["task", "priority", "waiting", "attempts", "command"],
        model
            .queue
            .next
            .iter()
            .map(|q| {
                vec![
                    escape(&q.id),
                    q.priority.to_string(),
                    q.wait.map(human_duration).unwrap_or_default(),
                    q.attempts.to_string(),
                    escape(&q.command),
                ]
            })
            .collect(),
        "The queue is empty.",
    );
}

/// The latest results.
fn render_recent(out: &mut String, model: &StatusModel) {
    out.push_str(r#"</section><section id="recent"><h2>Recent results</h2>"#);
    table(
        out,
        &[
            "task",
            "status",
            "exit",
            "node",
            "took",
            "finished",
            "command",
            "last output",
            "quorum",
        ],
        model
            .recent
            .iter()
            .map(|r| {
                vec![
                    escape(&r.id),
                    pill(r.status.name()),
                    r.exit_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    escape(r.node_id.as_deref().unwrap_or("-")),
                    r.duration_ms
                        .map(|d| format!("{:.1}s", d as f64 / 1000.0))
                        .unwrap_or_default(),
                    escape(&r.finished_at),
                    escape(&r.command),
                    escape(&r.output_tail),
                    escape(
                        &r.quorum
                            .as_ref()
                            .map(super::table::quorum_words)
                            .unwrap_or_default(),
                    ),
                ]
            })
            .collect(),
        "No results yet.",
    );
}

/// The footer: version and refresh period; closes the page.
fn render_footer(out: &mut String, refresh_secs: u32) {
    let _ = writeln!(
        out,
        r#"</section></main><footer>git-dgrid {} · this page reloads every {refresh_secs} s · read-only view of the grid's main branch</footer></body></html>"#,
        env!("CARGO_PKG_VERSION")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue of 10 at midnight and none at 06:00, no commit between: the line stays at 10 until
    /// 06:00 and drops there, it does not slope down through the night.
    #[test]
    fn the_queue_chart_steps_across_a_period_with_no_samples() {
        let series = Series {
            queue_length: vec![(0, 10), (6 * 3600, 0)],
            ..Series::default()
        };
        let svg = queue_line(&series);
        let points = svg.split("points=\"").nth(1).unwrap();
        let points: Vec<&str> = points[..points.find('"').unwrap()].split(' ').collect();
        assert_eq!(points, ["24.0,12.0", "556.0,12.0", "556.0,142.0"], "{svg}");
    }
}

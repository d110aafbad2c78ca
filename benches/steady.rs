//! The push budget in steady state (not a test: nothing here asserts a time).
//!
//!   cargo bench --bench steady
//!
//! W workers (one slot each) over W × N tasks of 10 s at one push budget, long enough that the
//! start (joining, registering, the first claims before any duration is known) and the end (the
//! tail, the goodbyes) are a small part of it. A `post-receive` hook records, for every accepted
//! push, the instant and how many tasks `main` then holds as completed, so the throughput and the
//! tasks per push of the middle of the run are read off the remote itself.
//!
//! Settings from the environment (defaults in brackets): `DGRID_BENCH_WORKERS` [8],
//! `DGRID_BENCH_BUDGET` [6], `DGRID_BENCH_TASKS_PER_WORKER` [40], `DGRID_BENCH_EDGE_SECS` [120]:
//! how much of the start and of the end is left out of the middle. Against a remote at a real
//! round-trip time, the same three variables as `budget-rtt` in benches/grid.rs:
//! `DGRID_BENCH_HTTP_ROOT`, `DGRID_BENCH_HTTP_URL`, `DGRID_BENCH_HOST_EXEC`.
//!
//! Results go to BENCHMARKS.md by hand, with the machine and the date.

#[path = "../tests/common/mod.rs"]
mod common;

use common::Env;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

const TASK_SECS: u64 = 10;

/// The command prefix that starts worker `i` (from 0) on its host.
type Host = Box<dyn Fn(usize) -> Vec<String>>;

fn main() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number =
        |name: &str, default: usize| var(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let workers = number("DGRID_BENCH_WORKERS", 8);
    let budget = number("DGRID_BENCH_BUDGET", 6);
    let per_worker = number("DGRID_BENCH_TASKS_PER_WORKER", 40);
    let edge = number("DGRID_BENCH_EDGE_SECS", 120) as f64;
    let n = workers * per_worker;

    let env = Env::new();
    // The grid, the URL the workers use, the command prefix of worker i, and what keeps it served.
    let (grid, url, host, _served): (PathBuf, String, Host, _) = match (
        var("DGRID_BENCH_HTTP_ROOT"),
        var("DGRID_BENCH_HTTP_URL"),
        var("DGRID_BENCH_HOST_EXEC"),
    ) {
        (Some(root), Some(url), Some(exec)) => {
            let path = Path::new(&root).join("steady.git");
            let _ = std::fs::remove_dir_all(&path);
            env.dgrid_ok(
                Path::new(&root),
                &["init", "--bare", path.to_str().unwrap()],
                0,
            );
            let host = move |i: usize| {
                exec.replace("{n}", &(i + 1).to_string())
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            };
            let served: Box<dyn std::any::Any> = Box::new(());
            (path, format!("{url}/steady.git"), Box::new(host), served)
        }
        _ => {
            let (daemon, grid) = env.served_grid(true);
            let url = daemon.url("g.git");
            let served: Box<dyn std::any::Any> = Box::new(daemon);
            (grid, url, Box::new(|_| Vec::new()), served)
        }
    };

    let seed = env.clone(grid.to_str().unwrap(), "seed");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"s{i:04}","image":"dgrid/busybox:latest","command":"sleep {TASK_SECS}","timeout":120}}"#
            )
        })
        .collect();
    let out = env.submit_lines(&seed, &[], &lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Installed after the submit: only the workers' pushes are recorded.
    let log = record_pushes(&grid);

    let start = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|i| {
            let mut argv = host(i);
            argv.push(env!("CARGO_BIN_EXE_git-dgrid").to_string());
            env.cmd(&argv[0], env.tmp.path())
                .args(&argv[1..])
                .args(["work", "--node-id", &format!("n{i}"), "--repo", &url])
                .args(["--until-empty", "--poll-interval", "1", "--lease", "900"])
                .args(["--push-budget", &budget.to_string()])
                .arg("--state-dir")
                .arg(env.path(&format!("state{i}")))
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let makespan = start.elapsed().as_secs_f64();

    let pushes = read_pushes(&log);
    let first = pushes.first().map_or(0.0, |p| p.0);
    let completed = pushes.last().map_or(0, |p| p.1);
    assert_eq!(completed, n, "every task completed");
    let busiest = most_in_a_minute(&pushes);
    println!(
        "workers {workers}, budget {budget}, {n} tasks of {TASK_SECS} s, makespan {makespan:.0} s"
    );
    println!(
        "whole run: {} pushes, {:.2} tasks per push, {:.0} tasks/hour, busiest 60 s {busiest}",
        pushes.len(),
        n as f64 / pushes.len() as f64,
        n as f64 * 3600.0 / makespan
    );
    // The middle: the pushes from `edge` seconds after the first to `edge` before the last.
    let last = pushes.last().map_or(0.0, |p| p.0);
    let middle: Vec<&(f64, usize)> = pushes
        .iter()
        .filter(|p| p.0 >= first + edge && p.0 <= last - edge)
        .collect();
    if let (Some(a), Some(b)) = (middle.first(), middle.last()) {
        let secs = b.0 - a.0;
        let done = b.1 - a.1;
        // Pushes after the first of the window carried the tasks completed in it.
        let carried = middle.len() - 1;
        println!(
            "middle ({secs:.0} s, {edge:.0} s off each end): {done} tasks in {carried} pushes, {:.2} tasks per push, {:.1} pushes/min, {:.0} tasks/hour",
            done as f64 / carried.max(1) as f64,
            carried as f64 * 60.0 / secs.max(1.0),
            done as f64 * 3600.0 / secs.max(1.0)
        );
    } else {
        println!("middle: the run is too short for {edge:.0} s off each end");
    }
    println!(
        "physical limit: {workers} slots of {TASK_SECS} s tasks = {:.0} tasks/hour",
        workers as f64 * 3600.0 / TASK_SECS as f64
    );
}

/// A `post-receive` hook that appends, for each accepted push, the time and the number of tasks
/// completed in the new tip of `main`.
fn record_pushes(remote: &Path) -> PathBuf {
    let log = remote.join("steady-pushes.log");
    let hook = remote.join("hooks/post-receive");
    let script = format!(
        "#!/bin/sh\nwhile read old new ref; do\n  [ \"$ref\" = refs/heads/main ] || continue\n  done=$(git ls-tree -r --name-only \"$new\" tasks/completed | grep -c '\\.json$')\n  echo \"$(date +%s.%N) $done\" >> {}\ndone\n",
        log.display()
    );
    std::fs::write(&hook, script).unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    log
}

/// The most pushes in any 60-s window.
fn most_in_a_minute(pushes: &[(f64, usize)]) -> usize {
    (0..pushes.len())
        .map(|i| {
            pushes[i..]
                .iter()
                .take_while(|p| p.0 - pushes[i].0 < 60.0)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The pushes recorded: (time, tasks completed), in time order.
fn read_pushes(log: &Path) -> Vec<(f64, usize)> {
    let mut pushes: Vec<(f64, usize)> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (time, done) = line.split_once(' ')?;
            Some((time.parse().ok()?, done.trim().parse().ok()?))
        })
        .collect();
    pushes.sort_by(|a, b| a.0.total_cmp(&b.0));
    pushes
}

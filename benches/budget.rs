//! Benchmarks of the push budget (not tests: nothing here asserts a time).
//!
//!   cargo bench --bench budget                # W workers at push budgets 6, 20 and none, next to raw docker
//!   cargo bench --bench budget -- budget-rtt  # the same over smart HTTP at a real round-trip time
//!   cargo bench --bench budget -- steady      # a long run at one budget: the middle's throughput
//!   cargo bench --bench budget -- replicated  # pushes per task of replicated tasks (replicas 1 and 3)
//!   cargo bench --bench budget -- no-budget   # the push-budget tests' scenarios with no budget,
//!                                             # beside other builds (DGRID_BENCH_BINS=label=path,...)
//!
//! A remote at a real round-trip time comes from the environment: a smart-HTTP server that serves
//! every repository in the folder `DGRID_BENCH_HTTP_ROOT` at `DGRID_BENCH_HTTP_URL/<name>`, and
//! workers started through `DGRID_BENCH_HOST_EXEC` (a command prefix, `{n}` replaced by the host
//! number from 1, e.g. `ip netns exec host{n}` for network namespaces behind a router that delays
//! every packet). Without it, `git daemon` on 127.0.0.1.
//!
//! Results go to BENCHMARKS.md by hand, with the machine and the date.

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::{most_in_a_minute, time_pushes, Env};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Instant;

/// Every task sleeps this long.
const TASK_SECS: u64 = 10;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if filter.iter().any(|f| f == "steady") {
        steady();
    } else if filter.iter().any(|f| f == "no-budget") {
        no_budget();
    } else if filter.iter().any(|f| f == "replicated") {
        replicated();
    } else if filter.iter().any(|f| f == "budget-rtt") {
        budget_rtt();
    } else {
        budget();
    }
}

fn submit(env: &Env, dir: &Path, lines: &[String]) {
    let out = env.submit_lines(dir, &[], lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The testbed's remote when the environment names one, else `git daemon` on 127.0.0.1.
fn remote_from_env() -> Box<dyn BenchRemote> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (
        var("DGRID_BENCH_HTTP_ROOT"),
        var("DGRID_BENCH_HTTP_URL"),
        var("DGRID_BENCH_HOST_EXEC"),
    ) {
        (Some(root), Some(url), Some(exec)) => Box::new(HttpRoot {
            root: root.into(),
            url,
            exec,
        }),
        _ => Box::new(LocalDaemon),
    }
}

/// W workers of this build, one slot each, `--until-empty`, at `budget` pushes per minute.
fn spawn_workers(
    env: &Env,
    remote: &dyn BenchRemote,
    url: &str,
    w: usize,
    budget: u32,
) -> Vec<Child> {
    let this = env!("CARGO_BIN_EXE_git-dgrid");
    spawn_build(env, remote, url, (this, w, 1), Some(budget))
}

/// `(bin, W, slots)`: W workers of the build at `bin`; with `budget` None, no `--push-budget` at
/// all (a build from before the budget does not know the flag; the default here is no limit).
fn spawn_build(
    env: &Env,
    remote: &dyn BenchRemote,
    url: &str,
    (bin, w, slots): (&str, usize, usize),
    budget: Option<u32>,
) -> Vec<Child> {
    (0..w)
        .map(|i| {
            let mut argv = remote.host(i);
            argv.push(bin.to_string());
            let budget = budget.map(|b| ["--push-budget".to_string(), b.to_string()]);
            env.cmd(&argv[0], env.tmp.path())
                .args(&argv[1..])
                .args(["work", "--node-id", &format!("n{i}"), "--repo", url])
                .args(["--until-empty", "--poll-interval", "1", "--lease", "900"])
                .args(["--slots", &slots.to_string()])
                .args(budget.iter().flatten())
                .arg("--state-dir")
                .arg(env.path(&format!("state{i}")))
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Tasks of 10 s each, 12 per worker: raw `docker run` of them with W at a time (no git: the
/// physical limit here), then W workers at push budgets 6, 20 and none, against `git daemon` on
/// 127.0.0.1. Every accepted push is timed by a `post-receive` hook, for the busiest 60-s window.
fn budget() {
    budget_table(&LocalDaemon, 12);
}

/// The same table against a remote at a real round-trip time: a smart-HTTP server that serves
/// every repository in the folder `DGRID_BENCH_HTTP_ROOT` at `DGRID_BENCH_HTTP_URL/<name>`, and
/// workers started through `DGRID_BENCH_HOST_EXEC` (a command prefix, `{n}` replaced by the host
/// number from 1, e.g. `ip netns exec host{n}` for network namespaces behind a router that delays
/// every packet). `DGRID_BENCH_TASKS_PER_WORKER` (default 12) shortens the run.
fn budget_rtt() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(root), Some(url), Some(exec)) = (
        var("DGRID_BENCH_HTTP_ROOT"),
        var("DGRID_BENCH_HTTP_URL"),
        var("DGRID_BENCH_HOST_EXEC"),
    ) else {
        println!("budget-rtt: skipped (set DGRID_BENCH_HTTP_ROOT, DGRID_BENCH_HTTP_URL and DGRID_BENCH_HOST_EXEC)");
        return;
    };
    let per_worker = var("DGRID_BENCH_TASKS_PER_WORKER")
        .and_then(|n| n.parse().ok())
        .unwrap_or(12);
    budget_table(
        &HttpRoot {
            root: root.into(),
            url,
            exec,
        },
        per_worker,
    );
}

/// Where the budget table's grids live and how its workers are started.
trait BenchRemote {
    /// A new grid: its path on this machine, the URL workers use, and what keeps it served.
    fn grid(&self, env: &Env, name: &str) -> (PathBuf, String, Box<dyn std::any::Any>);
    /// The command prefix that starts worker `i` (from 0).
    fn host(&self, i: usize) -> Vec<String>;
}

struct LocalDaemon;

impl BenchRemote for LocalDaemon {
    fn grid(&self, env: &Env, _: &str) -> (PathBuf, String, Box<dyn std::any::Any>) {
        let (daemon, grid) = env.served_grid(true);
        let url = daemon.url("g.git");
        (grid, url, Box::new(daemon))
    }
    fn host(&self, _: usize) -> Vec<String> {
        Vec::new()
    }
}

struct HttpRoot {
    root: PathBuf,
    url: String,
    exec: String,
}

impl BenchRemote for HttpRoot {
    fn grid(&self, env: &Env, name: &str) -> (PathBuf, String, Box<dyn std::any::Any>) {
        let path = self.root.join(format!("{name}.git"));
        let _ = std::fs::remove_dir_all(&path);
        env.dgrid_ok(&self.root, &["init", "--bare", path.to_str().unwrap()], 0);
        (path, format!("{}/{name}.git", self.url), Box::new(()))
    }
    fn host(&self, i: usize) -> Vec<String> {
        self.exec
            .replace("{n}", &(i + 1).to_string())
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

fn budget_table(remote: &dyn BenchRemote, per_worker: usize) {
    println!("| workers | budget | tasks | makespan (s) | raw docker (s) | tasks per push | pushes/min (mean) | busiest 60 s | tasks/hour |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for w in [1usize, 4, 8] {
        let n = per_worker * w;
        let raw = raw_docker(n, w, TASK_SECS);
        for budget in [6u32, 20, 0] {
            let env = Env::new();
            let (grid, url, _served) = remote.grid(&env, &format!("b{w}-{budget}"));
            // Submitted through the grid's path: the remote's URL may be reachable only from
            // the workers' hosts.
            let seed = env.clone(grid.to_str().unwrap(), "seed");
            let tasks: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"id":"b{i:03}","image":"dgrid/busybox:latest","command":"sleep {TASK_SECS}","timeout":120}}"#))
                .collect();
            submit(&env, &seed, &tasks);
            // Installed after the submit: only the workers' pushes are timed.
            let log = time_pushes(&grid);
            let start = Instant::now();
            let children = spawn_workers(&env, remote, &url, w, budget);
            for mut c in children {
                assert!(c.wait().unwrap().success());
            }
            let makespan = start.elapsed().as_secs_f64();
            let (busiest, times) = most_in_a_minute(&log);
            let label = if budget == 0 {
                "none".to_string()
            } else {
                budget.to_string()
            };
            println!(
                "| {w} | {label} | {n} | {makespan:.1} | {raw:.1} | {:.2} | {:.1} | {busiest} | {:.0} |",
                n as f64 / times.len().max(1) as f64,
                times.len() as f64 / (makespan / 60.0),
                n as f64 * 3600.0 / makespan
            );
        }
    }
}

/// The scenarios of `tests/it/push_budget.rs` (2 workers x 2 slots over 40 tasks of 3 s; 4 workers x
/// 1 slot over 80 tasks of 1 s) with no budget, for this build and each of `DGRID_BENCH_BINS`
/// (`label=path,...`) in turn, `DGRID_BENCH_RUNS` times (2), next to raw `docker run` of the same tasks 4 at a time: what
/// the budget costs where it is not asked for.
fn no_budget() {
    let bins = common::builds_to_compare(env!("CARGO_BIN_EXE_git-dgrid"));
    println!("| scenario | build | run | makespan (s) | raw docker (s) | pushes |");
    println!("|---|---|---:|---:|---:|---:|");
    for (name, w, slots, n, secs) in [
        ("2 x 2 slots, 40 x 3 s", 2, 2, 40, 3),
        ("4 x 1 slot, 80 x 1 s", 4, 1, 80, 1),
    ] {
        let raw = raw_docker(n, w * slots, secs);
        let runs: usize = std::env::var("DGRID_BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        for run in 1..=runs {
            // Every other run in the reverse order, so that a machine getting busier or quieter
            // during the run does not favour one build.
            let mut order: Vec<&(String, String)> = bins.iter().collect();
            if run % 2 == 0 {
                order.reverse();
            }
            for (label, bin) in order {
                let env = Env::new();
                let (grid, url, _served) = LocalDaemon.grid(&env, &format!("nb-{label}-{run}"));
                let seed = env.clone(grid.to_str().unwrap(), "seed");
                let tasks: Vec<String> = (0..n)
                    .map(|i| format!(r#"{{"id":"nb{i:03}","image":"dgrid/busybox:latest","command":"sleep {secs}","timeout":120}}"#))
                    .collect();
                submit(&env, &seed, &tasks);
                let log = time_pushes(&grid);
                let start = Instant::now();
                for mut c in spawn_build(&env, &LocalDaemon, &url, (bin, w, slots), None) {
                    assert!(c.wait().unwrap().success());
                }
                let makespan = start.elapsed().as_secs_f64();
                let (_, times) = most_in_a_minute(&log);
                println!(
                    "| {name} | {label} | {run} | {makespan:.1} | {raw:.1} | {} |",
                    times.len()
                );
            }
        }
    }
}

/// What replication costs in pushes: 4 workers (one slot each, `--until-empty`) over 24 tasks of
/// 1 s with `"replicas"` 1 and 3, with no budget and at budget 20. Each instance lands a
/// commitment with its result and reveals on a later push; the settling rides on a reveal.
fn replicated() {
    let this = env!("CARGO_BIN_EXE_git-dgrid");
    println!("| replicas | budget | tasks | instances | makespan (s) | pushes | pushes per task | pushes per instance |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let n = 24;
    for budget in [None, Some(20u32)] {
        for replicas in [1u32, 3] {
            let env = Env::new();
            let (grid, url, _served) = LocalDaemon.grid(&env, &format!("r{replicas}"));
            let seed = env.clone(grid.to_str().unwrap(), "seed");
            let tasks: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"id":"r{i:03}","image":"dgrid/busybox:latest","command":"sleep 1; echo r{i}","timeout":120,"replicas":{replicas}}}"#))
                .collect();
            submit(&env, &seed, &tasks);
            let log = time_pushes(&grid);
            let start = Instant::now();
            for mut c in spawn_build(&env, &LocalDaemon, &url, (this, 4, 1), budget) {
                assert!(c.wait().unwrap().success());
            }
            let makespan = start.elapsed().as_secs_f64();
            let (_, times) = most_in_a_minute(&log);
            let pushes = times.len() as f64;
            let instances = n * replicas as usize;
            println!(
                "| {replicas} | {} | {n} | {instances} | {makespan:.1} | {pushes} | {:.2} | {:.2} |",
                budget.map_or("none".to_string(), |b| b.to_string()),
                pushes / n as f64,
                pushes / instances as f64
            );
        }
    }
}

/// Seconds for `docker run` of `n` tasks of `secs` each, `parallel` at a time, with no git at all.
fn raw_docker(n: usize, parallel: usize, secs: u64) -> f64 {
    let start = Instant::now();
    let script = format!(
        "seq {n} | xargs -P {parallel} -I{{}} docker run --rm --log-driver none dgrid/busybox:latest sleep {secs}"
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    start.elapsed().as_secs_f64()
}

/// The push budget in steady state: W workers (one slot each) over W × N tasks of 10 s at one
/// budget, long enough that the start (joining, registering, the first claims before any duration
/// is known) and the end (the tail, the goodbyes) are a small part of it. A `post-receive` hook
/// records, for every accepted push, the instant and how many tasks `main` then holds as
/// completed, so the throughput and the tasks per push of the middle of the run are read off the
/// remote itself. From the environment (defaults in brackets): `DGRID_BENCH_WORKERS` [8],
/// `DGRID_BENCH_BUDGET` [6], `DGRID_BENCH_TASKS_PER_WORKER` [40], `DGRID_BENCH_EDGE_SECS` [120]
/// (how much of the start and of the end is left out of the middle), and the remote of
/// [`remote_from_env`].
fn steady() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number =
        |name: &str, default: usize| var(name).and_then(|v| v.parse().ok()).unwrap_or(default);
    let workers = number("DGRID_BENCH_WORKERS", 8);
    let budget = number("DGRID_BENCH_BUDGET", 6);
    let per_worker = number("DGRID_BENCH_TASKS_PER_WORKER", 40);
    let edge = number("DGRID_BENCH_EDGE_SECS", 120) as f64;
    let n = workers * per_worker;

    let remote = remote_from_env();
    let env = Env::new();
    let (grid, url, _served) = remote.grid(&env, "steady");
    let seed = env.clone(grid.to_str().unwrap(), "seed");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"s{i:04}","image":"dgrid/busybox:latest","command":"sleep {TASK_SECS}","timeout":120}}"#
            )
        })
        .collect();
    submit(&env, &seed, &lines);
    // Installed after the submit: only the workers' pushes are recorded.
    let log = record_pushes(&grid);

    let start = Instant::now();
    let children = spawn_workers(&env, remote.as_ref(), &url, workers, budget as u32);
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let makespan = start.elapsed().as_secs_f64();

    let pushes = read_pushes(&log);
    let first = pushes.first().map_or(0.0, |p| p.0);
    let completed = pushes.last().map_or(0, |p| p.1);
    assert_eq!(completed, n, "every task completed");
    let busiest = busiest_minute(&pushes);
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
    // The middle: from `edge` seconds after the first push to `edge` before the last. Tasks are
    // counted when they finished (the result's `timestamp`; the workers and the remote share
    // this machine's clock), not when their result landed: a push carries what finished over a
    // whole spacing, so counting landings would credit a window with work done before it.
    let last = pushes.last().map_or(0.0, |p| p.0);
    let (from, to) = (first + edge, last - edge);
    if to > from {
        let finished = finish_times(&grid)
            .into_iter()
            .filter(|t| (from..to).contains(t))
            .count();
        let landed = pushes.iter().filter(|p| (from..to).contains(&p.0)).count();
        let secs = to - from;
        println!(
            "middle ({secs:.0} s, {edge:.0} s off each end): {finished} tasks finished, {landed} pushes, {:.2} tasks per push, {:.1} pushes/min, {:.0} tasks/hour",
            finished as f64 / landed.max(1) as f64,
            landed as f64 * 60.0 / secs,
            finished as f64 * 3600.0 / secs
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
fn busiest_minute(pushes: &[(f64, usize)]) -> usize {
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

/// When each completed task finished (its result's `timestamp`), in seconds since the epoch.
fn finish_times(grid: &Path) -> Vec<f64> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(grid)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let names = git(&["ls-tree", "-r", "--name-only", "main", "tasks/completed"]);
    String::from_utf8_lossy(&names)
        .lines()
        .filter(|name| name.ends_with(".json"))
        .filter_map(|name| {
            let result: serde_json::Value =
                serde_json::from_slice(&git(&["show", &format!("main:{name}")])).ok()?;
            let stamp = result.get("timestamp")?.as_str()?;
            let time = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
            Some(time.timestamp_micros() as f64 / 1e6)
        })
        .collect()
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

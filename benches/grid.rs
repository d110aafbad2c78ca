//! Benchmarks of the grid engine (not tests: nothing here asserts a time).
//!
//!   cargo bench --bench grid                 # everything
//!   cargo bench --bench grid -- claims       # racing claimers over git daemon on 127.0.0.1
//!   cargo bench --bench grid -- listing      # reading 10k and 100k tasks
//!   cargo bench --bench grid -- status       # `git dgrid status` over 100k tasks (needs /usr/bin/time)
//!   cargo bench --bench grid -- workers      # 1, 4, 8 workers against plain docker: wall, CPU per task (needs Docker)
//!   cargo bench --bench grid -- profile      # where a W = 8 run's CPU goes: git and docker calls by kind
//!   cargo bench --bench grid -- memory       # a worker's resident memory, idle and after many tasks
//!
//! The push budget's benchmarks are in benches/budget.rs.
//!
//! Results go to BENCHMARKS.md by hand, with the machine and the date.

#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "grid/profile.rs"]
mod profile;
#[path = "grid/workers.rs"]
mod workers;

use common::Env;
use git_dgrid::grid::{load_spec, Snapshot};
use git_dgrid::layout::State;
use git_dgrid::task::Limits;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn main() {
    // The profile's wrappers of git and docker are this program under another name.
    if let Some(code) = profile::wrapper() {
        std::process::exit(code);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if wants("claims") {
        claims();
    }
    if wants("listing") {
        listing();
    }
    if wants("status") {
        status();
    }
    if wants("workers") {
        workers::workers();
    }
    if wants("profile") {
        workers::profile();
    }
    if wants("memory") {
        memory();
    }
}

/// A grid of `n` tasks spread over every state (or all queued), written in one commit with the
/// library.
fn big_grid(env: &Env, n: usize, all_queued: bool) -> std::path::PathBuf {
    use git_dgrid::layout::{task_path, State};
    use git_dgrid::odb::{self, Edit, Identity};
    let grid = env.grid(if all_queued { "queued.git" } else { "big.git" });
    let repo = odb::open(&grid).unwrap();
    let tip = repo
        .find_reference("refs/heads/main")
        .unwrap()
        .id()
        .detach();
    let mut edits = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("t{i:06}");
        let spec = format!(
            r#"{{"id":"{id}","image":"alpine:3","command":"echo {i}","created_at":"2026-01-01T00:00:00Z","timeout":60,"submitted_by":"bench"}}"#
        );
        let (state, content) = match i % 10 {
            _ if all_queued => (State::Queue, spec),
            0..=5 => (
                State::Completed,
                format!(
                    r#"{{"task_id":"{id}","node_id":"n{}","exit_code":0,"stdout":"{i}\n","stderr":"","timestamp":"2026-01-01T01:00:00Z","status":"success","task":{spec}}}"#,
                    i % 8
                ),
            ),
            6 => (
                State::Failed,
                format!(
                    r#"{{"task_id":"{id}","node_id":"n{}","exit_code":1,"stdout":"","stderr":"no","timestamp":"2026-01-01T01:00:00Z","status":"failed","task":{spec}}}"#,
                    i % 8
                ),
            ),
            _ => (State::Queue, spec),
        };
        edits.push(Edit::Write {
            path: task_path(state, &id),
            content: content.into_bytes(),
        });
    }
    let identity = Identity {
        name: "bench".into(),
        email: "bench@localhost".into(),
    };
    let commit = odb::write_commit(&repo, Some(tip), &edits, &identity, "bench grid\n").unwrap();
    env.git(
        &grid,
        &["update-ref", "refs/heads/main", &commit.to_string()],
    );
    env.git(&grid, &["gc", "--quiet"]);
    grid
}

/// (wall seconds, CPU seconds (user + system, every process of the pipeline), peak resident KiB)
/// of a command, median of `runs` by wall time. CPU time is what a loaded machine cannot hide:
/// wall time on two busy cores says little, the work done says the same on an idle machine.
fn measure(env: &Env, dir: &Path, runs: usize, command: &str) -> (f64, f64, u64) {
    let mut samples: Vec<(f64, f64, u64)> = (0..runs)
        .map(|_| {
            let out = env
                .cmd("/usr/bin/time", dir)
                .args([
                    "-f",
                    "%e %U %S %M",
                    "sh",
                    "-c",
                    &format!("{command} >/dev/null"),
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr.lines().last().unwrap().to_string();
            let mut f = last.split_whitespace().map(|v| v.parse::<f64>().unwrap());
            let wall = f.next().unwrap();
            let cpu = f.next().unwrap() + f.next().unwrap();
            (wall, cpu, f.next().unwrap() as u64)
        })
        .collect();
    samples.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    samples[runs / 2]
}

/// `git dgrid status` over 100,000 tasks, without the fetch, against git's plumbing: a grid of
/// every state, and one where all are queued (the queue path reads every file).
fn status() {
    let env = Env::new();
    let bin = env!("CARGO_BIN_EXE_git-dgrid");
    for (grid, what) in [
        (
            big_grid(&env, 100_000, false),
            "60% completed, 10% failed, 30% queued",
        ),
        (big_grid(&env, 100_000, true), "all queued"),
    ] {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().next().unwrap_or("?").to_string();
        println!("| 100,000 tasks ({what}), load {load} | wall (median of 5) | CPU (user+sys) | peak RSS |");
        println!("|---|---:|---:|---:|");
        // Other builds (`DGRID_BENCH_BINS=label=path`) side by side, under the same load.
        let mut commands = Vec::new();
        for (label, bin) in common::builds_to_compare(bin) {
            let tag = if label == "this" {
                String::new()
            } else {
                format!(" [{label}]")
            };
            commands.push((
                format!("git dgrid status (table){tag}"),
                format!("{bin} status"),
            ));
            commands.push((
                format!("git dgrid status --json{tag}"),
                format!("{bin} status --json"),
            ));
        }
        commands.push((
            "git ls-tree -r main tasks/ \\| git cat-file --batch".to_string(),
            "git ls-tree -r main tasks/ | awk '{print $3}' | git cat-file --batch".to_string(),
        ));
        for (name, command) in commands {
            let (wall, cpu, rss) = measure(&env, &grid, 5, &command);
            println!(
                "| {name} | {:.0} ms | {:.0} ms | {:.1} MiB |",
                wall * 1000.0,
                cpu * 1000.0,
                rss as f64 / 1024.0
            );
        }
        println!();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A worker's resident memory: idle, and after 20 and 200 tasks (it must not grow with tasks run).
fn memory() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let mut w = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args([
            "work",
            "--node-id",
            "mem",
            "--repo",
            grid.to_str().unwrap(),
            "--poll-interval",
            "1",
        ])
        .arg("--state-dir")
        .arg(env.path("state"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    let idle = rss_kib(w.id());
    let mut samples = vec![("idle".to_string(), idle)];
    let mut done = 0;
    for batch in [20, 180] {
        let echoes = (done..done + batch).map(|i| format!(r#"{{"id":"m{i:04}","image":"dgrid/busybox:latest","command":"echo {i}","timeout":60}}"#)).collect();
        submit(&env, &clone, echoes);
        done += batch;
        let deadline = Instant::now() + Duration::from_secs(600);
        while Instant::now() < deadline {
            let snap = git_dgrid::grid::Snapshot::read(
                &git_dgrid::odb::open(&grid).unwrap(),
                Some(
                    git_dgrid::odb::open(&grid)
                        .unwrap()
                        .find_reference("refs/heads/main")
                        .unwrap()
                        .id()
                        .detach(),
                ),
            )
            .unwrap();
            if snap.count(State::Completed) + snap.count(State::Failed) >= done {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        samples.push((format!("after {done} tasks"), rss_kib(w.id())));
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(w.id().to_string())
        .status();
    let _ = w.wait();
    println!("| worker | resident memory |");
    println!("|---|---:|");
    for (label, kib) in samples {
        println!("| {label} | {:.1} MiB |", kib as f64 / 1024.0);
    }
}

fn submit(env: &Env, dir: &Path, lines: Vec<String>) {
    let out = env.submit_lines(dir, &[], &lines);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn echo_tasks(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r#"{{"id":"b{i:06}","image":"alpine:3","command":"echo {i}","timeout":60,"created_at":"2026-01-01T00:00:00Z"}}"#))
        .collect()
}

/// K claimers, each `git dgrid claim --max 1` in a loop, until the queue is empty.
fn claims() {
    println!(
        "| claimers | tasks | wall (s) | claims/s | pushes per claim | lost races per claim |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for claimers in [1, 2, 4, 8, 16] {
        let env = Env::new();
        let (daemon, _grid) = env.served_grid(true);
        let url = daemon.url("g.git");
        let seed = env.clone(&url, "seed");
        let tasks = 160;
        submit(&env, &seed, echo_tasks(tasks));
        // Warm every claimer's cache clone so the clone itself is not measured.
        for i in 0..claimers {
            let state = env.path(&format!("state-{i}"));
            let _ = env.dgrid(
                env.tmp.path(),
                &[
                    "claim",
                    "--node-id",
                    "warm",
                    "--max",
                    "0",
                    "--repo",
                    &url,
                    "--state-dir",
                    state.to_str().unwrap(),
                ],
            );
        }
        let start = Instant::now();
        let totals: Vec<(u32, u32, u32)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..claimers)
                .map(|i| {
                    let env = &env;
                    let url = &url;
                    s.spawn(move || {
                        let state = env.path(&format!("state-{i}"));
                        let node = format!("n{i}");
                        let (mut claimed, mut pushes, mut lost) = (0, 0, 0);
                        loop {
                            let out = env.dgrid(
                                env.tmp.path(),
                                &[
                                    "claim",
                                    "-v",
                                    "--node-id",
                                    &node,
                                    "--repo",
                                    url,
                                    "--state-dir",
                                    state.to_str().unwrap(),
                                ],
                            );
                            let stderr = String::from_utf8_lossy(&out.stderr);
                            let line = stderr
                                .lines()
                                .find(|l| l.starts_with("claim: "))
                                .expect("claim -v reports");
                            let nums: Vec<u32> = line
                                .split(|c: char| !c.is_ascii_digit())
                                .filter(|s| !s.is_empty())
                                .map(|s| s.parse().unwrap())
                                .collect();
                            claimed += nums[0];
                            pushes += nums[1];
                            lost += nums[2];
                            if out.status.code() != Some(0) {
                                assert_eq!(out.status.code(), Some(1), "{stderr}");
                                break;
                            }
                        }
                        (claimed, pushes, lost)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let wall = start.elapsed().as_secs_f64();
        let claimed: u32 = totals.iter().map(|t| t.0).sum();
        let pushes: u32 = totals.iter().map(|t| t.1).sum();
        let lost: u32 = totals.iter().map(|t| t.2).sum();
        assert_eq!(claimed as usize, tasks);
        println!(
            "| {claimers} | {tasks} | {wall:.1} | {:.1} | {:.2} | {:.2} |",
            tasks as f64 / wall,
            pushes as f64 / claimed as f64,
            lost as f64 / claimed as f64
        );
        drop(daemon);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect(),
    )
}

/// Reading every task at a commit: our listing, our listing plus parsing every file, and git's own
/// `ls-tree -r | cat-file --batch` for comparison.
fn listing() {
    println!(
        "| tasks | list (gix) | list + parse all (gix) | git ls-tree -r \\| git cat-file --batch |"
    );
    println!("|---:|---:|---:|---:|");
    for n in [10_000, 100_000] {
        let env = Env::new();
        let grid = env.grid("g.git");
        let clone = env.clone(grid.to_str().unwrap(), "c");
        submit(&env, &clone, echo_tasks(n));
        env.git(&grid, &["gc", "--quiet"]);
        let repo = git_dgrid::odb::open(&grid).unwrap();
        let tip = repo
            .find_reference("refs/heads/main")
            .unwrap()
            .id()
            .detach();
        let limits = Limits::default();
        let list = time(5, || Snapshot::read(&repo, Some(tip)).unwrap().tasks.len());
        let parse = time(3, || {
            let snap = Snapshot::read(&repo, Some(tip)).unwrap();
            let mut parsed = 0;
            for task in snap.in_state(State::Queue) {
                std::hint::black_box(load_spec(&repo, task, &limits).unwrap());
                parsed += 1;
            }
            assert_eq!(parsed, n);
        });
        let git = time(3, || {
            let out = env
                .cmd("sh", &grid)
                .args([
                    "-c",
                    "git ls-tree -r main tasks/ | awk '{print $3}' | git cat-file --batch | wc -c",
                ])
                .output()
                .unwrap();
            assert!(out.status.success());
        });
        println!(
            "| {n} | {} ms | {} ms | {} ms |",
            list.as_millis(),
            parse.as_millis(),
            git.as_millis()
        );
    }
}

//! Benchmarks of the grid engine (not tests: nothing here asserts a time).
//!
//!   cargo bench --bench grid                 # everything
//!   cargo bench --bench grid -- claims       # racing claimers over git daemon on 127.0.0.1
//!   cargo bench --bench grid -- listing      # reading 10k and 100k tasks
//!
//! Results go to BENCHMARKS.md by hand, with the machine and the date.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Daemon, Env};
use git_dgrid::grid::{snapshot, Snapshot};
use git_dgrid::layout::State;
use git_dgrid::task::Limits;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn main() {
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
}

fn submit(env: &Env, dir: &Path, n: usize) {
    let mut child = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), dir)
        .args(["submit", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..n {
        writeln!(
            stdin,
            r#"{{"id":"b{i:06}","image":"alpine:3","command":"echo {i}","timeout":60,"created_at":"2026-01-01T00:00:00Z"}}"#
        )
        .unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// K claimers, each `git dgrid claim --max 1` in a loop, until the queue is empty.
fn claims() {
    println!(
        "| claimers | tasks | wall (s) | claims/s | pushes per claim | lost races per claim |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for claimers in [1, 2, 4, 8, 16] {
        let env = Env::new();
        let base = env.path("srv");
        std::fs::create_dir_all(&base).unwrap();
        env.dgrid_ok(&base, &["init", "--bare", "g.git"], 0);
        let daemon = Daemon::start(&env, &base, true);
        let url = daemon.url("g.git");
        let seed = env.clone(&url, "seed");
        let tasks = 160;
        submit(&env, &seed, tasks);
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
        submit(&env, &clone, n);
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
                std::hint::black_box(snapshot::load_spec(&repo, task, &limits).unwrap());
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

//! The size of a grid and the cost of reading it after 10,000 and 100,000 tasks, with and without
//! `archive` + `compact` (not a test: nothing here asserts a time or a size).
//!
//!   cargo bench --bench archive              # 10k and 100k
//!   cargo bench --bench archive -- 10000     # one size
//!
//! The grids are synthetic but shaped like real ones: `git fast-import` writes, into a grid made
//! by `git dgrid init --bare`, one submit commit per 1,000 tasks and then one commit per task that
//! moves it from the queue to completed (or failed, 1 in 10) with a full result file (~750 bytes:
//! spec, output, stream info), authored by one of 8 nodes, at 1,000 tasks a day ending now, as a
//! worker's one-push-per-task steady state writes them. Then `git gc`. For "with", the grid is
//! copied, `git dgrid archive` (default retention: the newest 10,000 or 7 days, whichever keeps
//! more) and `git dgrid compact` (history kept on dgrid-archive) run against it, and `git gc`.
//! Measured: `git count-objects -vH` of the remote, a fresh `git clone --single-branch` of main
//! (wall time, checkout included, and the clone's .git size), and `git dgrid status` in it
//! (fetching, as a user runs it; median of 3). Results go to BENCHMARKS.md by hand.

#[path = "../tests/it/common/mod.rs"]
mod common;

use common::Env;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10_000, 100_000]
    } else {
        sizes
    };
    println!(
        "| tasks | grid | remote size-pack | clone --single-branch main | clone .git | status |"
    );
    println!("|---:|---|---:|---:|---:|---:|");
    for n in sizes {
        let env = Env::new();
        let started = Instant::now();
        let grid = build(&env, n);
        eprintln!(
            "built {n} tasks in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        report(&env, &grid, n, "as run");
        let copy = env.path("archived.git");
        env.git(
            env.tmp.path(),
            &[
                "clone",
                "--quiet",
                "--mirror",
                grid.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        env.git(&copy, &["config", "receive.denyNonFastForwards", "false"]);
        let maintainer = env.clone(copy.to_str().unwrap(), "maintainer");
        let t = Instant::now();
        let out = env.dgrid_ok(&maintainer, &["archive"], 0);
        eprintln!("{} ({:.1} s)", out.trim(), t.elapsed().as_secs_f64());
        let t = Instant::now();
        env.dgrid_ok(&maintainer, &["compact"], 0);
        eprintln!("compacted ({:.1} s)", t.elapsed().as_secs_f64());
        env.git(&copy, &["gc", "--quiet", "--prune=now"]);
        report(&env, &copy, n, "archive + compact");
    }
}

fn report(env: &Env, grid: &Path, n: usize, label: &str) {
    let objects = env.git(grid, &["count-objects", "-vH"]);
    let size_pack = objects
        .lines()
        .find_map(|l| l.strip_prefix("size-pack: "))
        .unwrap_or("?")
        .to_string();
    let name = format!("clone-{}", fastrand::u32(..));
    let dest = env.path(&name);
    let t = Instant::now();
    env.git(
        env.tmp.path(),
        &[
            "clone",
            "--quiet",
            "--single-branch",
            "--branch",
            "main",
            &format!("file://{}", grid.display()),
            dest.to_str().unwrap(),
        ],
    );
    let clone_secs = t.elapsed().as_secs_f64();
    let du = env
        .cmd("du", env.tmp.path())
        .args(["-sh", dest.join(".git").to_str().unwrap()])
        .output()
        .unwrap();
    let clone_size = String::from_utf8_lossy(&du.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            let out = env.dgrid(&dest, &["status", "--json"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed().as_secs_f64()
        })
        .collect();
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let json: serde_json::Value =
        serde_json::from_slice(&env.dgrid(&dest, &["status", "--json"]).stdout).unwrap();
    let counted = json["counts"]["completed"].as_u64().unwrap_or(0)
        + json["counts"]["failed"].as_u64().unwrap_or(0);
    assert_eq!(
        counted as usize, n,
        "status counts every task: {}",
        json["counts"]
    );
    println!(
        "| {n} | {label} | {size_pack} | {clone_secs:.2} s | {clone_size} | {:.2} s |",
        runs[1]
    );
}

/// A grid of `n` finished tasks written with `git fast-import` (see the module docs).
fn build(env: &Env, n: usize) -> std::path::PathBuf {
    use git_dgrid::layout::{task_path, State};
    let grid = env.grid("grid.git");
    let mut child = env
        .cmd("git", &grid)
        .args(["fast-import", "--quiet", "--done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = std::io::BufWriter::new(child.stdin.take().unwrap());
    let now = chrono::Utc::now().timestamp();
    // 1,000 tasks a day, the last one finishing now.
    let spacing = 86;
    let start = now - n as i64 * spacing;
    let mut first = true;
    let data = |out: &mut dyn Write, bytes: &str| {
        writeln!(out, "data {}", bytes.len()).unwrap();
        out.write_all(bytes.as_bytes()).unwrap();
        writeln!(out).unwrap();
    };
    let spec = |i: usize, at: i64| {
        format!(
            r#"{{"id":"t{i:06}","image":"python:3.11-alpine","command":"python -c 'print({i} ** 2)'","created_at":"{}","timeout":600,"submitted_by":"bench@example.com","priority":0,"max_attempts":3}}"#,
            rfc(at)
        )
    };
    for batch in (0..n).step_by(1000) {
        let at = start + batch as i64 * spacing;
        writeln!(stdin, "commit refs/heads/main").unwrap();
        writeln!(stdin, "author bench <bench@example.com> {at} +0000").unwrap();
        writeln!(stdin, "committer bench <bench@example.com> {at} +0000").unwrap();
        data(
            &mut stdin,
            &format!("dgrid: submit 1000 tasks\n\nDgrid-Nonce: {batch:016x}\n"),
        );
        if first {
            writeln!(stdin, "from refs/heads/main^0").unwrap();
            first = false;
        }
        for i in batch..(batch + 1000).min(n) {
            writeln!(
                stdin,
                "M 100644 inline {}",
                task_path(State::Queue, &format!("t{i:06}"))
            )
            .unwrap();
            data(&mut stdin, &(spec(i, at) + "\n"));
        }
        for i in batch..(batch + 1000).min(n) {
            let id = format!("t{i:06}");
            let at = start + i as i64 * spacing + 60;
            let node = format!("node-{}", i % 8);
            let ok = i % 10 != 7;
            let (state, status, code) = if ok {
                (State::Completed, "success", 0)
            } else {
                (State::Failed, "failed", 1)
            };
            let stdout = format!("{}\n", i * i);
            let sha = format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15);
            let result = format!(
                r#"{{"task_id":"{id}","node_id":"{node}","exit_code":{code},"stdout":"{stdout}","stderr":"","timestamp":"{t}","status":"{status}","started_at":"{s}","finished_at":"{t}","duration_ms":2300,"attempt":1,"stdout_info":{{"total_bytes":{len},"sha256":"{sha}","truncated":false}},"stderr_info":{{"total_bytes":0,"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","truncated":false}},"task":{spec}}}"#,
                stdout = stdout.trim_end().to_string() + "\\n",
                t = rfc(at),
                s = rfc(at - 2),
                len = stdout.len(),
                sha = sha,
                spec = spec(i, at - 3600),
            );
            writeln!(stdin, "commit refs/heads/main").unwrap();
            writeln!(stdin, "author {node} <{node}@dgrid.invalid> {at} +0000").unwrap();
            writeln!(stdin, "committer {node} <{node}@dgrid.invalid> {at} +0000").unwrap();
            data(
                &mut stdin,
                &format!("dgrid: {node}: 1 result, heartbeat\n\nDgrid-Nonce: {i:016x}\n"),
            );
            writeln!(stdin, "D {}", task_path(State::Queue, &id)).unwrap();
            writeln!(stdin, "M 100644 inline {}", task_path(state, &id)).unwrap();
            data(&mut stdin, &(result + "\n"));
        }
    }
    writeln!(stdin, "done").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success(), "fast-import failed");
    env.git(&grid, &["gc", "--quiet", "--prune=now"]);
    grid
}

fn rfc(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

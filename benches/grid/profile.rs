//! The profile of a workers run: every git command and docker CLI call a worker starts goes
//! through a wrapper, this very bench program under the name `git` or `docker` (a symbolic link),
//! which runs the real program, waits for it and appends its CPU time (its descendants included,
//! from `getrusage`), wall time, exit status and kind to one log; git's own sub-processes (what a
//! fetch or a push starts) are counted from `GIT_TRACE2_EVENT`, which git writes one file per
//! process to.

use crate::common::{self, Env};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the wrappers and their logs are, for one run.
pub struct Traced {
    wrappers: PathBuf,
    calls: PathBuf,
    trace: PathBuf,
}

/// The calls of one kind (`git fetch`, `docker inspect`).
#[derive(Default)]
struct Calls {
    count: usize,
    failed: usize,
    cpu: f64,
    wall: f64,
}

impl Traced {
    /// Wrappers for `git` and `docker` in a folder of `env`, each running the real program (the
    /// first on PATH now).
    pub fn new(env: &Env) -> Traced {
        let wrappers = env.path("wrappers");
        let trace = env.path("trace2");
        std::fs::create_dir_all(&wrappers).unwrap();
        std::fs::create_dir_all(&trace).unwrap();
        let this = std::env::current_exe().unwrap();
        for name in ["git", "docker"] {
            std::os::unix::fs::symlink(&this, wrappers.join(name)).unwrap();
        }
        Traced {
            wrappers,
            calls: env.path("calls.log"),
            trace,
        }
    }

    /// A worker's command through the wrappers: `git` first on its PATH (the worker runs the one
    /// on PATH), the docker wrapper as `--docker`, and git's trace of every process.
    pub fn apply(&self, command: &mut Command) {
        let path = format!(
            "{}:{}:{}",
            self.wrappers.display(),
            common::bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("PATH", path)
            .env(LOG, &self.calls)
            .env(real_var("git"), on_path("git"))
            .env(real_var("docker"), on_path("docker"))
            .env("GIT_TRACE2_EVENT", &self.trace)
            .arg("--docker")
            .arg(self.wrappers.join("docker"));
    }

    /// The tables of the run: per task, the calls of each kind and their CPU; the worker
    /// processes' own CPU (`own`) and their children's in all (`children`, wrappers included);
    /// then git's processes by trace2's command hierarchy.
    pub fn report(&self, tasks: usize, own: f64, children: f64, landed: usize) {
        let calls = read_calls(&self.calls);
        let per = |x: f64| x / tasks as f64;
        println!("| process | calls per task | failed per task | CPU ms per call | CPU-s per task | wall ms per call |");
        println!("|---|---:|---:|---:|---:|---:|");
        let mut rows: Vec<(&String, &Calls)> = calls.iter().collect();
        rows.sort_by(|a, b| b.1.cpu.total_cmp(&a.1.cpu));
        let mut counted = 0.0;
        for (kind, c) in rows {
            counted += c.cpu;
            println!(
                "| {kind} | {:.2} | {:.2} | {:.1} | {:.3} | {:.0} |",
                per(c.count as f64),
                per(c.failed as f64),
                c.cpu * 1000.0 / c.count as f64,
                per(c.cpu),
                c.wall * 1000.0 / c.count as f64
            );
        }
        println!(
            "| the wrappers themselves | | | | {:.3} | |",
            per(children - counted)
        );
        println!(
            "| the worker processes themselves | | | | {:.3} | |",
            per(own)
        );
        println!(
            "| total (wrappers included) | | | | {:.3} | |",
            per(own + children)
        );
        println!("| pushes landed | {:.2} | | | | |", per(landed as f64));
        println!();
        println!("| git process (trace2 hierarchy) | per task |");
        println!("|---|---:|");
        for (name, count) in trace_hierarchies(&self.trace) {
            println!("| {name} | {:.2} |", per(count as f64));
        }
    }
}

/// The first program called `name` on PATH.
fn on_path(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// The wrappers' log by kind: `git fetch`, `docker run` and so on, one line per call.
fn read_calls(log: &Path) -> BTreeMap<String, Calls> {
    let mut calls: BTreeMap<String, Calls> = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [program, what, code, wall, cpu] = words[..] else {
            continue;
        };
        let entry = calls.entry(format!("{program} {what}")).or_default();
        entry.count += 1;
        entry.failed += usize::from(code != "0");
        entry.cpu += cpu.parse::<f64>().unwrap();
        entry.wall += wall.parse::<f64>().unwrap();
    }
    calls
}

/// The environment variable that tells the wrapper where its log is (set: this process is one).
const LOG: &str = "DGRID_BENCH_WRAP_LOG";

/// The environment variable that names the real program `name` for its wrapper.
fn real_var(name: &str) -> String {
    format!("DGRID_BENCH_REAL_{}", name.to_uppercase())
}

/// When this process is a wrapper (started as `git` or `docker` with the log named), runs the
/// real program with the same arguments, logs the call, and returns its exit code.
pub fn wrapper() -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    let log = std::env::var_os(LOG)?;
    let arg0 = std::env::args_os().next()?;
    let name = Path::new(&arg0).file_name()?.to_str()?.to_string();
    let real = std::env::var_os(real_var(&name))?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let start = std::time::Instant::now();
    let status = Command::new(real)
        .args(&args)
        .env_remove(LOG)
        .status()
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    let cpu = crate::workers::children_cpu();
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    // The first argument that is not an option: the command (`fetch`, `run`).
    let what = args
        .iter()
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
        .unwrap_or("?");
    let line = format!("{name} {what} {code} {wall:.6} {cpu:.6}\n");
    // One write with O_APPEND: the lines of concurrent calls do not mix.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .unwrap();
    std::io::Write::write_all(&mut file, line.as_bytes()).unwrap();
    Some(code)
}

/// How many git processes ran of each command hierarchy (`fetch`, `fetch/index-pack`), from the
/// `cmd_name` events of trace2's files (one per process).
fn trace_hierarchies(dir: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        let name = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|e| e["event"] == "cmd_name")
            .and_then(|e| e["hierarchy"].as_str().map(str::to_string))
            .unwrap_or_else(|| "(no command name)".to_string());
        *counts.entry(name).or_insert(0) += 1;
    }
    counts
}

//! The workers benchmark: W workers over tasks of one second against plain `docker run --rm` of
//! the same tasks W at a time, with the CPU time per task of the workers and of what they start
//! (git, the docker CLI); and a profile of one W = 8 run that says which of those processes the
//! CPU goes to.
//!
//! CPU comes from the kernel's accounting of ended processes: `getrusage(RUSAGE_CHILDREN)` of this
//! process counts every child it waited for together with the descendants each of them waited
//! for, and `/proc/<pid>/stat` of a worker that has exited but is not yet reaped splits its own
//! time from its children's. The server side (`git daemon` and the processes it starts, the docker
//! daemon, the containers) is not counted: it is the remote's and the engine's, for plain docker
//! and the grid alike.

use crate::common::{self, count_pushes, pushes, Env};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Workers × tasks of `sleep 1`, as in the issue that asked for this measurement.
const SHAPES: [(usize, usize); 3] = [(1, 20), (4, 40), (8, 80)];
const IMAGE: &str = "dgrid/busybox:latest";

/// CPU seconds (user + system) of the children waited for so far, their descendants included.
pub fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// What one build's W workers took.
struct Run {
    makespan: f64,
    pushes: usize,
    /// The worker processes' own CPU seconds (the loop, the plans, gix, the capture threads).
    own: f64,
    /// Their children's: git and the docker CLI (with whatever those waited for).
    children: f64,
}

/// The load average over the last minute, as /proc/loadavg says.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

/// `seconds` as `s`, `s/n` per task.
fn per(seconds: f64, n: usize) -> f64 {
    seconds / n as f64
}

/// The makespan and CPU per task of 1, 4 and 8 workers of every build (`DGRID_BENCH_BINS=
/// label=path,...`, each W run by every build in turn), next to plain `docker run --rm` of the
/// same tasks W at a time, measured just before and just after the builds of each W.
pub fn workers() {
    let bins = common::builds_to_compare(env!("CARGO_BIN_EXE_git-dgrid"));
    println!("| build | workers × tasks | plain docker (s) | git-dgrid (s) | ratio | pushes per task | CPU-s per task: worker | its git + docker CLI | total | plain docker CLI | load |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (w, n) in SHAPES {
        let load_before = load();
        let (before, before_cpu) = plain_docker(n, w);
        let runs: Vec<Run> = bins.iter().map(|(_, bin)| run_build(bin, w, n)).collect();
        let (after, after_cpu) = plain_docker(n, w);
        let plain = (before + after) / 2.0;
        let plain_cpu = per((before_cpu + after_cpu) / 2.0, n);
        for ((label, _), run) in bins.iter().zip(runs) {
            println!(
                "| {label} | {w} × {n} | {plain:.1} ({before:.1}, {after:.1}) | {:.1} | {:.2} | {:.2} | {:.3} | {:.3} | {:.3} | {plain_cpu:.3} | {load_before}-{} |",
                run.makespan,
                run.makespan / plain,
                per(run.pushes as f64, n),
                per(run.own, n),
                per(run.children, n),
                per(run.own + run.children, n),
                load()
            );
        }
    }
}

/// Wall and CPU seconds of plain `docker run --rm` of `n` tasks of `sleep 1`, `parallel` at a
/// time, with no git at all (the CPU is the CLI's, with the shell and xargs that start it).
fn plain_docker(n: usize, parallel: usize) -> (f64, f64) {
    let cpu = children_cpu();
    let start = Instant::now();
    let script = format!(
        "seq {n} | xargs -P {parallel} -I{{}} docker run --rm --log-driver none {IMAGE} sleep 1"
    );
    let status = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    (start.elapsed().as_secs_f64(), children_cpu() - cpu)
}

/// A grid of `n` queued tasks of `sleep 1` served by `git daemon`, W workers of the build at
/// `bin` on it until it is empty.
fn run_build(bin: &str, w: usize, n: usize) -> Run {
    let env = Env::new();
    let (daemon, grid) = env.served_grid(true);
    let log = count_pushes(&grid);
    let url = daemon.url("g.git");
    submit_sleeps(&env, &url, n);
    let before = pushes(&log);
    let run = run_workers(&env, bin, &url, w, |_| {});
    drop(daemon);
    Run {
        pushes: pushes(&log) - before,
        ..run
    }
}

/// Submits `n` tasks of `sleep 1` through a clone of `url`.
fn submit_sleeps(env: &Env, url: &str, n: usize) {
    let seed = env.clone(url, "seed");
    let sleeps = (0..n)
        .map(|i| {
            format!(r#"{{"id":"w{i:03}","image":"{IMAGE}","command":"sleep 1","timeout":60}}"#)
        })
        .collect();
    crate::submit(env, &seed, sleeps);
}

/// Starts W workers of `bin` on `url` (`--until-empty`, one slot, polling every second), each
/// command changed by `adjust` first, and waits for them all: the makespan, and their own and
/// their children's CPU seconds.
fn run_workers(env: &Env, bin: &str, url: &str, w: usize, adjust: impl Fn(&mut Command)) -> Run {
    let cpu = children_cpu();
    let start = Instant::now();
    let children: Vec<Child> = (0..w)
        .map(|i| {
            let mut command = env.cmd(bin, env.tmp.path());
            command
                .args(["work", "--node-id", &format!("n{i}"), "--repo", url])
                .args(["--until-empty", "--poll-interval", "1"])
                .arg("--state-dir")
                .arg(env.path(&format!("state{i}")))
                .stderr(Stdio::null());
            adjust(&mut command);
            command.spawn().unwrap()
        })
        .collect();
    let mut own = 0.0;
    for mut child in children {
        own += own_cpu_at_exit(child.id());
        assert!(child.wait().unwrap().success());
    }
    let makespan = start.elapsed().as_secs_f64();
    let total = children_cpu() - cpu;
    Run {
        makespan,
        pushes: 0,
        own,
        children: total - own,
    }
}

/// Waits for the child `pid` to exit without reaping it, and returns the CPU seconds it used
/// itself (its children's are in its `cutime`, not here): a zombie's `/proc/<pid>/stat` still
/// has them, until the parent waits for it.
fn own_cpu_at_exit(pid: u32) -> f64 {
    loop {
        // SAFETY: waitid writes only the siginfo given; WNOWAIT leaves the child to be reaped.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let waited = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if waited == 0 {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(error.kind(), std::io::ErrorKind::Interrupted, "{error}");
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's name (which may hold spaces), from the 3rd (state) on:
    // utime and stime are the 14th and 15th, in clock ticks.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let tick = |i: usize| fields[i - 3].parse::<f64>().unwrap() / ticks;
    tick(14) + tick(15)
}

/// Where a W = 8 run's CPU goes, for every build: the worker processes themselves, and each
/// kind of git command and docker CLI call they start, counted and timed per call by wrappers put
/// before the real programs (`/usr/bin/time` around each), and git's own sub-processes counted
/// from `GIT_TRACE2_EVENT` (one file per git process). The wrappers add their own CPU (a shell
/// and `time` per call): the table shows it apart, and the makespan here is not the bench's.
pub fn profile() {
    let (w, n) = (8, 80);
    for (label, bin) in common::builds_to_compare(env!("CARGO_BIN_EXE_git-dgrid")) {
        let env = Env::new();
        let (daemon, grid) = env.served_grid(true);
        let log = count_pushes(&grid);
        let url = daemon.url("g.git");
        submit_sleeps(&env, &url, n);
        let before = pushes(&log);
        let traced = super::profile::Traced::new(&env);
        let load_before = load();
        let run = run_workers(&env, &bin, &url, w, |c| traced.apply(c));
        let landed = pushes(&log) - before;
        drop(daemon);
        println!(
            "\n{label}: {w} workers × {n} tasks, {:.1} s under the wrappers, {landed} pushes landed, load {load_before}-{}",
            run.makespan,
            load()
        );
        traced.report(n, run.own, run.children, landed);
    }
}

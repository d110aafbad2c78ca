//! Shared by the replicated-task tests (`quorum*.rs`): docker wrappers that lie
//! (they call the real docker and alter the task's stdout), a set of real `git dgrid work`
//! processes with their logs, and readers of results, in-progress entries and node reputations on
//! the remote. Builds on `common` and `worker_kit`.
#![allow(dead_code)]

use crate::common::{find_task, wait_exit, wait_for, Env, TaskJson};
use crate::worker_kit::{remove_containers, worker, IMAGE};
use git_dgrid::layout::node_path;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Child;

/// What honest tasks print, and what a liar turns it into.
pub const HONEST: &str = "honest";
pub const LIE: &str = "LIE";

/// A task for `submit -` run by `replicas` nodes: it prints `honest-<id>` (after `sleep` seconds,
/// so that instances overlap when a test needs them to).
pub fn replicated(id: &str, replicas: u32, sleep: u32) -> TaskJson {
    let command = if sleep > 0 {
        format!("sleep {sleep}; echo {HONEST}-{id}")
    } else {
        format!("echo {HONEST}-{id}")
    };
    TaskJson::new(id)
        .image(IMAGE)
        .command(command)
        .timeout(120)
        .set("replicas", replicas)
}

/// The JSON lines `submit -` takes.
pub fn lines(tasks: &[TaskJson]) -> Vec<String> {
    tasks.iter().map(ToString::to_string).collect()
}

/// The stdout an honest instance of [`replicated`] `id` has.
pub fn honest_stdout(id: &str) -> String {
    format!("{HONEST}-{id}\n")
}

fn real_docker() -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v docker"])
        .output()
        .unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(!path.is_empty(), "no docker on PATH");
    path
}

/// Writes an executable `--docker` wrapper at `name` in the test's directory. For `docker run` of a
/// task whose arguments contain `marker` (any `run` when it is empty), the container's stdout goes
/// through `sed s/honest/LIE/`; everything else is `exec`ed untouched. The run itself is `exec`ed
/// too, its stdout into a process substitution: docker keeps the worker's pid, so its exit code,
/// the worker's kill and `docker inspect` (which decides the verdict) are docker's own, and the
/// worker reads stdout until sed, the last writer, closes it.
fn wrapper(env: &Env, name: &str, marker: &str) -> PathBuf {
    let script = env.path(name);
    let when = if marker.is_empty() {
        "[ \"$1\" = run ]".to_string()
    } else {
        format!("[ \"$1\" = run ] && case \"$*\" in *{marker}*) true ;; *) false ;; esac")
    };
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             # A lying node (tests/it/quorum_kit.rs): the real docker, with the task's stdout altered.\n\
             if {when}; then\n  exec {real} \"$@\" > >(exec sed -u 's/{HONEST}/{LIE}/g')\nfi\n\
             exec {real} \"$@\"\n",
            real = real_docker(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// A liar: every task it runs prints `LIE-…` where the truth is `honest-…`. Two workers given the
/// same wrapper collude (their lies agree).
pub fn liar_docker(env: &Env) -> String {
    wrapper(env, "liar-docker", "").display().to_string()
}

/// A node that lies once: only for a task whose command contains `marker`.
pub fn lies_once_docker(env: &Env, marker: &str) -> String {
    assert!(
        marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "a marker the shell pattern takes literally"
    );
    wrapper(env, &format!("lies-once-{marker}"), marker)
        .display()
        .to_string()
}

/// One running worker: its node id, process and log file.
pub struct Proc {
    pub node: String,
    pub child: Child,
    pub log: PathBuf,
}

/// Real `git dgrid work` processes on one grid. Dropping it kills what still runs and removes
/// their containers, so a failed assertion leaves nothing behind.
pub struct Workers<'a> {
    env: &'a Env,
    grid: PathBuf,
    pub procs: Vec<Proc>,
}

/// The lease of workers that are not meant to die: long enough that a loaded machine (two cores,
/// five workers, Docker, CPU hogs) never makes a live worker look dead, which would re-issue
/// instances (15 s was not: a live instance was taken for dead under a load of 7-9).
pub const LEASE: &str = "60";
/// The lease of a test that waits for a dead node's instance to be re-issued: the test kills the
/// node and waits this long for the take-back, and the nodes that live must not be taken for dead
/// meanwhile, so it is no shorter than a loaded machine needs either.
pub const SHORT_LEASE: &str = "30";

/// Heartbeat every second, a lease of `lease` s, polling every second, no skew margin.
pub fn timing(lease: &str) -> Vec<String> {
    [
        "--heartbeat-interval",
        "1",
        "--lease",
        lease,
        "--clock-skew",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl<'a> Workers<'a> {
    pub fn new(env: &'a Env, grid: &Path) -> Workers<'a> {
        Workers {
            env,
            grid: grid.to_path_buf(),
            procs: Vec::new(),
        }
    }

    /// Starts `node` with `extra` flags (its own state dir `state-<node>`), stderr to a log.
    pub fn start(&mut self, node: &str, extra: &[String]) {
        let log = self.env.path(&format!("{node}.log"));
        let args: Vec<&str> = extra.iter().map(String::as_str).collect();
        let child = worker(self.env, &self.grid, node, &args)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.procs.push(Proc {
            node: node.to_string(),
            child,
            log,
        });
    }

    fn proc(&self, node: &str) -> &Proc {
        self.procs
            .iter()
            .find(|p| p.node == node)
            .unwrap_or_else(|| panic!("no worker {node}"))
    }

    /// Sends `signal` (STOP, CONT, TERM, KILL …) to `node`'s process.
    pub fn signal(&self, node: &str, signal: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.proc(node).child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {node}");
    }

    /// `kill -9` of `node`, reaped, and its containers removed (what its restart would do).
    pub fn kill9(&mut self, node: &str) {
        let i = self.procs.iter().position(|p| p.node == node).unwrap();
        let mut p = self.procs.remove(i);
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        remove_containers(&format!("dgrid.node={node}"));
        self.procs.push(p);
    }

    /// Every worker's log, headed by its node id: what a failed assertion shows.
    pub fn logs(&self) -> String {
        self.procs
            .iter()
            .map(|p| {
                format!(
                    "\n--- {}\n{}",
                    p.node,
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                )
            })
            .collect()
    }

    /// SIGTERM to every worker still running (a stopped one is continued first), and waits.
    pub fn stop_all(&mut self) {
        for p in &mut self.procs {
            if p.child.try_wait().unwrap().is_none() {
                for signal in ["-CONT", "-TERM"] {
                    let _ = std::process::Command::new("kill")
                        .args([signal, &p.child.id().to_string()])
                        .status();
                }
            }
        }
        for p in &mut self.procs {
            wait_exit(&mut p.child, 300);
        }
    }
}

impl Drop for Workers<'_> {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.child.kill();
            let _ = p.child.wait();
            remove_containers(&format!("dgrid.node={}", p.node));
        }
    }
}

/// The task's state and content on `main` (`None` when it is nowhere).
pub fn task(env: &Env, grid: &Path, id: &str) -> Option<(String, Value)> {
    find_task(env, grid, id)
}

/// Waits up to `secs` for every task of `ids` to be settled (in `completed/` or `failed/`).
pub fn all_settled(env: &Env, grid: &Path, ids: &[String], secs: u64) -> bool {
    wait_for(secs, || {
        let done: Vec<String> = ["completed", "failed"]
            .iter()
            .flat_map(|s| env.ids_in(grid, "main", s))
            .collect();
        ids.iter().all(|id| done.contains(id))
    })
}

/// How many files of `id` lie under `tasks/` on `main` (in any state): one, for a task that
/// settled once.
pub fn copies(env: &Env, grid: &Path, id: &str) -> usize {
    let listing = env.git(grid, &["ls-tree", "-r", "--name-only", "main", "tasks/"]);
    listing
        .lines()
        .filter(|l| l.ends_with(&format!("/{id}.json")))
        .count()
}

/// The path of `id`'s file in `tasks/in_progress/` on `main`, if it is there.
pub fn in_progress_path(env: &Env, grid: &Path, id: &str) -> Option<String> {
    let listing = env.git(
        grid,
        &["ls-tree", "-r", "--name-only", "main", "tasks/in_progress/"],
    );
    listing
        .lines()
        .find(|l| l.ends_with(&format!("/{id}.json")))
        .map(str::to_string)
}

/// The `instances` entries of `id` while it is in progress (empty otherwise).
pub fn instances(env: &Env, grid: &Path, id: &str) -> Vec<Value> {
    match task(env, grid, id) {
        Some((state, t)) if state == "in_progress" => {
            t["instances"].as_array().cloned().unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Node ids of the live (not dropped) entries of `id` in progress.
pub fn live_nodes(env: &Env, grid: &Path, id: &str) -> Vec<String> {
    instances(env, grid, id)
        .iter()
        .filter(|e| e.get("dropped").is_none_or(Value::is_null))
        .filter_map(|e| e["node_id"].as_str().map(str::to_string))
        .collect()
}

/// `node`'s `reputation` on `main`: (valid, invalid, consecutive_valid), zeros when absent.
pub fn reputation(env: &Env, grid: &Path, node: &str) -> (u64, u64, u64) {
    reputation_at(env, grid, "main", node)
}

/// The same at `rev`.
pub fn reputation_at(env: &Env, grid: &Path, rev: &str, node: &str) -> (u64, u64, u64) {
    let text = env.git(grid, &["show", &format!("{rev}:{}", node_path(node))]);
    let record: Value = serde_json::from_str(&text).unwrap();
    let r = &record["reputation"];
    let n = |k: &str| r[k].as_u64().unwrap_or(0);
    (n("valid"), n("invalid"), n("consecutive_valid"))
}

/// A string list of the result's `quorum` object (`agreeing`, `dissenting`), sorted.
pub fn quorum_list(result: &Value, key: &str) -> Vec<String> {
    let mut list: Vec<String> = result["quorum"][key]
        .as_array()
        .unwrap_or_else(|| panic!("no quorum.{key} in {result}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    list.sort();
    list
}

/// The node ids of the result's `quorum.votes`, sorted (a node twice stays twice).
pub fn voters(result: &Value) -> Vec<String> {
    let mut list: Vec<String> = votes(result)
        .iter()
        .map(|v| v["node_id"].as_str().unwrap().to_string())
        .collect();
    list.sort();
    list
}

pub fn votes(result: &Value) -> Vec<Value> {
    result["quorum"]["votes"]
        .as_array()
        .unwrap_or_else(|| panic!("no quorum.votes in {result}"))
        .clone()
}

/// `quorum::digest` and `quorum::commitment` of the library (the contract a copycat must meet).
pub fn digest(exit_code: Option<i64>, stdout: &str) -> String {
    let sha = git_dgrid::quorum::sha256_hex(stdout.as_bytes());
    git_dgrid::quorum::digest(exit_code, &sha)
}

pub fn commitment(node: &str, salt: &str, digest: &str) -> String {
    git_dgrid::quorum::commitment(node, salt, digest)
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

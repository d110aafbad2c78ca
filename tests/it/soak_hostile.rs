//! The hostile-content soak: while three real workers run real Docker on a
//! real remote, a seeded generator pushes, with plain git around the hook, random mixtures of valid,
//! broken, duplicated, oversized and forged files into every state. Afterwards every valid task
//! ends exactly once, no worker stopped or looped, `status` (text, JSON, dashboard) worked throughout
//! and `validate` names the broken files. A failure prints the seed to replay it.

use crate::hostile_kit as hostile;

use crate::common;
use crate::common::{count_pushes, docker_ready, pushes, wait_for, Env};
use git_dgrid::layout::node_path;
use hostile::{Generator, Ledger};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the generator pushes, and how long the workers then get to drain the queue.
const GENERATE: Duration = Duration::from_secs(35);
/// A hang detector, not a speed limit: a loaded machine drains slowly.
const DRAIN_SECS: u64 = 300;
/// The workers run with `--grace 5`: all three must be gone this long after SIGTERM (a hang
/// detector: a loaded machine is slow to stop too).
const STOP_SECS: u64 = 120;
/// Runs any one id may get: max_attempts (3) plus one, for a forged claim taken back.
const MAX_RUNS_PER_ID: usize = 4;
/// The workers heartbeat every second, but their lease must outlast the longest run of lost races
/// a healthy worker can have: the generator and three workers push several times a second, and
/// the compare-and-swap loop backs off up to 5 s after each loss in a row. With a 4-s lease, a
/// worker that lost 7 races in a row (12 s without a landed push on a loaded 2-core machine) had
/// its task rightly taken back as silent, and the task ran twice (seed 2278466369238108344).
const LEASE_SECS: &str = "30";

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
// It prints its seed: `DGRID_TEST_SEED=N cargo test --test soak_hostile -- --nocapture` replays
// the same files (the timing differs). A failing run keeps its logs and its remote.
fn hostile_content_soak() {
    if !docker_ready() {
        return;
    }
    let seed = std::env::var("DGRID_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("soak seed: {seed} (replay with DGRID_TEST_SEED={seed})");

    let env = Env::new();
    let grid = env.grid("g.git");
    let push_log = count_pushes(&grid);
    let url = grid.to_str().unwrap();
    let gen_clone = env.clone(url, "gen");
    let observer = env.clone(url, "obs");
    let (docker, runs_log, tokens_log) = docker_wrapper(&env);
    let tag = format!("soak{}", std::process::id());
    let nodes: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("{tag}-{n}"))
        .collect();
    let labels = [Some("gpu"), Some("ssd"), None];
    let mut workers: Vec<(String, Child, PathBuf)> = nodes
        .iter()
        .zip(labels)
        .map(|(node, label)| {
            let log = env.path(&format!("{node}.log"));
            let child = worker(&env, &grid, node, label, &docker, &log);
            (node.clone(), child, log)
        })
        .collect();

    let failures = Mutex::new(Vec::<String>::new());
    let fail = |message: String| failures.lock().unwrap().push(message);
    // The generator forges the records of live workers. A worker that has not written its record
    // yet refuses, by design, a node id whose record another session wrote a moment ago (a second
    // worker under that id, for all it can tell): it must be live before the forgeries start.
    let registered = wait_for(300, || {
        let listing = listing(&env, &grid);
        nodes.iter().all(|n| listing.contains(&node_path(n)))
    });
    if !registered {
        fail("the three workers did not write their node records within 300 s".into());
    }
    let started = Instant::now();
    let stop_observer = AtomicBool::new(false);
    let mut generator = Generator::new(seed, nodes.clone());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop_observer.load(Ordering::Relaxed) {
                check_status(&env, &observer, "while the generator ran", &fail);
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        while started.elapsed() < GENERATE {
            if let Err(why) = generator.push_round(&env, &gen_clone) {
                fail(why);
            }
            std::thread::sleep(Duration::from_millis(generator.jitter.u64(200..800)));
        }
        let ledger = &generator.ledger;
        let clean = ledger.clean();
        let drained = wait_for(DRAIN_SECS, || {
            let listing = listing(&env, &grid);
            clean.iter().all(|id| {
                paths_of(&listing, id)
                    .iter()
                    .any(|p| p.starts_with("tasks/completed/") || p.starts_with("tasks/failed/"))
            })
        });
        if !drained {
            fail(format!(
                "the workers did not drain the queue within {DRAIN_SECS} s of the generator's end"
            ));
        }
        stop_observer.store(true, Ordering::Relaxed);
    });
    check_status(&env, &observer, "after the generator stopped", &fail);

    // Workers that stopped on their own are reported once, here, and not waited for below.
    workers.retain_mut(|(node, child, log)| match child.try_wait().unwrap() {
        Some(status) => {
            fail(format!(
                "worker {node} stopped unexpectedly ({status}) before SIGTERM; its log ends:\n{}",
                tail(log, 15)
            ));
            false
        }
        None => {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            true
        }
    });
    let stop_deadline = Instant::now() + Duration::from_secs(STOP_SECS);
    for (node, child, log) in &mut workers {
        let left = stop_deadline
            .saturating_duration_since(Instant::now())
            .as_secs();
        let status = wait_bounded(child, left.max(1));
        if status.map(|s| s.code()) != Some(Some(0)) {
            fail(format!(
                "worker {node} did not exit 0 within {STOP_SECS} s of SIGTERM ({status:?}); its \
                 log ends:\n{}",
                tail(log, 15)
            ));
        }
        if std::fs::read_to_string(&*log)
            .unwrap_or_default()
            .contains("panicked")
        {
            fail(format!("worker {node} panicked:\n{}", tail(log, 30)));
        }
    }
    let elapsed = started.elapsed().as_secs() as usize;
    check_outcomes(
        &env,
        &grid,
        &generator.ledger,
        &runs_log,
        &tokens_log,
        &fail,
    );
    check_economy(&env, &grid, &generator.ledger, &push_log, elapsed, &fail);
    check_validate(&env, &grid, &generator.ledger, &fail);
    for node in &nodes {
        remove_containers(node);
    }

    let failures = failures.into_inner().unwrap();
    if !failures.is_empty() {
        // The workers' logs, the docker wrapper's and the remote's history explain a failure:
        // they outlive the test.
        let kept = env.tmp.path().to_path_buf();
        std::mem::forget(env);
        eprintln!("soak: kept the logs and the remote in {}", kept.display());
    }
    let ledger = &generator.ledger;
    eprintln!(
        "soak: {} pushes by the generator ({} lost races), {} valid tasks ({} must end exactly \
         once), {} forged ids, {} broken files, {} grid pushes",
        ledger.pushes - ledger.lost_races,
        ledger.lost_races,
        ledger.valid.len(),
        ledger.clean().len(),
        ledger.forged.len(),
        ledger.broken.len(),
        pushes(&push_log)
    );
    assert!(
        failures.is_empty(),
        "soak seed {seed} (replay with DGRID_TEST_SEED={seed}): {} failures:\n- {}",
        failures.len(),
        failures.join("\n- ")
    );
}

/// A `--docker` that logs every `docker run` (task id and container name) and copies the
/// containers' stdout into a second log, then execs the real docker.
fn docker_wrapper(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    let real = which::which("docker").expect("docker is on PATH");
    let (script, runs, tokens) = (
        env.path("docker-wrapper"),
        env.path("docker-runs.log"),
        env.path("tokens.log"),
    );
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/bash
for a in "$@"; do
  case "$a" in
    --label=dgrid.task=*) task="${{a#--label=dgrid.task=}}" ;;
    --name=*) name="${{a#--name=}}" ;;
  esac
done
if [ "$1" = run ]; then
  echo "run $task $name" >> '{runs}'
  exec '{real}' "$@" > >(exec tee -a '{tokens}')
fi
exec '{real}' "$@"
"#,
            runs = runs.display(),
            tokens = tokens.display(),
            real = real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, runs, tokens)
}

/// A worker with fast heartbeats, a lease of [`LEASE_SECS`], two slots, its log in `log`.
fn worker(
    env: &Env,
    grid: &Path,
    node: &str,
    label: Option<&str>,
    docker: &Path,
    log: &Path,
) -> Child {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    // `--verbose`: a failure's analysis needs every push's lost races and every fetch.
    cmd.args(["work", "--verbose", "--node-id", node])
        .args(["--repo", grid.to_str().unwrap()])
        .arg("--state-dir")
        .arg(env.path(&format!("state-{node}")))
        .args(["--poll-interval", "1", "--heartbeat-interval", "1"])
        .args([
            "--lease",
            LEASE_SECS,
            "--clock-skew",
            "0",
            "--slots",
            "2",
            "--grace",
            "5",
        ])
        .arg("--docker")
        .arg(docker)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    if let Some(label) = label {
        cmd.args(["--label", label]);
    }
    cmd.spawn().unwrap()
}

/// Runs `cmd` for at most `secs`, its output in files (a wedged command fails, never hangs).
fn run_bounded(env: &Env, mut cmd: Command, secs: u64) -> Result<Output, String> {
    let n = fastrand::u64(..);
    let (out, err) = (env.path(&format!("out-{n}")), env.path(&format!("err-{n}")));
    cmd.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let status = wait_bounded(&mut child, secs).ok_or(format!("still running after {secs} s"))?;
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap_or_default(),
        stderr: std::fs::read(&err).unwrap_or_default(),
    };
    let _ = (std::fs::remove_file(out), std::fs::remove_file(err));
    Ok(output)
}

fn wait_bounded(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// `status`, `status --json` and `status --html DIR` exit 0; the JSON parses, with its counts.
fn check_status(env: &Env, clone: &Path, when: &str, fail: &dyn Fn(String)) {
    let html = env.path("dashboard");
    let html_arg = html.to_str().unwrap();
    for args in [
        vec!["status"],
        vec!["status", "--json"],
        vec!["status", "--html", html_arg],
    ] {
        let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), clone);
        cmd.args(&args);
        let output = match run_bounded(env, cmd, 30) {
            Ok(output) => output,
            Err(why) => {
                fail(format!("`git dgrid {}` {when}: {why}", args.join(" ")));
                continue;
            }
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(0) {
            fail(format!(
                "`git dgrid {}` {when} exited {:?}, expected 0: {stderr}",
                args.join(" "),
                output.status.code()
            ));
            continue;
        }
        let json = match args.get(1).copied() {
            Some("--json") => Some(output.stdout),
            Some("--html") => {
                if !html.join("index.html").is_file() {
                    fail(format!("`status --html` {when} wrote no index.html"));
                }
                Some(std::fs::read(html.join("status.json")).unwrap_or_default())
            }
            _ => None,
        };
        if let Some(json) = json {
            match serde_json::from_slice::<serde_json::Value>(&json) {
                Ok(v) if v["counts"]["queue"].is_u64() => {}
                Ok(v) => fail(format!("{args:?} {when}: no counts.queue in {v}")),
                Err(e) => fail(format!("{args:?} {when}: not JSON ({e})")),
            }
        }
    }
}

/// Every file below `tasks/` and `nodes/` at the remote's main.
fn listing(env: &Env, grid: &Path) -> Vec<String> {
    let out = env
        .cmd("git", grid)
        .args([
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            "--",
            "tasks",
            "nodes",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn paths_of<'a>(listing: &'a [String], id: &str) -> Vec<&'a String> {
    let name = format!("/{id}.json");
    listing
        .iter()
        .filter(|p| p.starts_with("tasks/") && p.ends_with(&name))
        .collect()
}

/// Each clean task: one result file, in the right state, with its token; one `docker run`; its
/// token printed once. Every id: a bounded number of runs (no loop).
fn check_outcomes(
    env: &Env,
    grid: &Path,
    ledger: &Ledger,
    runs_log: &Path,
    tokens_log: &Path,
    fail: &dyn Fn(String),
) {
    let mut runs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(runs_log)
        .unwrap_or_default()
        .lines()
    {
        let mut words = line.split(' ').skip(1);
        if let (Some(task), Some(name)) = (words.next(), words.next()) {
            runs.entry(task.to_string())
                .or_default()
                .push(name.to_string());
        }
    }
    let tokens = std::fs::read_to_string(tokens_log).unwrap_or_default();
    let printed = |token: &str| tokens.lines().filter(|l| l.trim() == token).count();
    let listing = listing(env, grid);
    let claims = claims_per_id(env, grid);
    for id in ledger.clean() {
        let valid = &ledger.valid[&id];
        let paths = paths_of(&listing, &id);
        let expected = if valid.succeeds {
            "completed"
        } else {
            "failed"
        };
        let wanted = [
            format!("tasks/{expected}/{}/{id}.json", hostile::shard(&id)),
            format!("tasks/{expected}/{id}.json"),
        ];
        if paths.len() != 1 || !wanted.contains(paths[0]) {
            fail(format!(
                "valid task {id} (submitted at {}, `{}`, label {:?}, depends on {:?}): expected \
                 exactly one file, its result in tasks/{expected}/, found {paths:?}",
                valid.path,
                if valid.succeeds { "echo" } else { "exit 3" },
                valid.label,
                valid.depends_on
            ));
        } else {
            let text = env.git(grid, &["show", &format!("main:{}", paths[0])]);
            let result: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            let stdout_ok = result["stdout"]
                .as_str()
                .is_some_and(|s| s.contains(&valid.token));
            if result["task_id"] != id.as_str() || !stdout_ok {
                fail(format!(
                    "valid task {id}: the result {} is not its run (task_id {}, stdout {})",
                    paths[0], result["task_id"], result["stdout"]
                ));
            }
        }
        let ran = runs.get(&id).map_or(&[][..], Vec::as_slice);
        if ran.len() != 1 {
            fail(format!(
                "valid task {id}: expected exactly one `docker run`, saw {}: {ran:?}",
                ran.len()
            ));
        }
        if printed(&valid.token) != 1 {
            fail(format!(
                "valid task {id}: its token {} was printed {} times, expected once",
                valid.token,
                printed(&valid.token)
            ));
        }
        let claimed = claims.get(&id).copied().unwrap_or(0);
        if claimed != 1 {
            fail(format!(
                "valid task {id}: claimed {claimed} times in the remote's history, expected once"
            ));
        }
    }
    for id in &ledger.case_twins {
        let ran = runs.get(id).map_or(0, Vec::len);
        let results = paths_of(&listing, id).len();
        if !ledger.forged.contains_key(id) && (ran > 1 || results > 1) {
            fail(format!(
                "task {id} (its id differs from another only by case): {ran} runs and {results} \
                 files, expected at most one of each"
            ));
        }
    }
    for (id, ran) in &runs {
        if ran.len() > MAX_RUNS_PER_ID {
            fail(format!(
                "task {id} ran {} times (more than {MAX_RUNS_PER_ID}: a loop); forged as {:?}",
                ran.len(),
                ledger.forged.get(id)
            ));
        }
    }
    for (id, claimed) in &claims {
        if *claimed > MAX_RUNS_PER_ID {
            fail(format!(
                "task {id} was claimed {claimed} times (more than {MAX_RUNS_PER_ID}: a loop); \
                 forged as {:?}",
                ledger.forged.get(id)
            ));
        }
    }
}

/// How often each id appears in a `claim` item of the subjects of the remote's commits.
fn claims_per_id(env: &Env, grid: &Path) -> BTreeMap<String, usize> {
    let mut claims = BTreeMap::new();
    for subject in env.git(grid, &["log", "--format=%s", "main"]).lines() {
        let Some(items) = subject.strip_prefix("dgrid: ") else {
            continue;
        };
        for item in items.split(", ") {
            // `claim a b by node` (a worker's claim) or `claim a` (one item of a cycle).
            if let Some(ids) = item.strip_prefix("claim ") {
                let ids = ids.split(" by ").next().unwrap_or(ids);
                for id in ids.split_whitespace() {
                    *claims.entry(id.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
    claims
}

/// The grid's pushes stay within the generator's, the heartbeats (one a second per worker) and a
/// few per id the generator used: a loop of claims and releases would blow it.
fn check_economy(
    env: &Env,
    grid: &Path,
    ledger: &Ledger,
    push_log: &Path,
    elapsed_secs: usize,
    fail: &dyn Fn(String),
) {
    let total = pushes(push_log);
    let generator = ledger.pushes - ledger.lost_races;
    let bound = generator + 3 * (elapsed_secs + 5) + 6 * ledger.ids.len();
    if total > bound {
        let subjects = env.git(grid, &["log", "--format=%s", "-30", "main"]);
        fail(format!(
            "{total} pushes on the remote, more than {bound} ({generator} by the generator, \
             heartbeats for {elapsed_secs} s, {} ids); the latest subjects:\n{subjects}",
            ledger.ids.len()
        ));
    }
}

/// `validate` in a clone of the final tip: exit 1 (invalid), no crash, every broken file still
/// there named.
fn check_validate(env: &Env, grid: &Path, ledger: &Ledger, fail: &dyn Fn(String)) {
    let clone = env.clone(grid.to_str().unwrap(), "final");
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone);
    cmd.arg("validate");
    let output = match run_bounded(env, cmd, 60) {
        Ok(output) => output,
        Err(why) => return fail(format!("`git dgrid validate`: {why}")),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.code() != Some(1) || text.contains("panicked") {
        fail(format!(
            "`git dgrid validate` exited {:?}, expected 1 (invalid files): {}",
            output.status.code(),
            text.lines().take(20).collect::<Vec<_>>().join("\n")
        ));
    }
    let present = listing(env, grid);
    for (path, why) in &ledger.broken {
        if present.contains(path) && !text.contains(path.as_str()) {
            fail(format!("`git dgrid validate` does not name {path} ({why})"));
        }
    }
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn remove_containers(node: &str) {
    let out = Command::new("docker")
        .args(["ps", "--all", "--quiet", "--filter"])
        .arg(format!("label=dgrid.node={node}"))
        .output()
        .unwrap();
    for id in common::words(&out.stdout) {
        let _ = Command::new("docker").args(["rm", "-f", &id]).output();
    }
}

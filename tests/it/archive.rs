//! `git dgrid archive` against real bare remotes: 60 tasks run by a real worker (Docker) and
//! archived down to 10 on main, still counted, shown and logged; 30 more run while archive and
//! compact move main under the worker; and archive runs killed with SIGKILL at random instants.

use crate::common::{docker_ready, wait_exit, wait_for, Env};
use crate::worker_kit::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;

/// The ids the archive at `rev` of `grid` holds, from its index (id → state).
fn archived(env: &Env, grid: &Path, rev: &str) -> BTreeMap<String, String> {
    let has = env
        .cmd("git", grid)
        .args(["rev-parse", "--verify", "-q", rev])
        .output()
        .unwrap();
    if !has.status.success() {
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    for file in env
        .git(grid, &["ls-tree", "--name-only", &format!("{rev}:index")])
        .lines()
    {
        let text = env.git(grid, &["show", &format!("{rev}:index/{file}")]);
        let index: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
        for (id, entry) in index {
            out.insert(id, entry["state"].as_str().unwrap().to_string());
        }
    }
    out
}

/// Every line of every day file of the archive at `rev`.
fn archive_lines(env: &Env, grid: &Path, rev: &str) -> Vec<serde_json::Value> {
    let files = env.git(grid, &["ls-tree", "-r", "--name-only", rev, "results/"]);
    files
        .lines()
        .flat_map(|f| {
            env.git(grid, &["show", &format!("{rev}:{f}")])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn totals(env: &Env, grid: &Path, rev: &str) -> serde_json::Value {
    serde_json::from_str(&env.git(grid, &["show", &format!("{rev}:totals.json")])).unwrap()
}

/// The results on main and in the archive, read at one pair of tips: every id in exactly one
/// place, and the archive's totals equal to what it holds.
fn check_one_place(env: &Env, grid: &Path) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let main = env.git(grid, &["rev-parse", "main"]);
    let mut on_main: Vec<String> = env.ids_in(grid, &main, "completed");
    on_main.extend(env.ids_in(grid, &main, "failed"));
    let on_main_set: BTreeSet<String> = on_main.iter().cloned().collect();
    assert_eq!(on_main.len(), on_main_set.len(), "an id twice on main");
    let in_archive = archived(env, grid, "dgrid-archive");
    for id in &on_main_set {
        assert!(
            !in_archive.contains_key(id),
            "{id} is both on main and in the archive"
        );
    }
    if !in_archive.is_empty() {
        let lines = archive_lines(env, grid, "dgrid-archive");
        assert_eq!(lines.len(), in_archive.len(), "one line per archived id");
        let t = totals(env, grid, "dgrid-archive");
        let on_main: serde_json::Value =
            serde_json::from_str(&env.git(grid, &["show", &format!("{main}:dgrid-archive.json")]))
                .unwrap();
        assert_eq!(on_main, t, "main's copy of the totals is the archive's");
        let completed = in_archive.values().filter(|s| *s == "completed").count();
        assert_eq!(t["completed"], completed as u64, "{t}");
        assert_eq!(t["failed"], (in_archive.len() - completed) as u64, "{t}");
    }
    (on_main_set, in_archive)
}

fn status_json(env: &Env, clone: &Path) -> serde_json::Value {
    serde_json::from_str(&env.dgrid_ok(clone, &["status", "--json"], 0)).unwrap()
}

fn run_worker_until_empty(env: &Env, grid: &Path, node: &str) -> std::process::Child {
    worker(env, grid, node, &["--until-empty", "--slots", "4"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path(&format!("{node}.log"))).unwrap())
        .spawn()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn sixty_archived_then_thirty_more_while_archive_and_compact_run() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    // Compaction is a force push of main; archive is not (both refs fast-forward).
    let p = unique("arc");
    let first: Vec<String> = (0..60).map(|i| format!("{p}-a{i:02}")).collect();
    let lines: Vec<String> = first
        .iter()
        .map(|id| spec(id, &format!("echo out-{id}; echo err-{id} >&2"), 60))
        .collect();
    submit(&env, &clone, &lines);
    let mut w = run_worker_until_empty(&env, &grid, "aw1");
    let status = wait_exit(&mut w, 600);
    let log = std::fs::read_to_string(env.path("aw1.log")).unwrap();
    assert!(status.success(), "worker failed: {log}");
    assert_eq!(env.ids_in(&grid, "main", "completed").len(), 60);

    let out = env.dgrid_ok(&clone, &["archive", "--keep", "10"], 0);
    assert!(out.contains("archived 50 results"), "{out}");
    let (on_main, in_archive) = check_one_place(&env, &grid);
    assert!(
        on_main.len() <= 10,
        "{} results left on main",
        on_main.len()
    );
    assert_eq!(on_main.len() + in_archive.len(), 60);
    let json = status_json(&env, &clone);
    assert_eq!(json["counts"]["completed"], 60, "{json}");
    assert_eq!(json["archived"]["completed"], 50, "{json}");
    assert_eq!(json["format_version"], 1);

    // The oldest task (by finish time) is archived: show and logs find it, saying so.
    let lines = archive_lines(&env, &grid, "dgrid-archive");
    let oldest = lines
        .iter()
        .min_by_key(|l| l["result"]["finished_at"].as_str().unwrap().to_string())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = env.dgrid_ok(&clone, &["show", &oldest], 0);
    assert!(
        shown.contains("state  completed") && shown.contains("archived"),
        "{shown}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&env.dgrid_ok(&clone, &["show", "--json", &oldest], 0)).unwrap();
    assert_eq!(shown["result"]["task_id"], oldest.as_str());
    assert!(shown["archived"].as_str().unwrap().starts_with("results/"));
    let logs = env.dgrid(&clone, &["logs", &oldest]);
    assert!(logs.status.success());
    assert_eq!(
        String::from_utf8_lossy(&logs.stdout),
        format!("out-{oldest}\n")
    );
    // Redirected, the task's stderr goes to stderr.
    let stderr = String::from_utf8_lossy(&logs.stderr);
    assert!(stderr.contains("archived") && stderr.contains(&format!("err-{oldest}\n")));
    // Ids are never reused, archived or not.
    let again = env.submit_lines(&clone, &[], &[spec(&oldest, "true", 60)]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stderr).contains("archived"));
    // Retry and cancel name an archived id as archived, not as unknown.
    for verb in ["retry", "cancel"] {
        let out = env.dgrid(&clone, &[verb, &oldest]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{verb}: {err}");
        assert!(
            err.contains("is archived (dgrid-archive: results/"),
            "{verb}: {err}"
        );
    }
    // Nothing more is due under the same rule.
    let out = env.dgrid_ok(&clone, &["archive", "--keep", "10"], 0);
    assert!(out.contains("nothing to archive"), "{out}");

    // 30 more, while archive and compact run under the worker.
    env.git(&grid, &["config", "receive.denyNonFastForwards", "false"]);
    let second: Vec<String> = (0..30).map(|i| format!("{p}-b{i:02}")).collect();
    let lines: Vec<String> = second
        .iter()
        .map(|id| spec(id, "sleep 0.3; echo done", 60))
        .collect();
    submit(&env, &clone, &lines);
    let (docker, runs) = docker_wrapper(&env);
    let mut w = worker(
        &env,
        &grid,
        "aw2",
        &[
            "--until-empty",
            "--slots",
            "2",
            "--docker",
            docker.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(env.path("aw2.log")).unwrap())
    .spawn()
    .unwrap();
    let count_b = || {
        env.ids_in(&grid, "main", "completed")
            .iter()
            .filter(|id| id.contains("-b"))
            .count()
    };
    assert!(wait_for(300, || count_b() >= 8), "the worker stalled");
    env.dgrid_ok(&clone, &["archive", "--keep", "5"], 0);
    assert!(wait_for(300, || count_b() >= 15), "the worker stalled");
    let out = env.dgrid_ok(&clone, &["compact"], 0);
    let old_tip = out.split_whitespace().nth(2).unwrap().to_string();
    let status = wait_exit(&mut w, 600);
    let log = std::fs::read_to_string(env.path("aw2.log")).unwrap();
    assert!(status.success(), "worker failed: {log}");

    let (on_main, in_archive) = check_one_place(&env, &grid);
    let all: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    let found: BTreeSet<String> = on_main.iter().chain(in_archive.keys()).cloned().collect();
    assert_eq!(found, all, "every task's result is in exactly one place");
    let mut ran: Vec<String> = std::fs::read_to_string(&runs)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    ran.sort();
    assert_eq!(ran, second, "each of the 30 ran exactly once");
    let json = status_json(&env, &clone);
    assert_eq!(json["counts"]["completed"], 90, "{json}");
    // main: one root (the compaction) and only what came after it.
    let roots = env.git(&grid, &["rev-list", "--max-parents=0", "main"]);
    assert_eq!(roots.lines().count(), 1, "{roots}");
    let root_msg = env.git(&grid, &["show", "-s", "--format=%B", roots.trim()]);
    assert!(
        root_msg.contains(&format!("Dgrid-Compacted-From: {old_tip}")),
        "{root_msg}"
    );
    assert!(
        env.cmd("git", &grid)
            .args(["merge-base", "--is-ancestor", &old_tip, "dgrid-archive"])
            .status()
            .unwrap()
            .success(),
        "compaction's old history is kept on dgrid-archive"
    );
    env.git(&grid, &["fsck", "--no-progress"]);
}

/// Whether any process works in one of `dirs` (a `git push` and the remote's receive-pack).
fn git_running_in(dirs: &[&Path]) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read_link(p.path().join("cwd"))
            .is_ok_and(|cwd| dirs.iter().any(|d| cwd.starts_with(d)))
    })
}

/// A valid result file for `id`, finished `minutes` after midnight of 2026-01-01.
fn result_file(id: &str, minutes: u32, ok: bool) -> String {
    let at = format!("2026-01-01T{:02}:{:02}:00Z", minutes / 60, minutes % 60);
    serde_json::json!({
        "task_id": id,
        "node_id": "n1",
        "exit_code": if ok { 0 } else { 1 },
        "stdout": format!("{id}\n"),
        "stderr": "",
        "timestamp": at,
        "status": if ok { "success" } else { "failed" },
        "finished_at": at,
        "attempt": 1,
        "task": {"id": id, "image": IMAGE, "command": "true", "created_at": "2026-01-01T00:00:00Z", "timeout": 60, "submitted_by": "t"},
    })
    .to_string()
}

#[test]
fn archive_killed_at_random_instants_leaves_every_result_in_one_place() {
    let env = Env::new();
    let grid = env.grid("k.git");
    let clone = env.clone(grid.to_str().unwrap(), "k");
    let ids: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let state = if i % 5 == 0 { "failed" } else { "completed" };
        let path = clone.join(format!("tasks/{state}/{id}.json"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, result_file(id, i as u32, i % 5 != 0)).unwrap();
    }
    env.git(&clone, &["add", "-A"]);
    env.git(&clone, &["commit", "-q", "-m", "results"]);
    env.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let seed: u64 = std::env::var("DGRID_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("DGRID_TEST_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    // How long a whole run takes here: the kills are spread over that (and a little after).
    let t = std::time::Instant::now();
    env.dgrid_ok(&clone, &["archive", "--keep", "39"], 0);
    let whole = (t.elapsed().as_millis() as u64).max(50);
    let commits = || env.git(&grid, &["rev-list", "--count", "dgrid-archive"]);
    let (mut killed, mut finished, mut landed_anyway) = (0, 0, 0);
    let mut run = 0usize;
    // At least 20 runs killed (those that finish by themselves are extra), 60 runs at most.
    while killed < 20 && run < 60 {
        run += 1;
        let before = commits();
        let keep = 39usize.saturating_sub(run);
        let mut child = env
            .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
            .args(["archive", "--keep", &keep.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(rng.u64(0..whole * 6 / 5)));
        let was_killed = match child.try_wait().unwrap() {
            Some(_) => {
                finished += 1;
                false
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                killed += 1;
                true
            }
        };
        let _ = child.wait();
        // git runs in a process group of its own: a push under way when its parent was killed
        // goes on, and may land. Check once it is over.
        assert!(
            wait_for(300, || !git_running_in(&[&clone, &grid])),
            "git kept running"
        );
        if was_killed && commits() != before {
            landed_anyway += 1; // killed after (or during) its push
        }
        let (on_main, in_archive) = check_one_place(&env, &grid);
        let found: BTreeSet<String> = on_main.iter().chain(in_archive.keys()).cloned().collect();
        assert_eq!(
            found, all,
            "run {run} (seed {seed}) lost or duplicated a result"
        );
    }
    eprintln!(
        "a whole run takes {whole} ms; {killed} runs killed ({landed_anyway} of them after their push landed), {finished} finished by themselves"
    );
    assert!(killed >= 20, "only {killed} runs were killed in {run}");
    // A later run completes the job.
    env.dgrid_ok(&clone, &["archive", "--keep", "0"], 0);
    let (on_main, in_archive) = check_one_place(&env, &grid);
    assert!(on_main.is_empty(), "{on_main:?}");
    assert_eq!(in_archive.len(), 40);
    let t = totals(&env, &grid, "dgrid-archive");
    assert_eq!(
        (t["completed"].as_u64(), t["failed"].as_u64()),
        (Some(32), Some(8))
    );
    env.git(&grid, &["fsck", "--no-progress"]);
    env.dgrid_ok(&clone, &["validate"], 0);
    let json = status_json(&env, &clone);
    assert_eq!(json["counts"]["completed"], 32, "{json}");
    assert_eq!(json["counts"]["failed"], 8, "{json}");
}

/// A result that arrives after its task was taken over, finished elsewhere and archived joins
/// the archived result's late results: never dropped, never back on main.
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_late_result_for_an_archived_task_is_appended_to_the_archive() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let id = unique("alate");
    submit(&env, &clone, &[spec(&id, "echo first", 60)]);
    spool_then_die_and_rescue(&env, &grid, "arc-slowpoke", "arc-rescuer");
    env.dgrid_ok(&clone, &["archive", "--keep", "0"], 0);
    assert_eq!(archived(&env, &grid, "dgrid-archive").len(), 1);
    // The first node comes back and pushes its spooled result: late, and archived meanwhile.
    let out = run_worker(&env, &grid, "arc-slowpoke", &["--once"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("kept in dgrid-archive as a late result"),
        "{log}"
    );
    let lines = archive_lines(&env, &grid, "dgrid-archive");
    assert_eq!(lines.len(), 1);
    let result = &lines[0]["result"];
    assert_eq!(result["node_id"], "arc-rescuer");
    let late = result["late_results"].as_array().expect("late_results");
    assert_eq!(late.len(), 1, "{result}");
    assert_eq!(
        (&late[0]["node_id"], &late[0]["attempt"]),
        (&"arc-slowpoke".into(), &1.into())
    );
    let (on_main, in_archive) = check_one_place(&env, &grid);
    assert!(on_main.is_empty() && in_archive.len() == 1);
    assert_eq!(totals(&env, &grid, "dgrid-archive")["completed"], 1);
    // Again (a second restart): nothing changes.
    let before = env.git(&grid, &["rev-parse", "dgrid-archive"]);
    let _ = run_worker(&env, &grid, "arc-slowpoke", &["--once"]);
    assert_eq!(env.git(&grid, &["rev-parse", "dgrid-archive"]), before);
}

/// A broken `dgrid-archive.json` pushed to main is named and ignored: status keeps working.
#[test]
fn a_broken_totals_file_on_main_never_stops_status() {
    let env = Env::new();
    let grid = env.grid("b.git");
    let clone = env.clone(grid.to_str().unwrap(), "b");
    std::fs::write(
        clone.join("dgrid-archive.json"),
        "{\"completed\": \"many\"}",
    )
    .unwrap();
    env.git(&clone, &["add", "-A"]);
    env.git(&clone, &["commit", "-q", "-m", "broken"]);
    env.git(&clone, &["push", "-q", "origin", "HEAD:main"]);
    let out = env.dgrid(&clone, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dgrid-archive.json"), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["archived"]["completed"], 0);
}

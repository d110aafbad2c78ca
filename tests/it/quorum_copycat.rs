//! A node that copies another instance's revealed output cannot commit to it in time.
//! The copycat pushes with plain git (around the hook) what a lazy node would land, while real
//! workers run the task: its entry must not be counted among the votes.

use crate::common::{docker_ready, push_around_hook, wait_for, Env};
use crate::quorum_kit::*;
use crate::worker_kit::{setup, submit, unique};
use serde_json::Value;

/// The lease where a node dies on purpose: the test waits it out for the take-back, and it is long
/// enough that a live worker on a loaded machine is never taken for dead (6 s and 10 s were not).
const DYING_LEASE: &str = SHORT_LEASE;

/// Whether `id` is in `completed/` or `failed/` (the wait for a seal gives up early then).
fn settled(env: &Env, grid: &std::path::Path, id: &str) -> bool {
    task(env, grid, id).is_some_and(|(s, _)| s == "completed" || s == "failed")
}

/// An entry a copycat pushes with plain git into `id`'s in-progress file (workers stopped, so the
/// file cannot change under it).
fn push_entry(env: &Env, grid: &std::path::Path, clone: &std::path::Path, id: &str, entry: Value) {
    let path = in_progress_path(env, grid, id).expect("still in progress");
    let mut file: Value =
        serde_json::from_str(&env.git(grid, &["show", &format!("main:{path}")])).unwrap();
    file["instances"].as_array_mut().unwrap().push(entry);
    push_around_hook(env, clone, [(path, serde_json::to_string(&file).unwrap())]);
}

fn copycat_entry(node: &str, instance: u64, commitment: &str) -> Value {
    let now = chrono::Utc::now();
    let at = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    serde_json::json!({
        "instance": instance,
        "round": 1,
        "node_id": node,
        "claimed_at": at(now),
        "lease_expires_at": at(now + chrono::Duration::hours(1)),
        "attempt": 1,
        "commitment": commitment,
    })
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_copied_digest_after_the_reveal_is_not_counted() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("copy");
    let id = format!("{p}-t");
    submit(&env, &clone, &lines(&[replicated(&id, 3, 2)]));
    let nodes: Vec<String> = (0..3).map(|i| format!("{p}-n{i}")).collect();
    let mut workers = Workers::new(&env, &grid);
    // Long leases: the workers are stopped (SIGSTOP) for a while and must not be reaped.
    for n in &nodes {
        workers.start(n, &timing("60"));
    }
    let sealed = |e: &Value| e["sealed"] == true;
    assert!(
        wait_for(300, || {
            let all = instances(&env, &grid, &id);
            (all.len() == 3 && all.iter().all(sealed)) || settled(&env, &grid, &id)
        }),
        "the round sealed: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    // Hold the reveal phase open: nothing moves while every worker is stopped (a push already on
    // its way lands in the pause).
    for n in &nodes {
        workers.signal(n, "STOP");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let entries = instances(&env, &grid, &id);
    assert_eq!(
        entries.len(),
        3,
        "the task settled before the test could stop its workers (a window of a poll): {:?}{}",
        task(&env, &grid, &id),
        workers.logs()
    );
    let copied = entries[0]["commitment"].as_str().unwrap().to_string();
    push_entry(
        &env,
        &grid,
        &clone,
        &id,
        copycat_entry("copycat1", 4, &copied),
    );
    let revealed = |all: &[Value]| all.iter().find(|e| e["digest"].is_string()).cloned();
    if revealed(&entries).is_none() {
        workers.signal(&nodes[0], "CONT");
        let seen = wait_for(300, || revealed(&instances(&env, &grid, &id)).is_some());
        workers.signal(&nodes[0], "STOP");
        assert!(
            seen,
            "a reveal: {:?}{}",
            instances(&env, &grid, &id),
            workers.logs()
        );
    }
    let entries = instances(&env, &grid, &id);
    let reveal = revealed(&entries).expect("a reveal on the remote (the task is still open)");
    let truth = digest(Some(0), &honest_stdout(&id));
    assert_eq!(reveal["digest"], truth, "{reveal}");
    let salt = "00".repeat(32);
    let mut entry = copycat_entry("copycat2", 5, &commitment("copycat2", &salt, &truth));
    entry["sealed"] = true.into();
    entry["digest"] = truth.clone().into();
    entry["salt"] = salt.into();
    entry["exit_code"] = 0.into();
    entry["status"] = "success".into();
    push_entry(&env, &grid, &clone, &id, entry);
    for n in &nodes {
        workers.signal(n, "CONT");
    }
    assert!(
        all_settled(&env, &grid, std::slice::from_ref(&id), 600),
        "not settled: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    workers.stop_all();
    let logs = workers.logs();
    let (state, result) = task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}{logs}");
    assert_eq!(result["quorum"]["digest"], truth, "{result}");
    for key in ["agreeing", "dissenting"] {
        let list = quorum_list(&result, key);
        assert!(
            list.iter().all(|n| nodes.contains(n)),
            "quorum.{key} lists only the nodes that ran it: {result}"
        );
    }
    let voted = voters(&result);
    assert!(
        voted.iter().all(|n| nodes.contains(n)),
        "no copycat among the votes: {result}{logs}"
    );
}

/// Rewrites `id`'s in-progress file with `change` and pushes it with plain git, around the hook:
/// read, changed and committed on a fresh fetch for every try, so that a push that loses the race
/// to a worker is made again on the new tip and nothing a worker wrote in between is lost.
fn edit_in_progress(env: &Env, clone: &std::path::Path, id: &str, change: impl Fn(&mut Value)) {
    let git = |args: &[&str]| env.git(clone, args);
    for _ in 0..30 {
        git(&["fetch", "--quiet", "origin", "main"]);
        git(&["reset", "--quiet", "--hard", "origin/main"]);
        let listing = git(&["ls-tree", "-r", "--name-only", "HEAD", "tasks/in_progress/"]);
        let path = listing
            .lines()
            .find(|l| l.ends_with(&format!("/{id}.json")))
            .unwrap_or_else(|| panic!("{id} is no longer in progress: {listing}"))
            .to_string();
        let mut file: Value =
            serde_json::from_str(&git(&["show", &format!("HEAD:{path}")])).unwrap();
        change(&mut file);
        std::fs::write(clone.join(&path), serde_json::to_string(&file).unwrap()).unwrap();
        git(&["commit", "--quiet", "-am", "copycat"]);
        let pushed = env
            .cmd("git", clone)
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "push",
                "--quiet",
                "origin",
                "HEAD:main",
            ])
            .output()
            .unwrap();
        if pushed.status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("could not edit {id} in progress");
}

/// Runs `id` on `nodes` until its round is sealed, stops them all, and kills one whose sealed
/// instance is still to reveal (the others go on): returns its node id and instance number.
fn kill_a_sealed_unrevealed_holder(
    env: &Env,
    grid: &std::path::Path,
    workers: &mut Workers,
    id: &str,
    nodes: &[String],
) -> (String, Value) {
    let sealed = |e: &Value| e["sealed"] == true;
    assert!(
        wait_for(300, || {
            let all = instances(env, grid, id);
            (all.len() == nodes.len() && all.iter().all(sealed)) || settled(env, grid, id)
        }),
        "the round sealed: {:?}{}",
        instances(env, grid, id),
        workers.logs()
    );
    for n in nodes {
        workers.signal(n, "STOP");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let entries = instances(env, grid, id);
    let unrevealed: Vec<&Value> = entries.iter().filter(|e| e["digest"].is_null()).collect();
    assert!(
        !unrevealed.is_empty() && entries.len() == nodes.len(),
        "a sealed instance still to reveal when the workers stopped: {entries:?}{}",
        workers.logs()
    );
    let victim = unrevealed[0]["node_id"].as_str().unwrap().to_string();
    let slot = unrevealed[0]["instance"].clone();
    for n in nodes.iter().filter(|n| **n != victim) {
        workers.signal(n, "CONT");
    }
    workers.kill9(&victim);
    (victim, slot)
}

/// A node that dies after the seal, before its reveal: the nodes waiting on the task (no other
/// node is there) take its entry back, and the two left decide (quorum 2 of 3).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_sealed_instance_of_a_dead_node_does_not_wedge_the_task() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("wedge");
    let id = format!("{p}-t");
    submit(&env, &clone, &lines(&[replicated(&id, 3, 2)]));
    let nodes: Vec<String> = (0..3).map(|i| format!("{p}-n{i}")).collect();
    let mut workers = Workers::new(&env, &grid);
    for n in &nodes {
        workers.start(n, &timing(DYING_LEASE));
    }
    let (victim, _) = kill_a_sealed_unrevealed_holder(&env, &grid, &mut workers, &id, &nodes);
    assert!(
        all_settled(&env, &grid, std::slice::from_ref(&id), 600),
        "settled by the two left once the dead one is taken back: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    workers.stop_all();
    let (state, result) = task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}{}", workers.logs());
    let left: Vec<String> = nodes.iter().filter(|n| **n != victim).cloned().collect();
    assert_eq!(voters(&result), sorted(left), "{result}");
}

/// The lazy node's other way in: an instance whose node died after the seal is re-issued, and
/// the copycat takes that slot once the other instances have revealed, landing a commitment to
/// the digest they revealed (no forged `sealed`: the grid's own transitions seal or not).
#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn a_copied_digest_in_a_reissued_slot_after_the_reveal_is_not_counted() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("reissue");
    let id = format!("{p}-t");
    // Quorum 3 of 3: the two instances left after the death cannot decide alone. Only nodes
    // labelled `grp` may run it: the janitor (unlabelled) takes dead entries back, never a slot,
    // so the reopened slot is the copycat's.
    let spec = replicated(&id, 3, 2)
        .set("quorum", 3)
        .set("labels", vec!["grp"]);
    submit(&env, &clone, &lines(&[spec]));
    let nodes: Vec<String> = (0..3).map(|i| format!("{p}-n{i}")).collect();
    let grp = |lease: &str| [timing(lease), vec!["--label".into(), "grp".into()]].concat();
    let mut workers = Workers::new(&env, &grid);
    for n in &nodes {
        workers.start(n, &grp(DYING_LEASE));
    }
    workers.start(&format!("{p}-janitor"), &timing(DYING_LEASE));
    let (_, slot) = kill_a_sealed_unrevealed_holder(&env, &grid, &mut workers, &id, &nodes);
    let reopened = |all: &[Value]| {
        let live: Vec<&Value> = all.iter().filter(|e| e["dropped"].is_null()).collect();
        live.len() == 2 && live.iter().all(|e| e["digest"].is_string())
    };
    assert!(
        wait_for(300, || reopened(&instances(&env, &grid, &id))),
        "two reveals, the victim's entry dropped: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    let truth = digest(Some(0), &honest_stdout(&id));
    let copied = instances(&env, &grid, &id)
        .into_iter()
        .find(|e| e["dropped"].is_null())
        .unwrap()["digest"]
        .clone();
    assert_eq!(copied, truth);
    let salt = "11".repeat(32);
    let promise = commitment("copycat", &salt, &truth);
    edit_in_progress(&env, &clone, &id, |file| {
        let mut entry = copycat_entry("copycat", slot.as_u64().unwrap(), &promise);
        entry["attempt"] = 2.into();
        file["instances"].as_array_mut().unwrap().push(entry);
    });
    // Give the workers' transitions time to seal it, if they would.
    let copycat_sealed = || {
        instances(&env, &grid, &id)
            .iter()
            .any(|e| e["node_id"] == "copycat" && e["sealed"] == true)
    };
    if wait_for(30, copycat_sealed) {
        edit_in_progress(&env, &clone, &id, |file| {
            for e in file["instances"].as_array_mut().unwrap() {
                if e["node_id"] == "copycat" {
                    e["digest"] = truth.clone().into();
                    e["salt"] = salt.clone().into();
                    e["exit_code"] = 0.into();
                    e["status"] = "success".into();
                }
            }
        });
    }
    // An honest node to fill whatever the task still wants.
    workers.start(&format!("{p}-late"), &grp(DYING_LEASE));
    assert!(
        all_settled(&env, &grid, std::slice::from_ref(&id), 600),
        "not settled: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    workers.stop_all();
    let logs = workers.logs();
    let (_, result) = task(&env, &grid, &id).unwrap();
    for key in ["agreeing", "dissenting"] {
        assert!(
            !quorum_list(&result, key).contains(&"copycat".to_string()),
            "quorum.{key} has no copycat: {result}{logs}"
        );
    }
    assert!(
        !voters(&result).contains(&"copycat".to_string()),
        "the copied digest, committed after the reveals, is not counted: {result}{logs}"
    );
}

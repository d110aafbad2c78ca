//! Replicated tasks with real workers, real git and real Docker: a liar loses to the honest
//! majority, two colluding liars make the task recruit or fail as `no_quorum`, and a killed
//! instance holder's instance is re-issued without anything settling twice (the copycat is in
//! `quorum_copycat.rs`, adaptive replication in `quorum_adaptive.rs`). Liars are `--docker`
//! wrappers around the real docker that alter the task's stdout (`quorum_kit`).

use crate::common::{docker_ready, wait_for, Env};
use crate::quorum_kit::*;
use crate::worker_kit::{setup, submit, unique};
use std::collections::BTreeMap;

fn with_docker(docker: &str, extra: &[&str]) -> Vec<String> {
    let mut args = timing(LEASE);
    args.extend(["--docker".to_string(), docker.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn four_workers_one_liar_honest_majority_wins() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("maj");
    let ids: Vec<String> = (0..6).map(|i| format!("{p}-t{i}")).collect();
    let tasks: Vec<_> = ids.iter().map(|id| replicated(id, 3, 1)).collect();
    submit(&env, &clone, &lines(&tasks));
    let liar = format!("{p}-liar");
    let honest: Vec<String> = (0..3).map(|i| format!("{p}-h{i}")).collect();
    let mut workers = Workers::new(&env, &grid);
    // The liar first: it takes part in the first tasks for sure.
    workers.start(&liar, &with_docker(&liar_docker(&env), &[]));
    for h in &honest {
        workers.start(h, &timing(LEASE));
    }
    assert!(
        all_settled(&env, &grid, &ids, 600),
        "not all settled: {}",
        workers.logs()
    );
    workers.stop_all();
    let logs = workers.logs();
    let mut voted: BTreeMap<String, u64> = BTreeMap::new();
    for id in &ids {
        let (state, result) = task(&env, &grid, id).unwrap();
        assert_eq!(state, "completed", "{id}: {result}{logs}");
        assert_eq!(result["stdout"], honest_stdout(id), "{result}{logs}");
        assert!(result.get("late_results").is_none(), "{result}");
        let nodes = voters(&result);
        let mut distinct = nodes.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            3,
            "three distinct nodes voted: {result}{logs}"
        );
        assert_eq!(nodes.len(), 3, "{result}");
        let q = &result["quorum"];
        assert_eq!(q["replicas"], 3, "{result}");
        assert_eq!(q["digest"], digest(Some(0), &honest_stdout(id)), "{result}");
        let liar_voted = nodes.contains(&liar);
        let expect_dissent = if liar_voted {
            vec![liar.clone()]
        } else {
            vec![]
        };
        assert_eq!(
            quorum_list(&result, "dissenting"),
            expect_dissent,
            "{result}"
        );
        let agreeing: Vec<String> = nodes.iter().filter(|n| **n != liar).cloned().collect();
        assert_eq!(quorum_list(&result, "agreeing"), agreeing, "{result}");
        for n in nodes {
            *voted.entry(n).or_default() += 1;
        }
    }
    let liar_votes = voted.get(&liar).copied().unwrap_or(0);
    assert!(
        liar_votes >= 1,
        "the liar took part somewhere: {voted:?}{logs}"
    );
    assert_eq!(
        reputation(&env, &grid, &liar),
        (0, liar_votes, 0),
        "the liar's (valid, invalid, consecutive_valid): {voted:?}{logs}"
    );
    for h in &honest {
        let n = voted.get(h).copied().unwrap_or(0);
        assert_eq!(
            reputation(&env, &grid, h),
            (n, 0, n),
            "{h}'s (valid, invalid, consecutive_valid): {voted:?}{logs}"
        );
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn colluding_liars_recruit_then_no_quorum() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("collude");
    let (recruits, fails) = (format!("{p}-recruits"), format!("{p}-fails"));
    let tasks = [
        replicated(&recruits, 3, 1)
            .set("quorum", 3)
            .set("max_instances", 5),
        replicated(&fails, 3, 1)
            .set("quorum", 3)
            .set("max_instances", 3),
    ];
    submit(&env, &clone, &lines(&tasks));
    let liars = [format!("{p}-liar1"), format!("{p}-liar2")];
    let honest: Vec<String> = (0..3).map(|i| format!("{p}-h{i}")).collect();
    let mut workers = Workers::new(&env, &grid);
    // The liars alone first, with a slot per task: both hold an instance of each task before any
    // honest node starts, so their participation is certain, not luck.
    let docker = liar_docker(&env);
    for l in &liars {
        workers.start(l, &with_docker(&docker, &["--slots", "2"]));
    }
    let both_in = |id: &str| {
        let live = live_nodes(&env, &grid, id);
        liars.iter().all(|l| live.contains(l))
    };
    assert!(
        wait_for(300, || both_in(&recruits) && both_in(&fails)),
        "the liars hold instances of both tasks: {:?} {:?}{}",
        instances(&env, &grid, &recruits),
        instances(&env, &grid, &fails),
        workers.logs()
    );
    for h in &honest {
        workers.start(h, &timing(LEASE));
    }
    let ids = [recruits.clone(), fails.clone()];
    assert!(
        all_settled(&env, &grid, &ids, 600),
        "not all settled: {}",
        workers.logs()
    );
    workers.stop_all();
    let logs = workers.logs();
    let truth = digest(Some(0), &honest_stdout(&recruits));
    let (state, result) = task(&env, &grid, &recruits).unwrap();
    assert_eq!(state, "completed", "{result}{logs}");
    assert_eq!(result["stdout"], honest_stdout(&recruits), "{result}{logs}");
    assert_eq!(result["quorum"]["digest"], truth, "{result}");
    assert_eq!(
        quorum_list(&result, "dissenting"),
        sorted(liars.to_vec()),
        "{result}"
    );
    assert_eq!(
        quorum_list(&result, "agreeing"),
        sorted(honest.clone()),
        "{result}"
    );
    let nodes = voters(&result);
    assert_eq!(
        nodes.len(),
        5,
        "more than three instances were issued (recruits): {result}{logs}"
    );
    let mut distinct = nodes.clone();
    distinct.dedup();
    assert_eq!(distinct, nodes, "no node voted twice: {result}");

    let (state, result) = task(&env, &grid, &fails).unwrap();
    assert_eq!(state, "failed", "{result}{logs}");
    assert_eq!(result["status"], "no_quorum", "{result}{logs}");
    assert!(result["exit_code"].is_null(), "{result}");
    let q = &result["quorum"];
    assert!(q["digest"].is_null(), "no agreed digest: {result}");
    assert_eq!(quorum_list(&result, "agreeing"), Vec::<String>::new());
    assert_eq!(quorum_list(&result, "dissenting"), Vec::<String>::new());
    let all = votes(&result);
    assert_eq!(all.len(), 3, "every instance's digest: {result}{logs}");
    let truth = digest(Some(0), &honest_stdout(&fails));
    let lie = digest(Some(0), &honest_stdout(&fails).replace(HONEST, LIE));
    for vote in &all {
        let node = vote["node_id"].as_str().unwrap().to_string();
        let expect = if liars.contains(&node) { &lie } else { &truth };
        assert_eq!(vote["digest"], *expect, "{node}'s vote: {result}");
    }
    assert!(
        voters(&result).iter().any(|n| liars.contains(n)),
        "{result}"
    );
    // Only the settled task counts: no_quorum leaves reputations alone.
    for l in &liars {
        assert_eq!(reputation(&env, &grid, l), (0, 1, 0), "{l}{logs}");
    }
    for h in &honest {
        assert_eq!(reputation(&env, &grid, h), (1, 0, 1), "{h}{logs}");
    }
}

#[test]
#[cfg_attr(
    not(have_docker),
    ignore = "needs a Docker engine (scripts/start-docker.sh as root)"
)]
fn kill_9_of_an_instance_holder_reissues_it() {
    if !docker_ready() {
        return;
    }
    let env = Env::new();
    let (grid, clone, _) = setup(&env);
    let p = unique("k9");
    let id = format!("{p}-t");
    submit(&env, &clone, &lines(&[replicated(&id, 3, 10)]));
    let victim = format!("{p}-victim");
    let (h1, h2, h3) = (format!("{p}-h1"), format!("{p}-h2"), format!("{p}-h3"));
    let mut workers = Workers::new(&env, &grid);
    workers.start(&victim, &timing(SHORT_LEASE));
    // Killed while it runs its instance (the task sleeps): nothing of it is committed.
    let running = || {
        instances(&env, &grid, &id)
            .into_iter()
            .find(|e| e["node_id"] == victim.as_str() && e["commitment"].is_null())
    };
    assert!(
        wait_for(300, || running().is_some()),
        "the victim holds an instance: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    let held = running().unwrap();
    workers.kill9(&victim);
    for n in [&h1, &h2, &h3] {
        workers.start(n, &timing(SHORT_LEASE));
    }
    assert!(
        all_settled(&env, &grid, std::slice::from_ref(&id), 600),
        "not settled: {:?}{}",
        instances(&env, &grid, &id),
        workers.logs()
    );
    // The awaiting nodes find it settled and drop their results: still one file, no late result.
    std::thread::sleep(std::time::Duration::from_secs(4));
    workers.stop_all();
    let logs = workers.logs();
    assert_eq!(copies(&env, &grid, &id), 1, "settled once{logs}");
    let (state, result) = task(&env, &grid, &id).unwrap();
    assert_eq!(state, "completed", "{result}{logs}");
    assert_eq!(result["stdout"], honest_stdout(&id), "{result}");
    assert!(result.get("late_results").is_none(), "{result}{logs}");
    let nodes = voters(&result);
    assert_eq!(nodes, sorted(vec![h1, h2, h3]), "{result}{logs}");
    // Whoever took the victim's instance over ran it as its second attempt.
    let taken = votes(&result)
        .into_iter()
        .find(|v| v["instance"] == held["instance"])
        .unwrap_or_else(|| panic!("a vote for the victim's instance: {result}"));
    assert_eq!(taken["attempt"], 2, "its second attempt: {result}");
}

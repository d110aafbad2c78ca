//! Adaptive replication in the grid (`"replicas": "adaptive"`): a
//! node with a run of valid results claims the task alone (`instances_wanted: 1`); once its solo
//! instance revealed, the task waits for the first commit another node (one with a record) lands
//! after that reveal,
//! and `quorum::adaptive::check_drawn` over it decides: a checking instance (`instances_wanted:
//! 2`), or settled alone with `quorum.unchecked`. The solo node cannot steer the draw: the commit
//! is the first one after its reveal, whoever pushes when.

use crate::grid::read::snapshot::Snapshot;
use crate::grid::read::writers;
use crate::layout::State;
use crate::node::Reputation;
use crate::odb;
use crate::quorum::{self, Rule};
use crate::task::{Instance, TaskSpec, ADAPTIVE_REPLICAS};
use gix::ObjectId;

/// How far back along `main` a draw looks for the reveal (a solo node pushes within a lease).
const LOOK_BACK: usize = 200;

/// At a claim from the queue: a trusted node runs an adaptive task alone.
pub(crate) fn solo_claim(spec: &mut TaskSpec, rule: &Rule, reputation: Option<&Reputation>) {
    if rule.adaptive && spec.instances.is_empty() && quorum::adaptive::solo_allowed(reputation) {
        spec.instances_wanted = Some(1);
    }
}

/// Whether `spec` is an adaptive task run alone (its draw is still to come, or it is settled).
pub(crate) fn is_solo(spec: &TaskSpec, rule: &Rule) -> bool {
    rule.adaptive && quorum::wanted(spec, rule) == 1
}

/// The commit the check of `solo`'s revealed instance of the file at `path` is drawn from: the
/// first commit on `main`'s first-parent line after the one that landed the reveal, by another
/// node that has a record at the tip. `None` while there is none yet.
pub(crate) fn draw_commit(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    path: &str,
    solo: &str,
) -> Option<ObjectId> {
    let tip = snapshot.tip?;
    let line = writers::landed_since(repo, tip, None, LOOK_BACK).ok()?;
    // Newest first: the commits whose file shows the reveal, up to the one that landed it.
    let mut after_reveal = Vec::new();
    for landed in &line {
        if !revealed_at(repo, landed.commit, path, solo) {
            break;
        }
        after_reveal.push(landed);
    }
    // The oldest of them landed the reveal; the first commit after it by another author draws.
    after_reveal.pop()?;
    // The author must be a node with a record, not a made-up name: any pusher may write any
    // author, and a solo node doing so would pick (grind) the commit that draws.
    let recorded = |n: &str| snapshot.nodes.iter().any(|r| r.id == n);
    after_reveal
        .into_iter()
        .rev()
        .find(|l| l.node.as_deref().is_some_and(|n| n != solo && recorded(n)))
        .map(|l| l.commit)
}

/// Whether the file at `path` in `commit` holds `solo`'s entry with its digest revealed.
fn revealed_at(repo: &gix::Repository, commit: ObjectId, path: &str, solo: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    let blob = odb::commit_tree(repo, commit)
        .and_then(|root| odb::subtree(repo, root, dir))
        .ok()
        .flatten()
        .and_then(|tree| {
            let tree = repo.find_tree(tree).ok()?;
            let decoded = tree.decode().ok()?;
            decoded
                .entries
                .iter()
                .find(|e| e.filename == name)
                .map(|e| e.oid.to_owned())
        });
    let Some(value) = blob
        .and_then(|b| repo.find_blob(b).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b.data).ok())
    else {
        return false;
    };
    value["instances"].as_array().is_some_and(|entries| {
        entries
            .iter()
            .any(|e| e["node_id"] == solo && e["digest"].is_string() && e.get("dropped").is_none())
    })
}

/// Re-checks: the results `node` settled alone and unchecked go back to `in_progress` with their
/// solo entry (rebuilt from the result's vote) and a checking instance wanted, once `node` is
/// found dissenting (its run of valid results was not what it seemed). Tasks in `skip` (touched
/// by this transition already) are left for a later one.
pub(crate) fn rechecks(
    repo: &gix::Repository,
    snapshot: &Snapshot,
    node: &str,
    limits: &crate::task::Limits,
    now: &str,
    skip: &std::collections::HashSet<String>,
) -> Vec<crate::odb::Edit> {
    let results: Vec<(String, crate::task::TaskResult)> = snapshot
        .in_state(State::Completed)
        .filter(|t| !skip.contains(&t.id))
        .filter_map(|t| {
            crate::grid::read::snapshot::load_result(repo, t, limits)
                .ok()
                .map(|r| (t.path.clone(), r))
        })
        .collect();
    let unchecked = quorum::adaptive::unchecked_by(results.iter().map(|(_, r)| r), node);
    let mut edits = Vec::new();
    for result in unchecked {
        let Some(path) = results
            .iter()
            .find(|(_, r)| std::ptr::eq(r, result))
            .map(|(p, _)| p)
        else {
            continue;
        };
        let (Some(task), Some(outcome)) = (&result.task, &result.quorum) else {
            continue;
        };
        let Some(vote) = outcome.votes.iter().find(|v| v.node_id == node) else {
            continue;
        };
        let mut spec = task.clone();
        // The grid rebuilds the entry from the vote the result records: its salt is not the
        // node's secret any more (the vote was public), only what makes the entry count again.
        let salt = quorum::sha256_hex(format!("dgrid-recheck-v1\n{}\n", spec.id).as_bytes());
        spec.instances = vec![Instance {
            instance: vote.instance,
            round: 1,
            node_id: vote.node_id.clone(),
            claimed_at: result.started_at.clone().unwrap_or_else(|| now.to_string()),
            lease_expires_at: now.to_string(),
            attempt: vote.attempt,
            commitment: Some(quorum::commitment(&vote.node_id, &salt, &vote.digest)),
            sealed: true,
            digest: Some(vote.digest.clone()),
            salt: Some(salt),
            exit_code: result.exit_code,
            status: Some(result.status),
            dropped: None,
        }];
        spec.instances_wanted = Some(ADAPTIVE_REPLICAS);
        edits.extend(crate::odb::Edit::move_file(
            path,
            crate::layout::task_path(State::InProgress, &spec.id),
            spec.to_json(),
        ));
    }
    edits
}

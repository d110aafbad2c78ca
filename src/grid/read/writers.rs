//! Who wrote the commits that landed on `main`: how a worker learns the grid's push rate and its
//! active writers (`src/worker/policy/pacing.rs`). Only authors are read: commit dates come from other
//! machines' clocks, and the worker stamps each commit with the instant it saw it instead.
//!
//! An author's name costs nothing: anyone who may push can write commits as `X <X@dgrid.invalid>`
//! under made-up ids. So a commit counts as a node's *transition*, the evidence
//! that a writer is active, only when it also rewrites that node's own record with one that reads
//! (every worker push writes its heartbeat); anything else (a person's submit, an empty commit
//! posing as a node) fills the push window but names no writer.

use crate::grid::read::snapshot::Snapshot;
use crate::layout;
use crate::node::{NodeRecord, NodeState};
use crate::odb::NODE_EMAIL_DOMAIN;
use anyhow::Result;
use gix::ObjectId;
use std::collections::HashSet;

/// One commit on the first-parent line of `main`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedCommit {
    pub commit: ObjectId,
    /// The node that wrote it, or `None` for a person (submit, cancel, an edit by hand).
    pub node: Option<String>,
    /// Whether it is `node`'s own transition: it rewrites that node's record with one that reads.
    pub transition: bool,
}

/// The commits from `tip` back to (not including) `since`, newest first, at most `max`: every
/// accepted push since `since` (each push moves `main` by exactly one commit). With `since`
/// `None`, or not on the line (a rewritten branch), the newest `max`.
pub fn landed_since(
    repo: &gix::Repository,
    tip: ObjectId,
    since: Option<ObjectId>,
    max: usize,
) -> Result<Vec<LandedCommit>> {
    let mut landed = Vec::new();
    let mut current = Some(tip);
    while let Some(id) = current {
        if Some(id) == since || landed.len() >= max {
            break;
        }
        let commit = repo.find_commit(id)?;
        let author = commit.author()?;
        let email = author.email.to_string();
        let node = email
            .strip_suffix(NODE_EMAIL_DOMAIN)
            .filter(|_| author.name == email.trim_end_matches(NODE_EMAIL_DOMAIN))
            .map(str::to_string);
        current = commit.parent_ids().next().map(|p| p.detach());
        let transition = node
            .as_deref()
            .is_some_and(|n| writes_own_record(repo, id, current, n));
        landed.push(LandedCommit {
            commit: id,
            node,
            transition,
        });
    }
    Ok(landed)
}

/// Whether `commit` rewrites `node`'s record (against its first parent `parent`) with one that
/// reads: what every push of a worker does, and an empty commit under a node's name does not.
fn writes_own_record(
    repo: &gix::Repository,
    commit: ObjectId,
    parent: Option<ObjectId>,
    node: &str,
) -> bool {
    // The record readers take: the sharded one, else the flat one.
    let paths = [layout::node_path(node), layout::flat_node_path(node)];
    let record = |c: ObjectId| -> Option<ObjectId> {
        let tree = repo.find_commit(c).ok()?.tree().ok()?;
        paths.iter().find_map(|path| {
            let entry = tree.lookup_entry_by_path(path).ok().flatten()?;
            Some(entry.object_id())
        })
    };
    let Some(blob) = record(commit) else {
        return false;
    };
    if parent.and_then(record) == Some(blob) {
        return false;
    }
    repo.find_blob(blob)
        .ok()
        .and_then(|b| NodeRecord::parse(&b.data))
        .is_some_and(|r| r.id == node)
}

/// The nodes whose record says they stopped (or cannot be read): they push no more.
pub fn stopped_nodes(repo: &gix::Repository, snapshot: &Snapshot) -> HashSet<String> {
    snapshot
        .nodes
        .iter()
        .filter(|n| {
            repo.find_blob(n.blob)
                .ok()
                .and_then(|b| NodeRecord::parse(&b.data))
                .is_none_or(|r| r.state == NodeState::Stopped)
        })
        .map(|n| n.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::testkit::grid;
    use crate::odb::{write_commit, Edit, Identity};

    #[test]
    fn the_writers_of_new_commits_are_named_by_their_authors() {
        let fx = grid(&[]);
        let base = fx.snapshot.tip;
        let mut tip = base;
        let person = Identity {
            name: "Ada".into(),
            email: "ada@example.org".into(),
        };
        // A person forging a node's mail address with another name is a person.
        let forger = Identity {
            name: "Ada".into(),
            email: "w1@dgrid.invalid".into(),
        };
        for (i, who) in [Identity::node("w1"), person, Identity::node("w2"), forger]
            .iter()
            .enumerate()
        {
            let edit = Edit::Write {
                path: format!("nodes/n{i}.json"),
                content: b"{}".to_vec(),
            };
            tip = Some(write_commit(&fx.repo, tip, &[edit], who, "dgrid: test\n").unwrap());
        }
        let all = landed_since(&fx.repo, tip.unwrap(), base, 100).unwrap();
        let nodes: Vec<Option<&str>> = all.iter().map(|l| l.node.as_deref()).collect();
        assert_eq!(nodes, [None, Some("w2"), None, Some("w1")], "newest first");
        assert_eq!(
            landed_since(&fx.repo, tip.unwrap(), base, 2).unwrap().len(),
            2
        );
        assert_eq!(
            landed_since(&fx.repo, tip.unwrap(), tip, 100).unwrap(),
            [],
            "nothing new"
        );
    }

    /// An author's name costs nothing. Only a commit that rewrites its node's
    /// own record (with one that reads) is that node's transition; sixty empty commits under
    /// made-up node ids name no writer.
    #[test]
    fn only_a_commit_that_writes_its_own_record_is_a_nodes_transition() {
        use crate::grid::testkit::node;
        let bytes = |v: &serde_json::Value| serde_json::to_vec(v).unwrap();
        let fx = grid(&[]);
        let base = fx.snapshot.tip;
        let mut tip = base;
        for i in 0..60 {
            let who = Identity::node(&format!("fake-{i}"));
            tip = Some(write_commit(&fx.repo, tip, &[], &who, "dgrid: heartbeat\n").unwrap());
        }
        let record = |beat: &str| Edit::Write {
            path: "nodes/w1.json".into(),
            content: bytes(&node("w1", beat, "s1")),
        };
        let w1 = Identity::node("w1");
        for edit in [
            record("2026-01-01T10:00:00Z"),
            record("2026-01-01T10:00:00Z"), // unchanged: not a transition
            Edit::Write {
                path: "nodes/w1.json".into(),
                content: b"{}".to_vec(), // does not read
            },
        ] {
            let edits = [edit];
            tip = Some(write_commit(&fx.repo, tip, &edits, &w1, "x\n").unwrap());
        }
        let all = landed_since(&fx.repo, tip.unwrap(), base, 100).unwrap();
        let transitions: Vec<bool> = all.iter().map(|l| l.transition).collect();
        assert_eq!(transitions[..3], [false, false, true], "newest first");
        assert!(all[3..].iter().all(|l| !l.transition && l.node.is_some()));
    }

    /// After `git dgrid compact`, the last-seen commit is no longer on the line: the walk stops
    /// at the new root, counting only the compaction and what came after.
    #[test]
    fn a_compacted_line_ends_at_its_new_root() {
        let fx = grid(&[]);
        let seen = fx.snapshot.tip;
        let edit = |i: usize| Edit::Write {
            path: format!("nodes/n{i}.json"),
            content: b"{}".to_vec(),
        };
        let person = Identity {
            name: "Ada".into(),
            email: "ada@example.org".into(),
        };
        let root = write_commit(&fx.repo, None, &[edit(0)], &person, "dgrid: compact\n").unwrap();
        let mut tip = root;
        for i in 1..3 {
            tip = write_commit(
                &fx.repo,
                Some(tip),
                &[edit(i)],
                &Identity::node("w1"),
                "x\n",
            )
            .unwrap();
        }
        let all = landed_since(&fx.repo, tip, seen, 100).unwrap();
        assert_eq!(all.len(), 3, "the two pushes and the compaction");
        assert_eq!(all.last().unwrap().commit, root);
    }
}

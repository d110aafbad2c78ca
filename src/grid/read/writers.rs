//! Who wrote the commits that landed on `main`: how a worker learns the grid's push rate and its
//! active writers (`src/worker/policy/pacing.rs`). Only authors are read: commit dates come from other
//! machines' clocks, and the worker stamps each commit with the instant it saw it instead.

use crate::grid::read::snapshot::Snapshot;
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
        landed.push(LandedCommit { commit: id, node });
    }
    Ok(landed)
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

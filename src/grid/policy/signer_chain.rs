//! The chain of signed changes to the grid's `.dgrid/allowed_signers`
//! (docs/ARCHITECTURE.md#signed-tasks): from the commit the operator pinned (`dgrid.trustRoot`)
//! along `main`'s first-parent line, each commit that changes the file must be signed (git's SSH
//! commit signature, namespace `git`) by a key of the file's last trusted version.
//!
//! Whoever pushes a merge chooses its first parent, and whoever can push can edit the file, so
//! the walk fails closed rather than fall back to an older set:
//! - a change that is not signed so breaks the chain; until a later change signed by a key of the
//!   last trusted version mends it, there are no grid signers (never the older version: that would
//!   let one unsigned edit freeze the set and undo every later revocation);
//! - a change of the file anywhere in `root..tip` off the first-parent line (a merge whose first
//!   parent skips signed changes) fails closed: the chain must hold every change;
//! - the change this worker accepted last (kept in its state dir) must still be in `main`'s
//!   history: a forced push back to before a revocation fails closed too.

use crate::gitcmd;
use crate::task::SignedBy;
use crate::trust::{self, AllowedSigners};
use anyhow::{bail, Result};
use chrono::Utc;
use gix::ObjectId;
use std::collections::HashSet;
use std::path::Path;

/// The grid's signers file, at the top of the tree.
pub(crate) const GRID_SIGNERS_PATH: &str = ".dgrid/allowed_signers";

/// The grid's signers as the chain gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    /// The trusted text of the file.
    pub text: String,
    /// The commit whose version of the file is in force: the root, or the last signed change.
    pub change: String,
    /// The root, as a full commit id.
    pub root: String,
}

/// The commit the pinned trust root `root` names and `tip` as hex, once the root is known to be
/// in `tip`'s history: where every chain of signed changes starts.
pub(super) fn trusted_root(dir: &Path, root: &str, tip: ObjectId) -> Result<(String, String)> {
    let root_id = gitcmd::run(
        dir,
        &["rev-parse", "--verify", &format!("{root}^{{commit}}")],
    )?;
    let root_id = root_id.stdout.trim().to_string();
    if root_id.is_empty() {
        bail!("the trust root {root:?} is not a commit here (dgrid.trustRoot)");
    }
    let tip = tip.to_string();
    if !is_ancestor(dir, &root_id, &tip)? {
        bail!("the trust root {root_id} is not in the history of main ({tip})");
    }
    Ok((root_id, tip))
}

/// The commits of `main`'s first-parent line after `root_id` up to `tip` that change `path`,
/// oldest first; an error when a change to it came in off that line (a merge's second parent),
/// since whoever pushes a merge chooses its first parent.
pub(super) fn changes_on_the_line(
    dir: &Path,
    root_id: &str,
    tip: &str,
    path: &str,
) -> Result<Vec<String>> {
    let chain = lines(
        dir,
        &[
            "rev-list",
            "--reverse",
            "--first-parent",
            &format!("{root_id}..{tip}"),
            "--",
            path,
        ],
    )?;
    off_the_line(dir, root_id, tip, &chain, path)?;
    Ok(chain)
}

/// The grid's signers at `tip`, following the chain from `root` (a commit id or name).
/// `accepted`: the change this worker accepted before under the same root, which must still be
/// in `main`'s history. An error means: no grid signers, and says why.
pub(crate) fn grid_signers(
    dir: &Path,
    root: &str,
    tip: ObjectId,
    accepted: Option<&str>,
) -> Result<Chain> {
    let (root_id, tip) = trusted_root(dir, root, tip)?;
    if let Some(accepted) = accepted {
        if !is_ancestor(dir, accepted, &tip)? {
            bail!(
                "main ({tip}) no longer contains commit {accepted}, whose {GRID_SIGNERS_PATH} this worker accepted: its history was rewritten (a forced push?); check the file and pin a new dgrid.trustRoot"
            );
        }
    }
    let first_parents = lines(
        dir,
        &["rev-list", "--first-parent", &format!("{root_id}..{tip}")],
    )?;
    if let Some(oldest) = first_parents.last() {
        let parent = gitcmd::run(dir, &["rev-parse", "--verify", &format!("{oldest}^1")])?;
        if parent.stdout.trim() != root_id {
            bail!("the trust root {root_id} is not on main's first-parent line (a merge's first parent goes around it); pin a root on it");
        }
    }
    let chain = changes_on_the_line(dir, &root_id, &tip, GRID_SIGNERS_PATH)?;
    walk(dir, root_id, &chain)
}

/// Follows the changes on the first-parent line, in order.
fn walk(dir: &Path, root_id: String, chain: &[String]) -> Result<Chain> {
    let mut trusted = Chain {
        text: file_at(dir, &root_id, GRID_SIGNERS_PATH)?,
        change: root_id.clone(),
        root: root_id,
    };
    let mut broken: Option<(String, String)> = None;
    for commit in chain {
        let previous = AllowedSigners::parse(
            &format!("{GRID_SIGNERS_PATH} before {commit}"),
            &trusted.text,
        )
        .unwrap_or_default();
        match commit_signer(dir, commit, &previous) {
            Ok(_) => {
                trusted.text = file_at(dir, commit, GRID_SIGNERS_PATH)?;
                trusted.change = commit.clone();
                broken = None;
            }
            Err(why) => {
                broken.get_or_insert((commit.clone(), why));
            }
        }
    }
    if let Some((commit, why)) = broken {
        bail!(
            "commit {commit} changes {GRID_SIGNERS_PATH} and {why}; no grid signers until a change signed by a key of its last trusted version (commit {}) or a new dgrid.trustRoot",
            trusted.change
        );
    }
    Ok(trusted)
}

/// Fails when a commit in `root..tip` off the first-parent line changes the file: a merge chose
/// a first parent that leaves a change (maybe a signed revocation) out of the chain. A merge
/// changes the file only when it differs from every parent (else it took one side's version).
fn off_the_line(dir: &Path, root: &str, tip: &str, chain: &[String], path: &str) -> Result<()> {
    let on_line: HashSet<&str> = chain.iter().map(String::as_str).collect();
    let all = lines(
        dir,
        &[
            "rev-list",
            "--full-history",
            "--parents",
            &format!("{root}..{tip}"),
            "--",
            path,
        ],
    )?;
    for entry in all {
        let mut ids = entry.split_whitespace();
        let Some(commit) = ids.next() else { continue };
        let parents: Vec<&str> = ids.collect();
        if on_line.contains(commit)
            || (parents.len() > 1 && takes_a_side(dir, commit, &parents, path)?)
        {
            continue;
        }
        bail!(
            "commit {commit} changes {path} off main's first-parent line (a merge's first parent leaves it out of the chain of signed changes); pin a new dgrid.trustRoot once the file is checked"
        );
    }
    Ok(())
}

/// Whether the merge `commit`'s file is one of its parents' (blob ids compared; absent equals
/// absent).
fn takes_a_side(dir: &Path, commit: &str, parents: &[&str], path: &str) -> Result<bool> {
    let blob =
        |c: &str| -> Result<String> { Ok(gitcmd::run(dir, &["ls-tree", c, "--", path])?.stdout) };
    let mine = blob(commit)?;
    for parent in parents {
        if blob(parent)? == mine {
            return Ok(true);
        }
    }
    Ok(false)
}

fn is_ancestor(dir: &Path, ancestor: &str, of: &str) -> Result<bool> {
    Ok(gitcmd::run(dir, &["merge-base", "--is-ancestor", ancestor, of])?.success)
}

fn lines(dir: &Path, args: &[&str]) -> Result<Vec<String>> {
    let out = gitcmd::run(dir, args)?;
    if !out.success {
        bail!("git {}: {}", args.join(" "), out.stderr.trim());
    }
    Ok(out.stdout.lines().map(str::to_string).collect())
}

/// The file at `commit`, empty when it has none.
pub(super) fn file_at(dir: &Path, commit: &str, path: &str) -> Result<String> {
    let out = gitcmd::run(dir, &["show", &format!("{commit}:{path}")])?;
    Ok(if out.success {
        out.stdout
    } else {
        String::new()
    })
}

/// Who signed `commit` (its `gpgsig` header, SSH, namespace `git`), if `signers` trusts them.
pub(super) fn commit_signer(
    dir: &Path,
    commit: &str,
    signers: &AllowedSigners,
) -> Result<SignedBy, String> {
    let raw = gitcmd::run(dir, &["cat-file", "commit", commit]).map_err(|e| e.to_string())?;
    if !raw.success {
        return Err(format!("cannot read the commit: {}", raw.stderr.trim()));
    }
    let (payload, signature) = split_signature(&raw.stdout);
    let signature = signature.ok_or("the commit is not signed")?;
    trust::verify_detached(&signature, "git", payload.as_bytes(), signers, Utc::now())
        .map_err(|why| format!("its signature is not by a key of the previous version ({why})"))
}

/// A commit object split into what was signed (the object without its `gpgsig` header) and
/// the signature, as git does it.
fn split_signature(raw: &str) -> (String, Option<String>) {
    let (header, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut payload = String::new();
    let mut signature: Option<String> = None;
    let mut in_sig = false;
    for line in header.split('\n') {
        if let Some(rest) = line.strip_prefix("gpgsig ") {
            signature = Some(format!("{rest}\n"));
            in_sig = true;
        } else if in_sig && line.starts_with(' ') {
            if let Some(s) = signature.as_mut() {
                s.push_str(&line[1..]);
                s.push('\n');
            }
        } else {
            in_sig = false;
            payload.push_str(line);
            payload.push('\n');
        }
    }
    payload.push('\n');
    payload.push_str(body);
    (payload, signature)
}

#[cfg(test)]
mod tests {
    use super::split_signature;

    #[test]
    fn the_signature_header_is_cut_out_of_the_payload() {
        let raw = "tree t\nparent p\nauthor a\ncommitter c\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n -----END SSH SIGNATURE-----\n\nmessage\n";
        let (payload, sig) = split_signature(raw);
        assert_eq!(
            payload,
            "tree t\nparent p\nauthor a\ncommitter c\n\nmessage\n"
        );
        assert_eq!(
            sig.unwrap(),
            "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n"
        );
        let (payload, sig) = split_signature("tree t\n\nm\n");
        assert_eq!((payload.as_str(), sig), ("tree t\n\nm\n", None));
    }
}

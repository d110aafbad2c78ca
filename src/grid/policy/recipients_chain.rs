//! The grid's `.dgrid/recipients` (the keys tasks' secrets are encrypted to), trusted the way
//! the grid's signers are (`signer_chain`): from the commit the submitter pinned
//! (`dgrid.trustRoot`) along `main`'s first-parent line, each commit that changes the file must
//! be signed (git's SSH commit signature) by a key of the grid's allowed signers in force just
//! before it. Adding a worker's key is a maintainer's act: pushing is not enough, or anyone who
//! can push could add their own key and read every secret sent after.
//!
//! Fails closed, never an older version: a change that is not so signed means no recipients
//! until a later signed change sets the file again; a change off the first-parent line, none
//! until a new root is pinned.

use super::signer_chain::{
    changes_on_the_line, commit_signer, file_at, grid_signers, trusted_root, GRID_SIGNERS_PATH,
};
use crate::gitcmd;
use crate::secrets::RECIPIENTS_PATH;
use crate::trust::AllowedSigners;
use anyhow::{anyhow, bail, Result};
use gix::ObjectId;
use std::path::Path;

/// The text of `.dgrid/recipients` at `tip`, as the chain of signed changes from `root` gives it
/// (empty when the file is absent at the root and never added).
pub fn trusted_recipients(dir: &Path, root: &str, tip: ObjectId) -> Result<String> {
    let (root_id, tip) = trusted_root(dir, root, tip)?;
    let chain = changes_on_the_line(dir, &root_id, &tip, RECIPIENTS_PATH)?;
    let mut text = file_at(dir, &root_id, RECIPIENTS_PATH)?;
    // An unsigned change breaks the chain until a later signed change sets the file again.
    let mut broken: Option<(String, String)> = None;
    for commit in &chain {
        let parent = gitcmd::run(dir, &["rev-parse", "--verify", &format!("{commit}^1")])?;
        let parent = ObjectId::from_hex(parent.stdout.trim().as_bytes())
            .map_err(|_| anyhow!("commit {commit} has no first parent"))?;
        let signers = grid_signers(dir, &root_id, parent, None).map_err(|e| {
            anyhow!("commit {commit} changes {RECIPIENTS_PATH}, and the grid's signers before it are not trusted: {e}")
        })?;
        let signers = AllowedSigners::parse(
            &format!("{GRID_SIGNERS_PATH} before {commit}"),
            &signers.text,
        )
        .unwrap_or_default();
        match commit_signer(dir, commit, &signers) {
            Ok(_) => {
                text = file_at(dir, commit, RECIPIENTS_PATH)?;
                broken = None;
            }
            Err(why) => {
                broken.get_or_insert((commit.clone(), why));
            }
        }
    }
    if let Some((commit, why)) = broken {
        bail!("commit {commit} changes {RECIPIENTS_PATH} and {why}: only a commit signed by one of the grid's signers may change it; no recipients until a signer's signed commit sets it again, or a new dgrid.trustRoot is pinned");
    }
    Ok(text)
}

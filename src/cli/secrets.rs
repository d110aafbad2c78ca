//! `git dgrid secrets rotate`: re-encrypts the secrets of queued tasks to the grid's current
//! `.dgrid/recipients` (after a worker's key was removed, or one added). Rotating needs a key
//! that decrypts them (`--identity`: the maintainer's, or a worker's); a task it cannot open is
//! left as it is and named. A signed task is re-signed (`--sign`), since its ciphertext is a
//! signed field: without it, a signed task is left alone rather than made `tampered`.

use super::grid_args::GridArgs;
use super::submit_secrets::recipients;
use crate::grid::{load_spec, rewrite_queued, Grid, Outcome, Snapshot};
use crate::layout::State;
use crate::secrets::{encrypt, Keys, Recipient};
use crate::settings::{IDENTITY, SIGNING_KEY, TRUST_ROOT};
use crate::task::TaskSpec;
use anyhow::{anyhow, Result};
use std::collections::BTreeMap;

/// Tasks' secrets: rotate them to the grid's current recipients
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    Rotate(RotateArgs),
}

/// Re-encrypt queued tasks' secrets to the keys now in .dgrid/recipients
///
/// Needs a key that decrypts them (--identity). A key removed from the recipients can still
/// read every secret it received before: rotate the secret itself (revoke the token) too.
///
/// Example:
///   git dgrid secrets rotate --identity ~/.config/dgrid/maintainer.age --sign
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct RotateArgs {
    #[arg(long, value_name = "FILE", env = IDENTITY.key.env, help = IDENTITY.help())]
    pub identity: Option<String>,
    /// Encrypt only to these names of .dgrid/recipients (repeatable) [default: all]
    #[arg(long = "recipient", value_name = "NAME")]
    pub recipients: Vec<String>,
    /// Re-sign the rotated tasks that were signed (with --signing-key or user.signingKey); without it they are left as they are
    #[arg(long)]
    pub sign: bool,
    #[arg(long, value_name = "FILE", env = SIGNING_KEY.key.env, help = SIGNING_KEY.help())]
    pub signing_key: Option<String>,
    /// Read .dgrid/recipients along the chain of signed changes from this commit
    #[arg(long, value_name = "COMMIT", env = TRUST_ROOT.key.env)]
    pub trust_root: Option<String>,
    #[command(flatten)]
    pub grid: GridArgs,
}

pub fn run(args: Args) -> Result<()> {
    match args.command {
        Sub::Rotate(a) => rotate(a),
    }
}

fn rotate(args: RotateArgs) -> Result<()> {
    let config = crate::repo::command_config()?;
    let file: Option<String> = IDENTITY.resolve_opt(args.identity.clone(), &config)?;
    let file = file
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| anyhow!("rotating needs a key that decrypts the secrets: --identity FILE (the maintainer's age identity, or a worker's key)"))?;
    let bytes = std::fs::read(&file).map_err(|e| anyhow!("--identity {file}: cannot read: {e}"))?;
    let keys = Keys::from_bytes(&bytes).map_err(|why| anyhow!("--identity {file}: {why}"))?;
    let signing = if args.sign {
        Some(super::sign::signing_key(args.signing_key.clone())?)
    } else {
        None
    };
    let grid = Grid::open(&args.grid.location())?;
    let to = recipients(&grid, &args.recipients, args.trust_root.clone())?;
    let tip = grid.tip()?;
    let snapshot = Snapshot::read(&grid.repo, tip)?;
    let mut rewrites = Vec::new();
    let mut left = 0;
    for task in snapshot.in_state(State::Queue) {
        let Ok(spec) = load_spec(&grid.repo, task, &grid.limits) else {
            continue;
        };
        if spec.secrets.is_empty() {
            continue;
        }
        match reencrypted(spec, &keys, &to, signing.as_ref()) {
            Ok(spec) => rewrites.push((task.blob, spec)),
            Err(why) => {
                left += 1;
                eprintln!("left as it is: {}: {why}", task.id);
            }
        }
    }
    if rewrites.is_empty() {
        eprintln!("no queued task's secrets to rotate ({left} left as they are)");
        return if left == 0 {
            Ok(())
        } else {
            Err(crate::exit::No::new("nothing rotated".to_string()).into())
        };
    }
    let identity = crate::repo::person_identity(&grid.dir);
    let outcome = grid.transact(&identity, |snapshot| {
        rewrite_queued(snapshot, &rewrites, "rotate secrets of")
    })?;
    let rotated = match outcome {
        Outcome::Committed { value, .. } | Outcome::Settled { value, .. } => value,
        Outcome::NotApplicable { .. } => Vec::new(),
    };
    for id in &rotated {
        println!("{id}");
    }
    let names: Vec<&str> = to.iter().map(|r| r.name.as_str()).collect();
    eprintln!(
        "rotated the secrets of {} queued task(s) to {}; {left} left as they are; tasks claimed meanwhile keep their old ciphertext",
        rotated.len(),
        names.join(", ")
    );
    if left > 0 {
        return Err(crate::exit::No::new(format!(
            "{left} task(s) could not be rotated (named above)"
        ))
        .into());
    }
    Ok(())
}

/// The task with each secret decrypted and encrypted again to `to`, re-signed when it was
/// signed and a key is given.
fn reencrypted(
    mut spec: TaskSpec,
    keys: &Keys,
    to: &[Recipient],
    signing: Option<&super::sign::SigningKey>,
) -> Result<TaskSpec, String> {
    if spec.signature.is_some() && signing.is_none() {
        return Err(
            "it is signed: rotate with --sign, or its new ciphertext would make it tampered".into(),
        );
    }
    let opened = keys.open(&spec.secrets)?;
    let refs: Vec<&Recipient> = to.iter().collect();
    let mut secrets = BTreeMap::new();
    for (name, value) in opened.iter() {
        secrets.insert(name.to_string(), encrypt(value, &refs)?);
    }
    spec.secrets = secrets;
    if let Some(key) = signing.filter(|_| spec.signature.is_some()) {
        super::sign::sign_all(std::slice::from_mut(&mut spec), key)
            .map_err(|e| format!("{e:#}"))?;
    }
    Ok(spec)
}

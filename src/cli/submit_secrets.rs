//! `submit --secret`: reading secret values (from a file, stdin or the submitter's environment,
//! never from the command line), reading the grid's recipients, and encrypting each value into a
//! task's `secrets` field before it is validated and signed.

use crate::grid::{trusted_recipients, Grid};
use crate::secrets::{encrypt, parse_recipients, Recipient, RECIPIENTS_PATH};
use crate::settings::TRUST_ROOT;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};
use std::io::Read;
use zeroize::Zeroizing;

#[derive(clap::Args, Debug, Default)]
pub struct SecretArgs {
    /// A secret for the task, encrypted to the grid's recipients (.dgrid/recipients): NAME=@FILE, NAME=- (stdin) or NAME (from this environment); never a value (repeatable)
    #[arg(long = "secret", value_name = "NAME=@FILE|NAME=-|NAME")]
    pub secrets: Vec<String>,
    /// Encrypt the secrets only to these names of .dgrid/recipients (repeatable) [default: all]
    #[arg(long = "recipient", value_name = "NAME", requires = "secrets")]
    pub recipients: Vec<String>,
    /// Also give the secrets to the task as environment variables (set inside the container)
    #[arg(long, requires = "secrets")]
    pub secrets_env: bool,
    /// Read .dgrid/recipients along the chain of signed changes from this commit (as workers trust the grid's signers)
    #[arg(long, value_name = "COMMIT", env = TRUST_ROOT.key.env)]
    pub trust_root: Option<String>,
}

/// The values of `--secret`, read once for every task of the submission.
pub struct Values(Vec<(String, Zeroizing<Vec<u8>>)>);

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Values({} secret(s))", self.0.len())
    }
}

/// Reads each `--secret`; a value given on the command line is refused (argv is public).
pub fn read_values(args: &SecretArgs, stdin_taken: bool) -> Result<Values> {
    let mut values: Vec<(String, Zeroizing<Vec<u8>>)> = Vec::new();
    let mut stdin_used = stdin_taken;
    for given in &args.secrets {
        let (name, source) = match given.split_once('=') {
            Some((name, source)) => (name, Some(source)),
            None => (given.as_str(), None),
        };
        if !crate::task::check_env_name(name) {
            bail!("--secret {name:?}: a name is ASCII letters, digits and '_', not starting with a digit");
        }
        if values.iter().any(|(n, _)| n == name) {
            bail!("--secret {name}: given twice");
        }
        let value = match source {
            None => std::env::var_os(name)
                .map(|v| Zeroizing::new(v.into_encoded_bytes()))
                .ok_or_else(|| anyhow!("--secret {name}: there is no {name} in this environment; use {name}=@FILE or {name}=-"))?,
            Some("-") => {
                if stdin_used {
                    bail!("--secret {name}=-: stdin is already read (another --secret NAME=- or tasks from -)");
                }
                stdin_used = true;
                let mut v = Zeroizing::new(Vec::new());
                std::io::stdin()
                    .read_to_end(&mut v)
                    .with_context(|| format!("--secret {name}=-: cannot read stdin"))?;
                v
            }
            Some(file) if file.starts_with('@') => {
                let path = &file[1..];
                Zeroizing::new(
                    std::fs::read(path)
                        .with_context(|| format!("--secret {name}=@{path}: cannot read"))?,
                )
            }
            Some(_) => bail!(
                "--secret {name}=…: a value on the command line is visible to every user of this machine and kept in shell history; use {name}=@FILE, {name}=- (stdin) or {name} (from the environment)"
            ),
        };
        if value.is_empty() {
            bail!("--secret {name}: the value is empty");
        }
        values.push((name.to_string(), value));
    }
    Ok(Values(values))
}

/// The recipients to encrypt to: the grid's `.dgrid/recipients` on `main` (along the chain of
/// signed changes from `--trust-root` when one is set), narrowed to `--recipient` names.
pub fn recipients(
    grid: &Grid,
    names: &[String],
    trust_root: Option<String>,
) -> Result<Vec<Recipient>> {
    let tip = grid
        .fetch()?
        .ok_or_else(|| anyhow!("{} has no main branch yet", grid.describe()))?;
    let config = crate::repo::command_config()?;
    let root: Option<String> = TRUST_ROOT.resolve_opt(trust_root, &config)?;
    let text = match root.filter(|r| !r.trim().is_empty()) {
        Some(root) => trusted_recipients(&grid.dir, &root, tip)?,
        None => {
            eprintln!("warning: {RECIPIENTS_PATH} read from main as it is, not checked against the grid's signers (set --trust-root or git config dgrid.trustRoot): whoever can push could have added a key");
            let out =
                crate::gitcmd::run(&grid.dir, &["show", &format!("{tip}:{RECIPIENTS_PATH}")])?;
            if !out.success {
                bail!("{} has no {RECIPIENTS_PATH} on main: a maintainer lists the workers' public keys there before secrets can be sent", grid.describe());
            }
            out.stdout
        }
    };
    let all = parse_recipients(&text).map_err(|problems| anyhow!(problems.join("\n")))?;
    if names.is_empty() {
        if all.is_empty() {
            bail!("{RECIPIENTS_PATH} on main lists no key");
        }
        return Ok(all);
    }
    let mut chosen = Vec::new();
    for name in names {
        let r = all
            .iter()
            .find(|r| &r.name == name)
            .ok_or_else(|| anyhow!("--recipient {name}: not in {RECIPIENTS_PATH} on main"))?;
        chosen.push(r.clone());
    }
    Ok(chosen)
}

/// Puts the encrypted values (fresh for this task) into a task object's `secrets`, and
/// `secrets_env` when asked.
pub fn add_to(
    object: &mut Map<String, Value>,
    values: &Values,
    recipients: &[Recipient],
    secrets_env: bool,
) -> Result<()> {
    let refs: Vec<&Recipient> = recipients.iter().collect();
    let mut secrets = match object.remove("secrets") {
        Some(Value::Object(m)) => m,
        None => Map::new(),
        Some(_) => bail!("the task's own \"secrets\" is not an object"),
    };
    for (name, value) in &values.0 {
        if secrets.contains_key(name) {
            bail!("--secret {name}: the task already has a secret of that name");
        }
        let armored = encrypt(value, &refs).map_err(|why| anyhow!("--secret {name}: {why}"))?;
        secrets.insert(name.clone(), Value::String(armored));
    }
    object.insert("secrets".into(), Value::Object(secrets));
    if secrets_env {
        object.insert("secrets_env".into(), Value::Bool(true));
    }
    Ok(())
}

//! The task's secret fields: `secrets` (name -> age ciphertext, never a plain value) and
//! `secrets_env`; and the warning for `env` values that look like credentials, which are public
//! on a grid anyone can read.

use super::model::TaskSpec;
use super::rules::check_env_name;
use crate::fields::{show, FieldReader};
use crate::problem::Problem;
use serde_json::Value;
use std::collections::BTreeMap;

/// At most this many secrets per task.
const MAX_SECRETS: usize = 32;

/// `secrets` and `secrets_env`; `env` is the task's, whose names a secret made an environment
/// variable must not shadow.
pub(super) fn read_secret_fields(
    r: &mut FieldReader,
    env: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, bool) {
    let value = r.take("secrets", &[]);
    let mut secrets = BTreeMap::new();
    if let Some(map) = r.object("secrets", value) {
        if map.len() > MAX_SECRETS {
            r.problem(
                "secrets",
                format!("at most {MAX_SECRETS} secrets, got {}", map.len()),
            );
        }
        for (name, value) in map {
            let field = format!("secrets.{name}");
            if !check_env_name(&name) {
                r.problem(
                    &field,
                    "secret names are ASCII letters, digits and '_', not starting with a digit",
                );
                continue;
            }
            match value {
                Value::String(text) => match crate::secrets::check_ciphertext(&text) {
                    Ok(()) => {
                        secrets.insert(name, text);
                    }
                    Err(why) => r.problem(&field, why),
                },
                other => r.problem(
                    &field,
                    format!("expected age ciphertext (a string), got {}", show(&other)),
                ),
            }
        }
    }
    let value = r.take("secrets_env", &[]);
    let secrets_env = match value {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(other) => {
            r.problem(
                "secrets_env",
                format!("expected true or false, got {}", show(&other)),
            );
            false
        }
    };
    if secrets_env {
        for name in secrets.keys().filter(|n| env.contains_key(*n)) {
            r.problem(
                &format!("secrets.{name}"),
                "is also in env: with secrets_env the secret would shadow it; rename one",
            );
        }
    }
    (secrets, secrets_env)
}

/// Warnings for `env` values that look like credentials.
pub(super) fn env_warnings(file: &str, spec: &TaskSpec) -> Vec<Problem> {
    spec.env
        .iter()
        .filter_map(|(name, value)| {
            crate::secrets::looks_like_token(value).map(|kind| {
                Problem::field(
                    file,
                    format!("env.{name}"),
                    format!("looks like {kind}, and env is public on the grid: send it with submit --secret {name}=@FILE (encrypted to the grid's workers)"),
                )
            })
        })
        .collect()
}

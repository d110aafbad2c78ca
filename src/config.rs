//! Settings and where they come from. One precedence for everything:
//! command-line flag > environment variable > git config `dgrid.*` > default.
//!
//! Flags and environment variables are resolved by clap (`#[arg(env = ...)]`); what clap leaves
//! unset is looked up here in git config, then falls back to the default. `git dgrid env` prints
//! the effective value of every setting and its source, with secrets redacted (like `git lfs env`).

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::str::FromStr;

/// One setting: its flag, environment variable, git config key and default, for `env` and docs.
pub struct Setting {
    pub flag: &'static str,
    pub env: Option<&'static str>,
    pub git: Option<&'static str>,
    pub default: &'static str,
    pub secret: bool,
}

const fn s(
    flag: &'static str,
    env: Option<&'static str>,
    git: Option<&'static str>,
    default: &'static str,
) -> Setting {
    Setting {
        flag,
        env,
        git,
        default,
        secret: false,
    }
}

pub const SETTINGS: &[Setting] = &[
    s(
        "--remote",
        Some("DGRID_REMOTE"),
        Some("dgrid.remote"),
        "origin",
    ),
    s(
        "--repo",
        Some("DGRID_REPO_URL"),
        Some("dgrid.repoUrl"),
        "(the current clone)",
    ),
    s(
        "--state-dir",
        Some("DGRID_STATE_DIR"),
        Some("dgrid.stateDir"),
        "$XDG_CACHE_HOME/git-dgrid or ~/.cache/git-dgrid",
    ),
    s(
        "--node-id",
        Some("NODE_ID"),
        Some("dgrid.nodeId"),
        "host name + random suffix, kept in the state dir",
    ),
    s(
        "--label",
        Some("DGRID_LABELS"),
        Some("dgrid.labels"),
        "(none)",
    ),
    s("--slots", Some("DGRID_SLOTS"), Some("dgrid.slots"), "1"),
    s(
        "--poll-interval",
        Some("PULL_INTERVAL"),
        Some("dgrid.pollInterval"),
        "10",
    ),
    s(
        "--heartbeat-interval",
        Some("DGRID_HEARTBEAT_INTERVAL"),
        Some("dgrid.heartbeatInterval"),
        "300",
    ),
    s(
        "--lease",
        Some("DGRID_LEASE"),
        Some("dgrid.lease"),
        "3 heartbeat intervals",
    ),
    s(
        "--clock-skew",
        Some("DGRID_CLOCK_SKEW"),
        Some("dgrid.clockSkew"),
        "60",
    ),
    s("--grace", Some("DGRID_GRACE"), Some("dgrid.grace"), "30"),
    s(
        "--output-cap",
        Some("DGRID_OUTPUT_CAP"),
        Some("dgrid.outputCap"),
        "65536",
    ),
    s(
        "--allow-network",
        Some("DGRID_ALLOW_NETWORK"),
        Some("dgrid.allowNetwork"),
        "false",
    ),
    s(
        "--max-cpus",
        Some("DGRID_MAX_CPUS"),
        Some("dgrid.maxCpus"),
        "4",
    ),
    s(
        "--max-memory",
        Some("DGRID_MAX_MEMORY"),
        Some("dgrid.maxMemory"),
        "4g",
    ),
    s("--pull", Some("DGRID_PULL"), Some("dgrid.pull"), "missing"),
    s(
        "--docker",
        Some("DGRID_DOCKER"),
        Some("dgrid.docker"),
        "docker",
    ),
    s(
        "--log-format",
        Some("DGRID_LOG_FORMAT"),
        Some("dgrid.logFormat"),
        "text",
    ),
    s("(validation)", None, Some("dgrid.maxTimeout"), "86400"),
    Setting {
        flag: "(git credentials)",
        env: Some("GIT_TOKEN"),
        git: None,
        default: "(unset)",
        secret: true,
    },
    s(
        "(git user name)",
        Some("GIT_USERNAME"),
        None,
        "x-access-token",
    ),
    s(
        "(git network timeout)",
        Some("DGRID_GIT_TIMEOUT"),
        None,
        "300",
    ),
];

/// Every `dgrid.*` key of git config as git sees it from `dir` (local, global and system).
pub struct GitConfig {
    values: HashMap<String, Vec<String>>,
}

impl GitConfig {
    /// Parses what `git config --null --get-regexp` printed. Running git is plumbing, so
    /// `GitConfig::read` lives in `crate::repo`; this base module only knows the format.
    pub fn from_null_separated(output: &str) -> GitConfig {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for record in output.split('\0').filter(|r| !r.is_empty()) {
            let (key, value) = record.split_once('\n').unwrap_or((record, "true"));
            values
                .entry(key.to_ascii_lowercase())
                .or_default()
                .push(value.to_string());
        }
        GitConfig { values }
    }

    pub fn empty() -> GitConfig {
        GitConfig {
            values: HashMap::new(),
        }
    }

    /// The last value of `key` (git's rule for single-valued keys).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.values
            .get(&key.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// A flag/environment value, else git config `key` parsed, else `default`.
    pub fn resolve<T: FromStr>(&self, given: Option<T>, key: &str, default: T) -> Result<T> {
        if let Some(v) = given {
            return Ok(v);
        }
        match self.get(key) {
            None => Ok(default),
            Some(text) => parse_config(key, text),
        }
    }

    pub fn resolve_opt<T: FromStr>(&self, given: Option<T>, key: &str) -> Result<Option<T>> {
        if given.is_some() {
            return Ok(given);
        }
        self.get(key)
            .map(|text| parse_config(key, text))
            .transpose()
    }

    /// A boolean flag: set on the command line or in the environment, or `true` in git config.
    pub fn flag(&self, given: bool, key: &str) -> Result<bool> {
        if given {
            return Ok(true);
        }
        match self.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if ["true", "yes", "on", "1"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "no", "off", "0", ""].contains(&v.as_str()) => Ok(false),
            Some(v) => anyhow::bail!("git config {key}: expected true or false, got {v:?}"),
        }
    }
}

fn parse_config<T: FromStr>(key: &str, text: &str) -> Result<T> {
    text.trim()
        .parse::<T>()
        .ok()
        .with_context(|| format!("git config {key}: {text:?} is not a valid value"))
}

/// What a URL looks like with any password or token in it hidden.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains('/') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:[redacted]@{host}")
        }
        _ => url.to_string(),
    }
}

/// The effective value and its source, for `git dgrid env`.
pub fn describe(setting: &Setting, config: &GitConfig) -> (String, String) {
    if let Some(var) = setting.env {
        if let Ok(value) = std::env::var(var) {
            if !value.is_empty() {
                let shown = if setting.secret {
                    "[redacted]".to_string()
                } else {
                    redact_url(&value)
                };
                return (shown, format!("environment {var}"));
            }
        }
    }
    if let Some(key) = setting.git {
        let all = config.get_all(key);
        if !all.is_empty() {
            let shown = if setting.secret {
                "[redacted]".to_string()
            } else {
                redact_url(&all.join(","))
            };
            return (shown, format!("git config {key}"));
        }
    }
    (setting.default.to_string(), "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact_url("https://x:ghp_abc@github.com/o/r.git"),
            "https://x:[redacted]@github.com/o/r.git"
        );
        assert_eq!(
            redact_url("https://github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(redact_url("/tmp/g.git"), "/tmp/g.git");
    }
}

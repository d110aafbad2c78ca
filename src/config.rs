//! Git config `dgrid.*` as git sees it (the values only; what they mean and the precedence they
//! are resolved by are in [`crate::settings`], which uses this module, never the reverse).

use anyhow::Result;
use std::collections::HashMap;

/// Every `dgrid.*` key of git config as git sees it from `dir` (local, global and system).
pub struct GitConfig {
    values: HashMap<String, Vec<String>>,
}

impl GitConfig {
    /// Parses what `git config --null --get-regexp` printed. Running git is plumbing, so
    /// `repo::command_config` runs it; this base module only knows the format.
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

/// What a URL looks like with any password or token in it hidden (the one rule:
/// [`crate::text::redact_urls`]).
pub fn redact_url(url: &str) -> String {
    crate::text::redact_urls(url)
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

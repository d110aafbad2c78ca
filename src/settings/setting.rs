//! A setting: where it comes from (flag, environment, git config), its typed default, and how a
//! value is resolved in the one precedence of the table (`super`), and described for `git dgrid env`.

use crate::config::GitConfig;
use anyhow::{bail, Context, Result};
use std::fmt::Display;
use std::str::FromStr;

/// A setting's default.
#[derive(Debug, Clone, Copy)]
pub enum Default<T: 'static> {
    /// A fixed value.
    Value(T),
    /// Worked out where the value is used (a host name, another setting); says how.
    Derived(&'static str),
}

/// Where a setting comes from and what it means; everything but the typed default.
#[derive(Debug)]
pub struct Key {
    /// `--slots`, or `None` for a setting with no flag.
    pub flag: Option<&'static str>,
    pub env: Option<&'static str>,
    /// `dgrid.slots`.
    pub git: Option<&'static str>,
    /// The unit of the default, for the README ("s", "bytes"), or "".
    pub unit: &'static str,
    /// What the setting does, as clap's help says it.
    pub about: &'static str,
    /// Never printed (`git dgrid env` shows `[redacted]`).
    pub secret: bool,
}

#[derive(Debug)]
pub struct Setting<T: 'static> {
    pub key: Key,
    pub default: Default<T>,
}

/// A setting of any type, for the table.
pub trait Described: Sync {
    fn key(&self) -> &Key;
    /// The default as `git dgrid env` and the help print it: the value, or how it is worked out.
    fn default_text(&self) -> String;
    /// Whether the default is worked out rather than fixed.
    fn is_derived(&self) -> bool;
}

impl<T: Display + Sync> Described for Setting<T> {
    fn key(&self) -> &Key {
        &self.key
    }

    fn default_text(&self) -> String {
        match &self.default {
            Default::Value(v) => v.to_string(),
            Default::Derived(how) => (*how).to_string(),
        }
    }

    fn is_derived(&self) -> bool {
        matches!(self.default, Default::Derived(_))
    }
}

impl<T: Display + Sync> Setting<T> {
    /// Clap's help for the setting's flag: what it does, its git config key and its default
    /// (clap adds the environment variable).
    pub fn help(&self) -> String {
        match self.key.git {
            Some(git) => format!(
                "{} [git config {git}; default: {}]",
                self.key.about,
                self.default_text()
            ),
            None => format!("{} [default: {}]", self.key.about, self.default_text()),
        }
    }
}

impl<T: Copy + 'static> Setting<T> {
    /// The fixed default (for a setting whose default is worked out elsewhere: none).
    pub const fn value(&self) -> Option<T> {
        match self.default {
            Default::Value(v) => Some(v),
            Default::Derived(_) => None,
        }
    }

    /// The fixed default, for settings that have one; used in a `const`, a setting without one
    /// is a compile error.
    pub const fn fixed(&self) -> T {
        match self.default {
            Default::Value(v) => v,
            Default::Derived(_) => panic!("this setting's default is worked out where it is used"),
        }
    }

    /// What clap gave (flag or environment), else git config, else the fixed default.
    pub fn resolve<V: FromStr + From<T>>(&self, given: Option<V>, config: &GitConfig) -> Result<V> {
        if let Some(v) = self.resolve_opt(given, config)? {
            return Ok(v);
        }
        match self.value() {
            Some(default) => Ok(V::from(default)),
            None => bail!(
                "{} has no fixed default: it is worked out where it is used",
                self.name()
            ),
        }
    }

    /// What clap gave, else git config; `None` leaves the default to the caller.
    pub fn resolve_opt<V: FromStr>(
        &self,
        given: Option<V>,
        config: &GitConfig,
    ) -> Result<Option<V>> {
        if given.is_some() {
            return Ok(given);
        }
        let Some(key) = self.key.git else {
            return Ok(None);
        };
        config
            .get(key)
            .map(|text| {
                text.trim()
                    .parse::<V>()
                    .ok()
                    .with_context(|| format!("git config {key}: {text:?} is not a valid value"))
            })
            .transpose()
    }

    fn name(&self) -> &'static str {
        self.key
            .flag
            .or(self.key.git)
            .or(self.key.env)
            .unwrap_or("?")
    }
}

impl Setting<bool> {
    /// A boolean flag: set on the command line or in the environment, or true in git config.
    pub fn resolve_flag(&self, given: bool, config: &GitConfig) -> Result<bool> {
        match self.key.git {
            Some(key) => config.flag(given, key),
            None => Ok(given),
        }
    }
}

impl Setting<&'static str> {
    /// A list: what clap gave, else every git config value split at commas.
    pub fn resolve_list(&self, given: Vec<String>, config: &GitConfig) -> Vec<String> {
        if !given.is_empty() {
            return given;
        }
        let Some(key) = self.key.git else {
            return given;
        };
        config
            .get_all(key)
            .iter()
            .flat_map(|l| l.split(','))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// The table's rows: a flag and its sources, in the order `git dgrid env` and the README show them.
pub(super) const fn flag(
    flag: &'static str,
    env: &'static str,
    git: &'static str,
    unit: &'static str,
    about: &'static str,
) -> Key {
    Key {
        flag: Some(flag),
        env: Some(env),
        git: Some(git),
        unit,
        about,
        secret: false,
    }
}

/// The effective value and its source, for `git dgrid env`.
pub fn describe(setting: &dyn Described, config: &GitConfig) -> (String, String) {
    let key = setting.key();
    if let Some(var) = key.env {
        if let Ok(value) = std::env::var(var) {
            if !value.is_empty() {
                let shown = if key.secret {
                    "[redacted]".to_string()
                } else {
                    crate::config::redact_url(&value)
                };
                return (shown, format!("environment {var}"));
            }
        }
    }
    if let Some(git) = key.git {
        let all = config.get_all(git);
        if !all.is_empty() {
            let shown = if key.secret {
                "[redacted]".to_string()
            } else {
                crate::config::redact_url(&all.join(","))
            };
            return (shown, format!("git config {git}"));
        }
    }
    let default = if setting.is_derived() {
        format!("({})", setting.default_text())
    } else {
        setting.default_text()
    };
    (default, "default".into())
}

//! The two values that name one execution of a task: its id and which attempt it is. Each is
//! checked once, where it is parsed, so code that holds one never checks it again.

use super::rules::check_id;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// A task id: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` without `..`, so it is also a safe file name.
/// Written in JSON as the plain string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(#[serde(deserialize_with = "checked_id")] String);

fn checked_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    check_id(&id).map_err(serde::de::Error::custom)?;
    Ok(id)
}

impl TaskId {
    /// `id` if it is a valid task id, else the reason it is not.
    pub fn parse(id: impl Into<String>) -> Result<TaskId, String> {
        let id = id.into();
        check_id(&id)?;
        Ok(TaskId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TaskId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for TaskId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Shown as the plain string, so `{id:?}` in messages reads `"task-001"` as it did for a `String`.
impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TaskId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TaskId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for TaskId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<TaskId> for str {
    fn eq(&self, other: &TaskId) -> bool {
        self == other.0
    }
}

impl PartialEq<TaskId> for String {
    fn eq(&self, other: &TaskId) -> bool {
        *self == other.0
    }
}

impl From<TaskId> for String {
    fn from(id: TaskId) -> String {
        id.0
    }
}

/// Which try of a task this is, counting from 1. The queue file keeps the number of attempts
/// already *used* (`attempts`, absent when none); a claim and a result name the attempt itself.
/// The conversions between the two live here and nowhere else.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attempt(#[serde(deserialize_with = "checked_attempt")] u32);

fn checked_attempt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    Attempt::new(n)
        .map(Attempt::number)
        .map_err(serde::de::Error::custom)
}

impl Attempt {
    pub const FIRST: Attempt = Attempt(1);
    /// The highest attempt number a file may name.
    pub const MAX: u32 = 1000;

    pub fn new(n: u32) -> Result<Attempt, String> {
        if (1..=Attempt::MAX).contains(&n) {
            Ok(Attempt(n))
        } else {
            Err(format!(
                "an attempt is a number from 1 to {}, got {n}",
                Attempt::MAX
            ))
        }
    }

    /// The attempt a task starts with when `used` attempts were already used.
    pub fn after_used(used: u32) -> Attempt {
        Attempt(used.saturating_add(1))
    }

    /// Attempts used once this one counts.
    pub fn used(self) -> u32 {
        self.0
    }

    /// Attempts used before this one: what the task goes back to the queue with when this
    /// attempt does not count (it never started, or the worker shut down).
    pub fn used_before(self) -> u32 {
        self.0 - 1
    }

    pub fn number(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_convert_between_used_and_number() {
        assert_eq!(Attempt::after_used(0), Attempt::FIRST);
        assert_eq!(Attempt::after_used(2).number(), 3);
        assert_eq!(Attempt::after_used(2).used(), 3);
        assert_eq!(Attempt::after_used(2).used_before(), 2);
        assert_eq!(Attempt::FIRST.used_before(), 0);
        assert!(Attempt::new(0).is_err());
        assert!(Attempt::new(1001).is_err());
        assert_eq!(serde_json::to_string(&Attempt::FIRST).unwrap(), "1");
        assert!(serde_json::from_str::<Attempt>("0").is_err());
    }

    #[test]
    fn task_ids_are_checked_and_written_as_strings() {
        let id = TaskId::parse("task-001").unwrap();
        assert_eq!(id, "task-001");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"task-001\"");
        assert_eq!(format!("{id:?}"), "\"task-001\"");
        assert!(TaskId::parse("../x").is_err());
        assert!(serde_json::from_str::<TaskId>("\"a/b\"").is_err());
        let set: std::collections::BTreeSet<TaskId> = [id.clone()].into();
        assert!(set.contains("task-001"));
    }
}

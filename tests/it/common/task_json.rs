//! The one way the tests write a task's JSON: a builder with the fields every test needs and
//! setters for the rest. Fields are kept in the order given and rendered compactly, so the bytes are
//! the same on every run (some tests commit them with fixed dates and compare commit ids).

use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone)]
pub struct TaskJson {
    /// (key, the value as JSON text).
    fields: Vec<(String, String)>,
}

impl TaskJson {
    /// What `submit` needs: `{"id", "image": "alpine:3", "command": "true", "timeout": 60}`
    /// (submit fills `created_at` and `submitted_by`).
    pub fn new(id: &str) -> TaskJson {
        TaskJson { fields: Vec::new() }
            .set("id", id)
            .set("image", "alpine:3")
            .set("command", "true")
            .set("timeout", 60)
    }

    /// A complete task file, as it lies on a grid: [`new`](TaskJson::new) with
    /// `"created_at": "2026-01-01T00:00:00Z"` before the timeout and `"submitted_by": "t"` after it.
    pub fn file(id: &str) -> TaskJson {
        TaskJson { fields: Vec::new() }
            .set("id", id)
            .set("image", "alpine:3")
            .set("command", "true")
            .set("created_at", "2026-01-01T00:00:00Z")
            .set("timeout", 60)
            .set("submitted_by", "t")
    }

    pub fn image(self, image: &str) -> TaskJson {
        self.set("image", image)
    }

    /// A string (run with `sh -c`) or an array (an argv).
    pub fn command(self, command: impl Into<Value>) -> TaskJson {
        self.set("command", command)
    }

    /// Seconds, or anything else a test wants to see rejected.
    pub fn timeout(self, timeout: impl Into<Value>) -> TaskJson {
        self.set("timeout", timeout)
    }

    pub fn created_at(self, when: &str) -> TaskJson {
        self.set("created_at", when)
    }

    /// The claim a node writes into a task in `tasks/in_progress`, with its fields in the order the
    /// grid writes them.
    pub fn claim(self, node: &str, claimed_at: &str, lease_until: &str, attempt: u32) -> TaskJson {
        let claim = TaskJson { fields: Vec::new() }
            .set("node_id", node)
            .set("claimed_at", claimed_at)
            .set("lease_expires_at", lease_until)
            .set("attempt", attempt);
        self.raw("claim", &claim.to_string())
    }

    /// Sets `key` to `value`: in its place if it is there, at the end if not.
    pub fn set(self, key: &str, value: impl Into<Value>) -> TaskJson {
        let text = serde_json::to_string(&value.into()).expect("JSON serializes");
        self.raw(key, &text)
    }

    /// Sets `key` to `json`, written as given (for what a `Value` cannot say, e.g. bad JSON).
    pub fn raw(mut self, key: &str, json: &str) -> TaskJson {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = json.to_string(),
            None => self.fields.push((key.to_string(), json.to_string())),
        }
        self
    }

    pub fn without(mut self, key: &str) -> TaskJson {
        self.fields.retain(|(k, _)| k != key);
        self
    }

    pub fn value(&self) -> Value {
        serde_json::from_str(&self.to_string()).expect("the builder writes JSON")
    }
}

impl fmt::Display for TaskJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.fields.iter().enumerate() {
            let key = serde_json::to_string(key).expect("a key serializes");
            write!(f, "{}{key}:{value}", if i == 0 { "" } else { "," })?;
        }
        f.write_str("}")
    }
}

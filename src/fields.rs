//! Reading the JSON files of a grid: the one reader of a file's bytes as a JSON object (size,
//! UTF-8, JSON, object), then field by field, collecting every problem instead of stopping at the
//! first. Task files, result files, node records and what `submit` is given all come through here.
//!
//! serde's derive stops at the first error and cannot say "did you mean", accept aliases with a clear
//! conflict message, or print the offending value; task files are written by hand, so we do.

use crate::problem::Problem;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Largest file of the grid (task, result or node record) read at all.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The size rule for a grid file, for callers that know the size before reading (a file on
/// disk, a blob) as well as for `read_object`.
pub fn check_size(file: &str, size: u64) -> Result<(), Problem> {
    if size > MAX_FILE_BYTES {
        return Err(Problem::file(
            file,
            format!("is {size} bytes; task files are at most {MAX_FILE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Parses bytes as a JSON object, with a clear message for every way that can fail. `file` is the
/// name used in messages.
pub fn read_object(file: &str, bytes: &[u8]) -> Result<Map<String, Value>, Problem> {
    check_size(file, bytes.len() as u64)?;
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Problem::file(
            file,
            format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Problem::file(
            file,
            format!("expected a JSON object, got {}", kind_of(&other)),
        )),
        Err(e) => Err(Problem::file(file, format!("is not valid JSON: {e}"))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub struct FieldReader<'a> {
    file: &'a str,
    /// Prefix for nested objects, e.g. `claim.` so problems name `claim.node_id`.
    prefix: String,
    object: Map<String, Value>,
    known: Vec<&'static str>,
    pub problems: Vec<Problem>,
}

impl<'a> FieldReader<'a> {
    pub fn new(file: &'a str, prefix: &str, object: Map<String, Value>) -> Self {
        FieldReader {
            file,
            prefix: prefix.to_string(),
            object,
            known: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub fn file(&self) -> &'a str {
        self.file
    }

    pub fn field_name(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    pub fn problem(&mut self, field: &str, message: impl Into<String>) {
        let field = self.field_name(field);
        self.problems
            .push(Problem::field(self.file, field, message));
    }

    /// Takes `name` (or one of its `aliases`) out of the object. Both present is a problem.
    pub fn take(&mut self, name: &'static str, aliases: &[&'static str]) -> Option<Value> {
        self.known.push(name);
        self.known.extend_from_slice(aliases);
        let mut found: Vec<(&'static str, Value)> = Vec::new();
        for key in std::iter::once(&name).chain(aliases) {
            if let Some(v) = self.object.remove(*key) {
                found.push((key, v));
            }
        }
        if found.len() > 1 {
            let names: Vec<String> = found.iter().map(|(k, _)| format!("\"{k}\"")).collect();
            self.problem(
                name,
                format!("given more than once as {}; keep one", names.join(" and ")),
            );
        }
        found.into_iter().next().map(|(_, v)| v)
    }

    pub fn required(&mut self, name: &'static str, aliases: &[&'static str]) -> Option<Value> {
        let value = self.take(name, aliases);
        if value.is_none() {
            self.problem(name, "is required");
        }
        value
    }

    pub fn string(&mut self, name: &'static str, value: Option<Value>) -> Option<String> {
        match value? {
            Value::String(s) => Some(s),
            other => {
                self.problem(name, format!("expected a string, got {}", show(&other)));
                None
            }
        }
    }

    /// A string that must be non-empty and within `max` bytes.
    pub fn text(&mut self, name: &'static str, value: Option<Value>, max: usize) -> Option<String> {
        let s = self.string(name, value)?;
        if s.trim().is_empty() {
            self.problem(name, "must not be empty");
            return None;
        }
        if s.len() > max {
            self.problem(
                name,
                format!("must be at most {max} bytes, got {}", s.len()),
            );
            return None;
        }
        if s.contains('\0') {
            self.problem(name, "must not contain a NUL character");
            return None;
        }
        Some(s)
    }

    /// An integer in `min..=max`.
    pub fn integer(
        &mut self,
        name: &'static str,
        value: Option<Value>,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let value = value?;
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(
                    name,
                    format!(
                        "expected an integer from {min} to {max}, got {}",
                        show(&value)
                    ),
                );
                None
            }
        }
    }

    pub fn timestamp(&mut self, name: &'static str, value: Option<Value>) -> Option<String> {
        let s = self.string(name, value)?;
        match chrono::DateTime::parse_from_rfc3339(&s) {
            Ok(_) => Some(s),
            Err(_) => {
                self.problem(
                    name,
                    format!(
                        "expected an RFC 3339 time such as \"2025-10-16T10:00:00Z\", got {}",
                        show(&Value::String(s))
                    ),
                );
                None
            }
        }
    }

    /// A value of any serde type, `expected` naming it in the problem when it does not fit
    /// (for records whose fields are plain data, like a node's).
    pub fn typed<T: DeserializeOwned>(
        &mut self,
        name: &'static str,
        value: Option<Value>,
        expected: &str,
    ) -> Option<T> {
        let value = value?;
        match serde_json::from_value::<T>(value.clone()) {
            Ok(v) => Some(v),
            Err(_) => {
                self.problem(name, format!("expected {expected}, got {}", show(&value)));
                None
            }
        }
    }

    /// Forgets the fields nobody took, for formats that newer writers may extend.
    pub fn ignore_rest(&mut self) {
        self.object.clear();
    }

    pub fn object(
        &mut self,
        name: &'static str,
        value: Option<Value>,
    ) -> Option<Map<String, Value>> {
        match value? {
            Value::Object(m) => Some(m),
            other => {
                self.problem(name, format!("expected an object, got {}", show(&other)));
                None
            }
        }
    }

    pub fn string_list(&mut self, name: &'static str, value: Option<Value>) -> Option<Vec<String>> {
        match value? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            self.problem(
                                &format!("{name}[{i}]"),
                                format!("expected a string, got {}", show(&other)),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => {
                self.problem(
                    name,
                    format!("expected a list of strings, got {}", show(&other)),
                );
                None
            }
        }
    }

    /// Reports every field nobody took, with a "did you mean" hint, and returns the problems.
    pub fn finish(mut self) -> Vec<Problem> {
        let leftover: Vec<String> = self.object.keys().cloned().collect();
        for key in leftover {
            let hint = did_you_mean(&key, &self.known)
                .map(|k| format!("; did you mean \"{k}\"?"))
                .unwrap_or_default();
            let field = self.field_name(&key);
            self.problems.push(Problem::field(
                self.file,
                field,
                format!("unknown field{hint}"),
            ));
        }
        self.problems
    }
}

/// A short, quoted rendering of a JSON value for error messages.
pub fn show(value: &Value) -> String {
    let text = value.to_string();
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text
    }
}

pub fn did_you_mean<'k>(word: &str, candidates: &[&'k str]) -> Option<&'k str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_close_names_only() {
        assert_eq!(
            did_you_mean("timout", &["timeout", "image"]),
            Some("timeout")
        );
        assert_eq!(did_you_mean("Image", &["timeout", "image"]), Some("image"));
        assert_eq!(did_you_mean("zzzzzzzz", &["timeout", "image"]), None);
    }
}

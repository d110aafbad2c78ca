//! The task contract: task specs and results, their JSON form and every validation rule.
//! Pure code: bytes in, a model or a list of problems out. No I/O.
//!
//! Compatibility: the seed's task `{id, image, command, created_at, timeout, submitted_by}` and result
//! `{task_id, node_id, exit_code, stdout, stderr, timestamp, status}` are accepted unchanged, and the
//! Python predecessor's `task_id`, `script` and `timeout_seconds` are accepted as aliases.

use crate::fields::{show, FieldReader};
use crate::problem::Problem;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Largest task or result file we read at all.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Largest `command` (the shell string, or the argv items added up).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_TIMEOUT: u64 = crate::settings::MAX_TIMEOUT.fixed();
pub const MAX_ID_LEN: usize = 128;
const MAX_SHORT_TEXT: usize = 1024;

/// Rules a grid may tune (git config `dgrid.maxTimeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_timeout: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_timeout: DEFAULT_MAX_TIMEOUT,
        }
    }
}

/// What to run: a string for `sh -c` in the container, or an argv array run as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskCommand {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    None,
    Bridge,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Docker's memory syntax: a number of bytes with an optional `b`, `k`, `m` or `g` suffix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Written by `claim` into a task in `tasks/in_progress/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub node_id: String,
    pub claimed_at: String,
    pub lease_expires_at: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskSpec {
    pub id: String,
    pub image: String,
    pub command: TaskCommand,
    pub created_at: String,
    pub timeout: u64,
    pub submitted_by: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// Attempts already used (set when a task is put back in the queue after a lost lease).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
}

impl TaskSpec {
    pub fn priority(&self) -> i64 {
        self.priority.unwrap_or(0)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a task spec always serializes");
        out.push(b'\n');
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    Failed,
    Timeout,
    Cancelled,
    Lost,
}

impl Status {
    pub const ALL: [(&'static str, Status); 5] = [
        ("success", Status::Success),
        ("failed", Status::Failed),
        ("timeout", Status::Timeout),
        ("cancelled", Status::Cancelled),
        ("lost", Status::Lost),
    ];

    /// The name used in result files (`"success"`, ...).
    pub fn name(self) -> &'static str {
        Status::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }
}

/// What was kept of one output stream, and what was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub total_bytes: u64,
    pub sha256: String,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskResult {
    pub task_id: String,
    pub node_id: String,
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    pub timestamp: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout_info: Option<StreamInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr_info: Option<StreamInfo>,
    /// The task as it was run, so a finished task keeps its spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// Results that arrived after this one from nodes whose claim had been taken over: kept as a
    /// record (never dropped, never a second file in completed/).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub late_results: Vec<LateResult>,
}

impl TaskResult {
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a result always serializes");
        out.push(b'\n');
        out
    }

    /// Shrinks the kept output until the file fits in `max` bytes (escaping and replacement
    /// characters can make kept output several times larger as JSON).
    pub fn fit(&mut self, max: usize) {
        loop {
            let size = self.to_json().len();
            if size <= max || (self.stdout.is_empty() && self.stderr.is_empty()) {
                return;
            }
            let (text, info) = if self.stdout.len() >= self.stderr.len() {
                (&mut self.stdout, &mut self.stdout_info)
            } else {
                (&mut self.stderr, &mut self.stderr_info)
            };
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            if let Some(info) = info {
                info.truncated = true;
            }
        }
    }
}

/// A summary of a result that arrived after the task was already finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateResult {
    pub node_id: String,
    pub attempt: u32,
    pub status: Status,
    pub exit_code: Option<i64>,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_info: Option<StreamInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_info: Option<StreamInfo>,
}

// ---------------------------------------------------------------------------------------------
// Single-value rules

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` and no `..`. Returns the reason when invalid.
pub fn check_id(id: &str) -> Result<(), String> {
    let quoted = show(&Value::String(id.to_string()));
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "must be at most {MAX_ID_LEN} characters, got {}",
            id.chars().count()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some(bad) = id.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "may only contain ASCII letters, digits, '.', '_' and '-', got {quoted} (contains {bad:?})"
        ));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("must start with a letter or digit, got {quoted}"));
    }
    if id.contains("..") {
        return Err(format!("must not contain \"..\", got {quoted}"));
    }
    Ok(())
}

/// Docker's image reference grammar: `[registry[:port]/]path[:tag][@sha256:<64 hex>]`.
pub fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() {
        return Err("must not be empty".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(format!(
                "digest must be \"sha256:\" and 64 lower-case hex digits, got {d:?}"
            ));
        }
    }
    // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(i) if last_slash.is_none_or(|s| i > s) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.starts_with(word)
            && tag.chars().all(|c| word(c) || c == '.' || c == '-');
        if !ok {
            return Err(format!(
                "tag must be 1-128 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), got {tag:?}"
            ));
        }
    }
    if name.is_empty() {
        return Err("has no repository name".into());
    }
    if name.len() > 255 {
        return Err("repository name must be at most 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let is_registry = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if is_registry {
        check_registry(first)?;
        parts.remove(0);
    }
    for part in parts {
        if part.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("repository name must be lower-case, got {name:?}"));
        }
        if !is_path_component(part) {
            return Err(format!(
                "path component {part:?} must be lower-case letters and digits, separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(format!("registry port must be a number, got {port:?}"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(format!("registry host {host:?} is not a valid host name"));
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if expect_alnum {
            if !alnum(bytes[i]) {
                return false;
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
        } else {
            let sep_len = match bytes[i] {
                b'.' => 1,
                b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
                b'_' => 1,
                b'-' => bytes[i..].iter().take_while(|b| **b == b'-').count(),
                _ => return false,
            };
            i += sep_len;
            expect_alnum = true;
        }
    }
    !part.is_empty() && !expect_alnum
}

/// A node label (also what a task's `labels` asks for).
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label.starts_with(|c: char| c.is_ascii_alphanumeric())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '='));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "labels are 1-64 ASCII letters, digits, '.', '_', '-', ':' or '=', starting with a letter or digit, got {label:?}"
        ))
    }
}

fn check_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_memory(memory: &str) -> bool {
    let digits = memory.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
    let suffix_len = memory.len() - digits.len();
    suffix_len <= 1
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && digits != "0"
}

// ---------------------------------------------------------------------------------------------
// Whole files

/// Parses bytes as a JSON object, with a clear message for every way that can fail.
fn parse_object(file: &str, bytes: &[u8]) -> Result<serde_json::Map<String, Value>, Vec<Problem>> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(vec![Problem::file(
            file,
            format!(
                "is {} bytes; task files are at most {MAX_FILE_BYTES} bytes",
                bytes.len()
            ),
        )]);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        vec![Problem::file(
            file,
            format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )]
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(vec![Problem::file(
            file,
            format!("expected a JSON object, got {}", kind_of(&other)),
        )]),
        Err(e) => Err(vec![Problem::file(file, format!("is not valid JSON: {e}"))]),
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

/// Parses and validates a task file. `file` is the name used in messages.
pub fn parse_task(file: &str, bytes: &[u8], limits: &Limits) -> Result<TaskSpec, Vec<Problem>> {
    let object = parse_object(file, bytes)?;
    task_from_object(file, object, limits)
}

/// Validates a task given as a JSON value (as `submit` receives them).
pub fn task_from_object(
    file: &str,
    object: serde_json::Map<String, Value>,
    limits: &Limits,
) -> Result<TaskSpec, Vec<Problem>> {
    let mut r = FieldReader::new(file, "", object);
    let id = r.required("id", &["task_id"]);
    let id = r.string("id", id).and_then(|id| match check_id(&id) {
        Ok(()) => Some(id),
        Err(why) => {
            r.problem("id", why);
            None
        }
    });
    let image = r.required("image", &[]);
    let image = r
        .string("image", image)
        .and_then(|image| match check_image(&image) {
            Ok(()) => Some(image),
            Err(why) => {
                r.problem("image", format!("{why} (in {image:?})"));
                None
            }
        });
    let command = r.required("command", &["script"]);
    let command = read_command(&mut r, command);
    let created_at = r.required("created_at", &[]);
    let created_at = r.timestamp("created_at", created_at);
    let timeout = r.required("timeout", &["timeout_seconds"]);
    let timeout = r.integer("timeout", timeout, 1, limits.max_timeout as i64);
    let submitted_by = r.required("submitted_by", &[]);
    let submitted_by = r.text("submitted_by", submitted_by, MAX_SHORT_TEXT);

    let env = r.take("env", &[]);
    let env = read_env(&mut r, env);
    let priority = r.take("priority", &[]);
    let priority = r.integer("priority", priority, -1_000_000, 1_000_000);
    let max_attempts = r.take("max_attempts", &[]);
    let max_attempts = r.integer("max_attempts", max_attempts, 1, 100);
    let labels = r.take("labels", &[]);
    let labels = r.string_list("labels", labels).unwrap_or_default();
    for (i, label) in labels.iter().enumerate() {
        if let Err(why) = check_label(label) {
            r.problem(&format!("labels[{i}]"), why);
        }
    }
    let resources = r.take("resources", &[]);
    let resources = read_resources(&mut r, resources);
    let network = r.take("network", &[]);
    let network = match r.string("network", network).as_deref() {
        None => None,
        Some("none") => Some(Network::None),
        Some("bridge") => Some(Network::Bridge),
        Some(other) => {
            r.problem(
                "network",
                format!("expected \"none\" or \"bridge\", got {other:?}"),
            );
            None
        }
    };
    let depends_on = r.take("depends_on", &[]);
    let depends_on = r.string_list("depends_on", depends_on).unwrap_or_default();
    for (i, dep) in depends_on.iter().enumerate() {
        if let Err(why) = check_id(dep) {
            r.problem(&format!("depends_on[{i}]"), why);
        } else if id.as_deref() == Some(dep.as_str()) {
            r.problem(
                &format!("depends_on[{i}]"),
                "a task cannot depend on itself",
            );
        }
    }
    let attempts = r.take("attempts", &[]);
    let attempts = r.integer("attempts", attempts, 0, 1000);
    let claim = r.take("claim", &[]);
    let claim = read_claim(&mut r, claim);

    let problems = r.finish();
    if !problems.is_empty() {
        return Err(problems);
    }
    // Every required field was present and valid, or a problem was recorded above.
    match (id, image, command, created_at, timeout, submitted_by) {
        (
            Some(id),
            Some(image),
            Some(command),
            Some(created_at),
            Some(timeout),
            Some(submitted_by),
        ) => Ok(TaskSpec {
            id,
            image,
            command,
            created_at,
            timeout: timeout as u64,
            submitted_by,
            env,
            priority,
            max_attempts: max_attempts.map(|n| n as u32),
            labels,
            resources,
            network,
            depends_on,
            attempts: attempts.map(|n| n as u32),
            claim,
        }),
        _ => Err(vec![Problem::file(file, "is incomplete")]),
    }
}

fn read_command(r: &mut FieldReader, value: Option<Value>) -> Option<TaskCommand> {
    match value? {
        Value::String(s) => {
            if s.trim().is_empty() {
                r.problem("command", "must not be empty");
            } else if s.len() > MAX_COMMAND_BYTES {
                r.problem(
                    "command",
                    format!("must be at most {MAX_COMMAND_BYTES} bytes, got {}", s.len()),
                );
            } else if s.contains('\0') {
                r.problem("command", "must not contain a NUL character");
            } else {
                return Some(TaskCommand::Shell(s));
            }
            None
        }
        Value::Array(items) => {
            let mut argv = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::String(s) if !s.contains('\0') => argv.push(s),
                    other => {
                        r.problem(
                            &format!("command[{i}]"),
                            format!(
                                "expected a string without NUL characters, got {}",
                                show(&other)
                            ),
                        );
                        return None;
                    }
                }
            }
            let total: usize = argv.iter().map(|a| a.len() + 1).sum();
            if argv.first().is_none_or(|a| a.is_empty()) {
                r.problem(
                    "command",
                    "an argv array needs a non-empty first element (the program)",
                );
            } else if total > MAX_COMMAND_BYTES {
                r.problem(
                    "command",
                    format!("must be at most {MAX_COMMAND_BYTES} bytes in all, got {total}"),
                );
            } else {
                return Some(TaskCommand::Argv(argv));
            }
            None
        }
        other => {
            r.problem(
                "command",
                format!(
                    "expected a string (run with sh -c) or an array of strings (argv), got {}",
                    show(&other)
                ),
            );
            None
        }
    }
}

fn read_env(r: &mut FieldReader, value: Option<Value>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let Some(map) = r.object("env", value) else {
        return env;
    };
    for (key, value) in map {
        let field = format!("env.{key}");
        if !check_env_name(&key) {
            r.problem(
                &field,
                "variable names are ASCII letters, digits and '_', not starting with a digit",
            );
            continue;
        }
        match value {
            Value::String(s) if !s.contains('\0') => {
                env.insert(key, s);
            }
            other => r.problem(
                &field,
                format!(
                    "expected a string without NUL characters, got {}",
                    show(&other)
                ),
            ),
        }
    }
    env
}

fn read_resources(r: &mut FieldReader, value: Option<Value>) -> Option<Resources> {
    let map = r.object("resources", value)?;
    let mut nested = FieldReader::new(r.file(), "resources.", map);
    let cpus = nested.take("cpus", &[]);
    let cpus = match cpus {
        None => None,
        Some(v) => match v.as_f64() {
            Some(c) if c > 0.0 && c <= 1024.0 => Some(c),
            _ => {
                nested.problem(
                    "cpus",
                    format!(
                        "expected a number above 0 and at most 1024, got {}",
                        show(&v)
                    ),
                );
                None
            }
        },
    };
    let memory = nested.take("memory", &[]);
    let memory = match memory {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Some(n.to_string()),
        Some(Value::String(s)) if check_memory(&s) => Some(s),
        Some(other) => {
            nested.problem(
                "memory",
                format!("expected bytes as a positive integer or a string like \"512m\" or \"2g\", got {}", show(&other)),
            );
            None
        }
    };
    let problems = nested.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    ok.then_some(Resources { cpus, memory })
}

fn read_claim(r: &mut FieldReader, value: Option<Value>) -> Option<Claim> {
    let map = r.object("claim", value)?;
    let mut c = FieldReader::new(r.file(), "claim.", map);
    let node_id = c.required("node_id", &[]);
    let node_id = c
        .string("node_id", node_id)
        .and_then(|n| match check_id(&n) {
            Ok(()) => Some(n),
            Err(why) => {
                c.problem("node_id", why);
                None
            }
        });
    let claimed_at = c.required("claimed_at", &[]);
    let claimed_at = c.timestamp("claimed_at", claimed_at);
    let lease = c.required("lease_expires_at", &[]);
    let lease = c.timestamp("lease_expires_at", lease);
    let attempt = c.required("attempt", &[]);
    let attempt = c.integer("attempt", attempt, 1, 1000);
    let problems = c.finish();
    let ok = problems.is_empty();
    r.problems.extend(problems);
    match (ok, node_id, claimed_at, lease, attempt) {
        (true, Some(node_id), Some(claimed_at), Some(lease_expires_at), Some(attempt)) => {
            Some(Claim {
                node_id,
                claimed_at,
                lease_expires_at,
                attempt: attempt as u32,
            })
        }
        _ => None,
    }
}

/// Parses and validates a result file (`tasks/completed/...` or `tasks/failed/...`).
pub fn parse_result(file: &str, bytes: &[u8], limits: &Limits) -> Result<TaskResult, Vec<Problem>> {
    let object = parse_object(file, bytes)?;
    let mut r = FieldReader::new(file, "", object);
    let task_id = r.required("task_id", &[]);
    let task_id = r
        .string("task_id", task_id)
        .and_then(|id| match check_id(&id) {
            Ok(()) => Some(id),
            Err(why) => {
                r.problem("task_id", why);
                None
            }
        });
    let node_id = r.required("node_id", &[]);
    let node_id = r.text("node_id", node_id, MAX_SHORT_TEXT);
    let exit_code = match r.required("exit_code", &[]) {
        Some(Value::Null) | None => None,
        Some(v) => r.integer(
            "exit_code",
            Some(v),
            i64::from(i32::MIN),
            i64::from(u32::MAX),
        ),
    };
    let stdout = r.required("stdout", &[]);
    let stdout = r.string("stdout", stdout);
    let stderr = r.required("stderr", &[]);
    let stderr = r.string("stderr", stderr);
    let timestamp = r.required("timestamp", &[]);
    let timestamp = r.timestamp("timestamp", timestamp);
    let status = r.required("status", &[]);
    let status = r.string("status", status).and_then(|s| {
        match Status::ALL.iter().find(|(name, _)| *name == s) {
            Some((_, status)) => Some(*status),
            None => {
                r.problem(
                    "status",
                    format!("expected one of \"success\", \"failed\", \"timeout\", \"cancelled\", \"lost\", got {s:?}"),
                );
                None
            }
        }
    });
    let started_at = r.take("started_at", &[]);
    let started_at = r.timestamp("started_at", started_at);
    let finished_at = r.take("finished_at", &[]);
    let finished_at = r.timestamp("finished_at", finished_at);
    let duration_ms = r.take("duration_ms", &[]);
    let duration_ms = r.integer("duration_ms", duration_ms, 0, i64::MAX);
    let attempt = r.take("attempt", &[]);
    let attempt = r.integer("attempt", attempt, 1, 1000);
    let stdout_info = r.take("stdout_info", &[]);
    let stdout_info = read_stream_info(&mut r, "stdout_info", stdout_info);
    let stderr_info = r.take("stderr_info", &[]);
    let stderr_info = read_stream_info(&mut r, "stderr_info", stderr_info);
    let task = r.take("task", &[]);
    let task = r.object("task", task).and_then(|map| {
        match task_from_object(&format!("{file} (field \"task\")"), map, limits) {
            Ok(spec) => Some(spec),
            Err(problems) => {
                r.problems.extend(problems);
                None
            }
        }
    });
    let late = r.take("late_results", &[]);
    let late_results = match late {
        None => Vec::new(),
        Some(v) => match serde_json::from_value::<Vec<LateResult>>(v) {
            Ok(list) => list,
            Err(e) => {
                r.problem(
                    "late_results",
                    format!("expected a list of late results: {e}"),
                );
                Vec::new()
            }
        },
    };
    let problems = r.finish();
    if !problems.is_empty() {
        return Err(problems);
    }
    match (task_id, node_id, stdout, stderr, timestamp, status) {
        (
            Some(task_id),
            Some(node_id),
            Some(stdout),
            Some(stderr),
            Some(timestamp),
            Some(status),
        ) => Ok(TaskResult {
            task_id,
            node_id,
            exit_code,
            stdout,
            stderr,
            timestamp,
            status,
            started_at,
            finished_at,
            duration_ms: duration_ms.map(|d| d as u64),
            attempt: attempt.map(|a| a as u32),
            stdout_info,
            stderr_info,
            task,
            late_results,
        }),
        _ => Err(vec![Problem::file(file, "is incomplete")]),
    }
}

fn read_stream_info(
    r: &mut FieldReader,
    name: &'static str,
    value: Option<Value>,
) -> Option<StreamInfo> {
    let map = r.object(name, value)?;
    match serde_json::from_value::<StreamInfo>(Value::Object(map)) {
        Ok(info)
            if info.sha256.len() == 64 && info.sha256.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Some(info)
        }
        Ok(_) => {
            r.problem(name, "\"sha256\" must be 64 hex digits");
            None
        }
        Err(e) => {
            r.problem(
                name,
                format!("expected {{\"total_bytes\": integer, \"sha256\": hex, \"truncated\": boolean}}: {e}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["task-001", "a", "A.b_c-d", &"x".repeat(128)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "a..b",
            &"x".repeat(129),
            "tàsk",
            "tаsk",
            "a b",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "python:3.11-alpine",
            "alpine",
            "library/alpine:latest",
            "ghcr.io/owner/repo:v1.2",
            "localhost:5000/x/y",
            "registry.example.com:443/a__b/c-d.e:tag",
            &format!("alpine@sha256:{}", "a".repeat(64)),
            &format!("alpine:3@sha256:{}", "0".repeat(64)),
        ] {
            assert!(check_image(ok).is_ok(), "{ok}: {:?}", check_image(ok));
        }
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "alpine@sha256:abc",
            "a//b",
            "-alpine",
            "alpine_",
            "ex ample",
            "host:port/x",
            "alpine@md5:00",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory() {
        assert!(check_memory("512m"));
        assert!(check_memory("1073741824"));
        assert!(!check_memory("m"));
        assert!(!check_memory("0"));
        assert!(!check_memory("12mb"));
    }
}

//! The parser of a result file (`tasks/completed/...`, `tasks/failed/...`): the seed's result
//! `{task_id, node_id, exit_code, stdout, stderr, timestamp, status}` and what git-dgrid adds,
//! every problem reported at once, as for task files (`parse`).

use super::ids::{Attempt, TaskId};
use super::model::{
    LateResult, Limits, Origin, SignedBy, Status, StreamInfo, TaskResult, TaskSpec,
};
use super::parse::task_from_object;
use super::replicated::read_outcome;
use super::rules::MAX_SHORT_TEXT;
use crate::fields::{read_object, FieldReader};
use crate::problem::Problem;
use serde_json::Value;

/// Parses and validates a result file (`tasks/completed/...` or `tasks/failed/...`).
pub fn parse_result(file: &str, bytes: &[u8], limits: &Limits) -> Result<TaskResult, Vec<Problem>> {
    let object = read_object(file, bytes).map_err(|p| vec![p])?;
    let mut r = FieldReader::new(file, "", object);
    let task_id = read_task_id(&mut r);
    // null: no node ran it (a task cancelled while queued); held as "" and written back as null.
    let node_id = match r.required("node_id", &[]) {
        Some(Value::Null) => Some(String::new()),
        given => r.text("node_id", given, MAX_SHORT_TEXT),
    };
    let exit_code = read_exit_code(&mut r);
    let stdout = r.required("stdout", &[]);
    let stdout = r.string("stdout", stdout);
    let stderr = r.required("stderr", &[]);
    let stderr = r.string("stderr", stderr);
    let timestamp = r.required("timestamp", &[]);
    let timestamp = r.timestamp("timestamp", timestamp);
    let status = read_status(&mut r);
    let started_at = r.take("started_at", &[]);
    let started_at = r.timestamp("started_at", started_at);
    let finished_at = r.take("finished_at", &[]);
    let finished_at = r.timestamp("finished_at", finished_at);
    let duration_ms = r.take("duration_ms", &[]);
    let duration_ms = r.integer("duration_ms", duration_ms, 0, i64::MAX);
    let attempt = r.take("attempt", &[]);
    let attempt = r
        .integer("attempt", attempt, 1, i64::from(Attempt::MAX))
        .and_then(|n| Attempt::new(n as u32).ok());
    let stdout_info = r.take("stdout_info", &[]);
    let stdout_info = read_stream_info(&mut r, "stdout_info", stdout_info);
    let stderr_info = r.take("stderr_info", &[]);
    let stderr_info = read_stream_info(&mut r, "stderr_info", stderr_info);
    let task = read_task_copy(&mut r, file, limits);
    let late_results = read_late_results(&mut r);
    let signed_by = r.take("signed_by", &[]);
    let signed_by = r.typed::<SignedBy>(
        "signed_by",
        signed_by,
        "{\"principal\": text, \"fingerprint\": text}",
    );
    let quorum = r.take("quorum", &[]);
    let quorum = read_outcome(&mut r, quorum, status);
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
            recorded_attempt: attempt,
            stdout_info,
            stderr_info,
            task,
            late_results,
            signed_by,
            quorum,
        }),
        _ => Err(vec![Problem::file(file, "is incomplete")]),
    }
}

/// `task_id`, a valid task id.
fn read_task_id(r: &mut FieldReader) -> Option<TaskId> {
    let task_id = r.required("task_id", &[]);
    r.string("task_id", task_id)
        .and_then(|id| match TaskId::parse(id) {
            Ok(id) => Some(id),
            Err(why) => {
                r.problem("task_id", why);
                None
            }
        })
}

/// `exit_code`: an integer, or null when there is none.
fn read_exit_code(r: &mut FieldReader) -> Option<i64> {
    match r.required("exit_code", &[]) {
        Some(Value::Null) | None => None,
        Some(v) => r.integer(
            "exit_code",
            Some(v),
            i64::from(i32::MIN),
            i64::from(u32::MAX),
        ),
    }
}

/// `status`, one of `Status::ALL`'s names.
fn read_status(r: &mut FieldReader) -> Option<Status> {
    let status = r.required("status", &[]);
    r.string("status", status)
        .and_then(|s| match Status::ALL.iter().find(|(name, _)| *name == s) {
            Some((_, status)) => Some(*status),
            None => {
                let names: Vec<String> =
                    Status::ALL.iter().map(|(n, _)| format!("{n:?}")).collect();
                r.problem(
                    "status",
                    format!("expected one of {}, got {s:?}", names.join(", ")),
                );
                None
            }
        })
}

/// `task`, the copy of the task's spec, read as a task file with nothing filled in.
fn read_task_copy(r: &mut FieldReader, file: &str, limits: &Limits) -> Option<TaskSpec> {
    let task = r.take("task", &[]);
    r.object("task", task).and_then(|map| {
        // git-dgrid writes this copy from a whole spec: nothing is filled in.
        match task_from_object(
            &format!("{file} (field \"task\")"),
            map,
            limits,
            Origin::Required,
        ) {
            Ok(spec) => Some(spec),
            Err(problems) => {
                r.problems.extend(problems);
                None
            }
        }
    })
}

/// `late_results`, summaries of results that arrived after the task was finished.
fn read_late_results(r: &mut FieldReader) -> Vec<LateResult> {
    let late = r.take("late_results", &[]);
    match late {
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

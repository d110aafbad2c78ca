//! Whose failure a finished `docker run` was: the task's or docker's. The container's stderr and
//! the CLI's share one pipe, so nothing the streams say decides it: the container's own record
//! (`docker inspect` before removal) does. A container that started ran the task, whatever it
//! printed or exited with (125 included); one that never existed, or never started, is docker's
//! failure, and then everything on the pipe is the CLI's own message.

use serde::Deserialize;

/// The part of `docker inspect`'s `.State` the verdict needs.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: String,
}

impl ContainerState {
    /// Docker writes the zero time for a container that never started.
    fn started(&self) -> bool {
        !self.started_at.is_empty() && !self.started_at.starts_with("0001-01-01")
    }
}

/// What the end of a run means.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The task ran and exited with this code.
    Exited(i64),
    /// The task's own command could not be started (not found, not executable): its failure.
    CommandFailed(i64),
    /// Docker could not run the task: the node's problem, with docker's reason.
    Infra(String),
}

/// `inspected` is the container's state, or why it could not be had (no such container: it was
/// never created); `cli_code` the CLI's exit code and `cli_stderr` what the pipe carried.
pub fn verdict(
    inspected: Result<ContainerState, String>,
    cli_code: Option<i64>,
    cli_stderr: &str,
) -> Verdict {
    let state = match inspected {
        Ok(state) => state,
        Err(why) => {
            let said = if cli_stderr.trim().is_empty() {
                why
            } else {
                cli_stderr.to_string()
            };
            return Verdict::Infra(one_line(&format!(
                "docker run (exit {}) created no container: {said}",
                code_text(cli_code)
            )));
        }
    };
    if state.running {
        return Verdict::Infra(
            "the docker CLI ended while its container still ran (lost the daemon?)".into(),
        );
    }
    if state.started() {
        return Verdict::Exited(state.exit_code);
    }
    // Created, never started: 126 and 127 are docker's "cannot invoke" and "not found" for the
    // task's own entrypoint; anything else is the daemon's trouble.
    match cli_code {
        Some(code @ (126 | 127)) => Verdict::CommandFailed(code),
        _ => {
            let said = if state.error.is_empty() {
                cli_stderr
            } else {
                &state.error
            };
            Verdict::Infra(one_line(&format!(
                "docker could not start the container: {said}"
            )))
        }
    }
}

fn code_text(code: Option<i64>) -> String {
    code.map_or_else(|| "by a signal".into(), |c| c.to_string())
}

/// Bytes of docker's message kept in an error: enough for a registry's whole answer.
pub const MESSAGE_CAP: usize = 2048;

/// A message on one line (lines joined with " | "), at most [`MESSAGE_CAP`] bytes: the log
/// and the node's `problem` keep docker's whole reason, not just its first line.
pub fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    if joined.len() <= MESSAGE_CAP {
        return joined;
    }
    let mut end = MESSAGE_CAP - 3;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &joined[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(code: i64) -> ContainerState {
        ContainerState {
            exit_code: code,
            started_at: "2026-12-01T22:19:56.008275326Z".into(),
            ..ContainerState::default()
        }
    }

    #[test]
    fn a_started_container_is_the_tasks_verdict_whatever_it_printed() {
        let lie = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock";
        assert_eq!(verdict(Ok(started(1)), Some(1), lie), Verdict::Exited(1));
        let lie = "docker: Error response from daemon: pull access denied";
        assert_eq!(
            verdict(Ok(started(125)), Some(125), lie),
            Verdict::Exited(125)
        );
        assert_eq!(verdict(Ok(started(0)), Some(0), ""), Verdict::Exited(0));
    }

    #[test]
    fn no_container_is_dockers_failure_with_its_whole_message() {
        let said = "Unable to find image 'x:1' locally\ndocker: Error response from daemon: \
                    manifest unknown.\nSee 'docker run --help'.";
        let Verdict::Infra(why) = verdict(Err("No such container".into()), Some(125), said) else {
            panic!("infra expected");
        };
        assert!(why.contains("Unable to find image 'x:1' locally | docker: Error response"));
        assert!(why.ends_with("See 'docker run --help'."), "{why}");
    }

    #[test]
    fn created_but_never_started() {
        let created = ContainerState {
            exit_code: 127,
            error: "exec: \"nosuch\": executable file not found".into(),
            started_at: "0001-01-01T00:00:00Z".into(),
            ..ContainerState::default()
        };
        assert_eq!(
            verdict(Ok(created), Some(127), ""),
            Verdict::CommandFailed(127)
        );
        let refused = ContainerState {
            error: "cgroup trouble".into(),
            started_at: "0001-01-01T00:00:00Z".into(),
            ..ContainerState::default()
        };
        assert!(
            matches!(verdict(Ok(refused), Some(125), ""), Verdict::Infra(w) if w.contains("cgroup"))
        );
        let running = ContainerState {
            running: true,
            ..started(0)
        };
        assert!(matches!(verdict(Ok(running), None, ""), Verdict::Infra(_)));
    }

    #[test]
    fn messages_are_one_bounded_line() {
        assert_eq!(one_line("a\n\n  b  \nc"), "a | b | c");
        let long = "é".repeat(5000);
        let cut = one_line(&long);
        assert!(cut.len() <= MESSAGE_CAP && cut.ends_with('…'));
    }
}

//! A worker's log: plain, greppable lines (`<time> <node> <message>`), or one JSON object per line
//! for supervisors (`--log-format json`), with `-v` / `-q` levels. Always on stderr.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    /// Only for the error that ends the process ([`error`]).
    Error,
}

#[derive(Debug, Clone)]
pub struct Log {
    format: LogFormat,
    min: Level,
    /// On a terminal, running tasks are drawn as live lines; log lines go above them.
    bars: Option<indicatif::MultiProgress>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
    msg: &'a str,
}

/// The format of what the process prints outside a [`Log`] (a warning from below the worker, the
/// error that ends it): under `--log-format json`, every line on stderr is one JSON object.
static JSON_PROCESS: AtomicBool = AtomicBool::new(false);

/// Sets the format of [`warning`] and [`error`] for the rest of the process.
pub fn set_process_format(format: LogFormat) {
    JSON_PROCESS.store(format == LogFormat::Json, Ordering::Relaxed);
}

/// A warning from code that has no [`Log`] (a skipped file, a set-aside spool entry): a
/// `warning: ` line, or a JSON object when the process logs JSON.
pub fn warning(msg: &str) {
    process_line(Level::Warn, "warning: ", msg)
}

/// The error that ends a command, as [`warning`] prints warnings.
pub fn error(msg: &str) {
    process_line(Level::Error, "error: ", msg)
}

fn process_line(level: Level, tag: &str, msg: &str) {
    let msg = crate::text::redact_urls(msg);
    if JSON_PROCESS.load(Ordering::Relaxed) {
        let line = Line {
            time: crate::time::rfc3339(chrono::Utc::now()),
            level,
            node: None,
            msg: &msg,
        };
        say(&serde_json::to_string(&line).expect("a log line serializes"));
    } else {
        say(&format!("{tag}{}", crate::text::clean_lines(&msg)));
    }
}

impl Log {
    pub fn new(format: LogFormat, min: Level) -> Log {
        use std::io::IsTerminal;
        let bars = (format == LogFormat::Text && std::io::stderr().is_terminal())
            .then(indicatif::MultiProgress::new);
        Log { format, min, bars }
    }

    /// A live line for a running task (elapsed against its timeout), when on a terminal.
    pub fn task_line(&self, task: &str, timeout_secs: u64) -> Option<indicatif::ProgressBar> {
        let bars = self.bars.as_ref()?;
        let bar = bars.add(indicatif::ProgressBar::new_spinner());
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} running {elapsed} of {msg}",
        )
        .ok()?;
        bar.set_style(style);
        bar.set_prefix(task.to_string());
        bar.set_message(crate::time::human_duration(timeout_secs as i64));
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        Some(bar)
    }

    pub fn write(&self, level: Level, node: &str, msg: &str) {
        if level < self.min {
            return;
        }
        let time = crate::time::rfc3339(chrono::Utc::now());
        // A task's stderr, a git error or a hostname can carry newlines, escapes and a remote's
        // token: a line stays one line, of printable text, without credentials.
        let msg = &crate::text::redact_urls(msg);
        match self.format {
            LogFormat::Text => {
                let tag = match level {
                    Level::Warn => "warning: ",
                    Level::Error => "error: ",
                    _ => "",
                };
                let line = format!(
                    "{time} {} {tag}{}",
                    crate::text::clean(node),
                    crate::text::one_line(msg)
                );
                // Above the live lines, but written by us with its newline: indicatif's own
                // `println` ends a line with spaces up to the terminal's width instead, so a log
                // captured from the terminal (`script`, tmux) was one endless line.
                match &self.bars {
                    Some(bars) => bars.suspend(|| say(&line)),
                    None => say(&line),
                }
            }
            LogFormat::Json => {
                let line = Line {
                    time,
                    level,
                    node: Some(node),
                    msg,
                };
                say(&serde_json::to_string(&line).expect("a log line serializes"));
            }
        }
    }

    pub fn debug(&self, node: &str, msg: &str) {
        self.write(Level::Debug, node, msg)
    }

    pub fn info(&self, node: &str, msg: &str) {
        self.write(Level::Info, node, msg)
    }

    pub fn warn(&self, node: &str, msg: &str) {
        self.write(Level::Warn, node, msg)
    }
}

/// One line on stderr. A worker must never die because whoever read its log went away, so a
/// failed write is dropped (`eprintln!` would panic).
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

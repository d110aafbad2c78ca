//! A worker's log: plain, greppable lines (`<time> <node> <message>`), or one JSON object per line
//! for supervisors (`--log-format json`), with `-v` / `-q` levels. Always on stderr.

use serde::Serialize;

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
}

#[derive(Debug, Clone, Copy)]
pub struct Log {
    format: LogFormat,
    min: Level,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    level: Level,
    node: &'a str,
    msg: &'a str,
}

impl Log {
    pub fn new(format: LogFormat, min: Level) -> Log {
        Log { format, min }
    }

    pub fn write(&self, level: Level, node: &str, msg: &str) {
        if level < self.min {
            return;
        }
        let time = crate::grid::claim::rfc3339(chrono::Utc::now());
        match self.format {
            LogFormat::Text => {
                let tag = match level {
                    Level::Warn => "warning: ",
                    _ => "",
                };
                eprintln!("{time} {node} {tag}{msg}");
            }
            LogFormat::Json => {
                let line = Line {
                    time,
                    level,
                    node,
                    msg,
                };
                eprintln!(
                    "{}",
                    serde_json::to_string(&line).expect("a log line serializes")
                );
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

//! Fitting a result into the size limit of a grid file by cutting the output it keeps.

use super::cut::text_head_and_tail;
use super::model::TaskResult;

impl TaskResult {
    /// Shrinks the kept output until the file fits in `max` bytes (escaping and replacement
    /// characters can make kept output several times larger as JSON). Each round halves the
    /// longer stream, keeping its head and its tail (errors are at the end) with a marker of the
    /// cut, as the capture does. The cut stream is marked `truncated`; its `sha256` and
    /// `total_bytes` still describe the whole output.
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
            let total = info.as_ref().map_or(text.len() as u64, |i| i.total_bytes);
            *text = text_head_and_tail(text, total, text.len() / 2);
            if let Some(info) = info {
                info.truncated = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Status, StreamInfo, TaskId};

    fn result(stdout: String, stderr: String) -> TaskResult {
        let info = |text: &str| StreamInfo {
            total_bytes: text.len() as u64,
            sha256: "00".into(),
            truncated: false,
        };
        TaskResult {
            task_id: TaskId::parse("t").unwrap(),
            node_id: "n".into(),
            exit_code: Some(1),
            stdout_info: Some(info(&stdout)),
            stderr_info: Some(info(&stderr)),
            stdout,
            stderr,
            timestamp: "2026-01-01T00:00:00Z".into(),
            status: Status::Failed,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            recorded_attempt: None,
            task: None,
            late_results: Vec::new(),
            signed_by: None,
            quorum: None,
        }
    }

    fn cut_count(text: &str) -> u64 {
        crate::task::cut::cut_count(text) as u64
    }

    #[test]
    fn fit_keeps_the_head_and_the_tail_and_marks_the_cut() {
        let seq: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
        let mut r = result(seq.clone(), "error: at the end\n".into());
        r.fit(64 * 1024);
        assert!(r.to_json().len() <= 64 * 1024);
        assert!(r.stdout.starts_with("1\n2\n3\n"), "{}", r.stdout);
        assert!(r.stdout.ends_with("\n199999\n200000\n"), "{}", r.stdout);
        assert_eq!(r.stdout.matches(" bytes cut] …\n").count(), 1);
        let shown = r.stdout.len() - crate::task::cut_marker(cut_count(&r.stdout)).len();
        assert_eq!(shown as u64 + cut_count(&r.stdout), seq.len() as u64);
        assert!(r.stdout_info.as_ref().unwrap().truncated);
        assert_eq!(r.stderr, "error: at the end\n", "the short stream is whole");
        assert!(!r.stderr_info.as_ref().unwrap().truncated);
    }

    /// Output the capture already cut is cut again around its marker: one marker, still counting
    /// from the whole stream.
    #[test]
    fn fit_recuts_captured_output_with_one_marker() {
        let seq: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
        let captured =
            crate::task::head_and_tail(seq.as_bytes(), seq.as_bytes(), seq.len() as u64, 200_000);
        let mut r = result(String::from_utf8(captured).unwrap(), String::new());
        r.stdout_info.as_mut().unwrap().total_bytes = seq.len() as u64;
        r.fit(32 * 1024);
        assert!(r.stdout.ends_with("\n200000\n"), "{}", r.stdout);
        assert_eq!(r.stdout.matches(" bytes cut] …\n").count(), 1);
        let shown = r.stdout.len() - crate::task::cut_marker(cut_count(&r.stdout)).len();
        assert_eq!(shown as u64 + cut_count(&r.stdout), seq.len() as u64);
    }

    /// Control characters take six bytes each as JSON: the loop goes on until the file fits.
    #[test]
    fn fit_fits_escaped_output() {
        let mut r = result("\u{1}".repeat(100_000), "\u{2}".repeat(100_000));
        r.fit(16 * 1024);
        assert!(r.to_json().len() <= 16 * 1024);
        assert!(r.stdout.contains(" bytes cut] …\n") && r.stderr.contains(" bytes cut] …\n"));
    }
}

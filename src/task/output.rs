//! Fitting a result into the size limit of a grid file by cutting the output it keeps.

use super::model::TaskResult;

impl TaskResult {
    /// Shrinks the kept output until the file fits in `max` bytes (escaping and replacement
    /// characters can make kept output several times larger as JSON). The cut stream is marked
    /// `truncated`; its `sha256` and `total_bytes` still describe the whole output.
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

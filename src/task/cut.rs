//! Cutting a long stream down to its head and its tail with a marker of the cut between them
//! (errors are at the end). One rule for both places output is cut: the executor's capture while
//! it reads bytes, and a result's `fit` into the file size limit.

/// The marker between the kept head and tail of a stream that was cut.
pub fn cut_marker(cut: u64) -> String {
    format!("\n… [{cut} bytes cut] …\n")
}

/// How much of the head and of the tail to keep within `cap` bytes, with the marker between
/// them, for a stream of `total` bytes of which `head_max` leading and `tail_max` trailing bytes
/// are at hand. `snap` moves a length down to one that can be cut there (a char boundary for
/// text). `None` when `cap` is too small for a marker to help.
fn plan(
    head_max: usize,
    tail_max: usize,
    total: u64,
    cap: usize,
    snap: impl Fn(usize, usize) -> (usize, usize),
) -> Option<(usize, usize, String)> {
    let mut marker = cut_marker(total);
    if cap < 2 * marker.len() {
        return None;
    }
    loop {
        let room = cap - marker.len();
        let head_len = (room / 2).min(head_max);
        let tail_len = (room - head_len).min(tail_max);
        let (head_len, tail_len) = snap(head_len, tail_len);
        let kept = (head_len + tail_len) as u64;
        let again = cut_marker(total.saturating_sub(kept));
        // The count shrinks as more is kept; stop once the marker no longer gets shorter.
        if again.len() >= marker.len() {
            return Some((head_len, tail_len, again));
        }
        marker = again;
    }
}

/// Head, marker and tail in at most `cap` bytes of a stream of `total` bytes whose first bytes
/// are `head` and last bytes `tail`. Too small a cap for a marker keeps the head alone.
pub fn head_and_tail(head: &[u8], tail: &[u8], total: u64, cap: usize) -> Vec<u8> {
    match plan(head.len(), tail.len(), total, cap, |h, t| (h, t)) {
        None => head[..cap.min(head.len())].to_vec(),
        Some((head_len, tail_len, marker)) => {
            let mut kept = head[..head_len].to_vec();
            kept.extend_from_slice(marker.as_bytes());
            kept.extend_from_slice(&tail[tail.len() - tail_len..]);
            kept
        }
    }
}

/// `text` cut to at most `cap` bytes: its head and its tail, cut at char boundaries, with a
/// marker counting what is not shown of the `total` bytes the stream had. An earlier marker in
/// the middle of `text` goes with the middle. The count is in bytes of `text` where invalid
/// UTF-8 was replaced, so it is never less than what this cut removed.
pub fn text_head_and_tail(text: &str, total: u64, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let snap = |head: usize, tail: usize| {
        let mut h = head;
        while !text.is_char_boundary(h) {
            h -= 1;
        }
        let mut from = text.len() - tail;
        while !text.is_char_boundary(from) {
            from += 1;
        }
        (h, text.len() - from)
    };
    let total = total.max(text.len() as u64);
    match plan(text.len(), text.len(), total, cap, snap) {
        None => {
            let (head, _) = snap(cap, 0);
            text[..head].to_string()
        }
        Some((head_len, tail_len, marker)) => {
            format!(
                "{}{marker}{}",
                &text[..head_len],
                &text[text.len() - tail_len..]
            )
        }
    }
}

/// The count in the cut marker of `text` (for tests of what cuts output).
#[cfg(test)]
pub fn cut_count(text: &str) -> usize {
    let number: String = text
        .split("… [")
        .nth(1)
        .expect("the text has a cut marker")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    number.parse().expect("the marker counts bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_head_and_tail_at_char_boundaries() {
        let text = "é".repeat(1000);
        let cut = text_head_and_tail(&text, 2000, 201);
        assert!(cut.len() <= 201, "{}", cut.len());
        assert!(cut.starts_with('é') && cut.ends_with('é'), "{cut}");
        // What is shown and what the marker counts make up the whole stream.
        let marker = cut_marker(cut_count(&cut) as u64);
        assert_eq!(cut.len() - marker.len() + cut_count(&cut), 2000);
        // Fits already: unchanged; too small for a marker: the head alone.
        assert_eq!(text_head_and_tail("abc", 3, 10), "abc");
        assert_eq!(text_head_and_tail(&text, 2000, 11), "ééééé");
    }

    #[test]
    fn bytes_too_small_for_a_marker_keep_the_head() {
        assert_eq!(head_and_tail(b"abcdef", b"def", 6, 3), b"abc");
    }
}

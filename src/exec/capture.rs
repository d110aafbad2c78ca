//! Reading a child's output as bytes with a cap: the head and the tail are kept (errors are at
//! the end), with a marker of the cut between them; every byte is counted and hashed, so a result
//! records what was cut. Results stay small because every push carries them.

use sha2::{Digest, Sha256};
use std::io::Read;

use crate::task::{head_and_tail, StreamInfo};

pub struct Captured {
    pub kept: Vec<u8>,
    pub info: StreamInfo,
}

impl Captured {
    /// The kept bytes as UTF-8, invalid sequences replaced (never decoded blindly).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }
}

/// Reads `reader` to its end, keeping at most `cap` bytes: its head and its tail.
pub fn capture(mut reader: impl Read, cap: usize) -> Captured {
    let mut kept = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = &buf[..n];
                hasher.update(chunk);
                total += n as u64;
                let room = cap - kept.len().min(cap);
                kept.extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    // The last `cap` bytes, trimmed now and then rather than on every read.
                    tail.extend_from_slice(&chunk[room..]);
                    if tail.len() > 2 * cap {
                        tail.drain(..tail.len() - cap);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let truncated = total > kept.len() as u64;
    if truncated {
        // The tail buffer holds what followed the head; the head's own end may be the tail too.
        let mut last = kept.clone();
        last.extend_from_slice(&tail);
        let from = last.len().saturating_sub(cap);
        kept = head_and_tail(&kept, &last[from..], total, cap);
    }
    Captured {
        info: StreamInfo {
            total_bytes: total,
            sha256,
            truncated,
        },
        kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::cut_marker;

    #[test]
    fn caps_counts_and_hashes() {
        let data = vec![b'x'; 100_000];
        let c = capture(&data[..], 10);
        assert_eq!(c.kept.len(), 10);
        assert_eq!(c.info.total_bytes, 100_000);
        assert!(c.info.truncated);
        let small = capture(&b"abc"[..], 10);
        assert!(!small.info.truncated);
        assert_eq!(
            small.info.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(capture(&[0xff, b'a'][..], 10).text(), "\u{fffd}a");
    }

    #[test]
    fn keeps_head_and_tail_with_a_marker() {
        let data: String = (1..=200_000).map(|n| format!("{n}\n")).collect();
        let c = capture(data.as_bytes(), 1024);
        let text = c.text();
        assert_eq!(c.kept.len(), 1024);
        assert!(text.starts_with("1\n2\n3\n"), "{text}");
        assert!(text.ends_with("199999\n200000\n"), "{text}");
        // The marker says how many bytes are not shown: kept + cut = the whole stream.
        let cut = crate::task::cut::cut_count(&text);
        assert_eq!(1024 - cut_marker(cut as u64).len() + cut, data.len());
        assert!(c.info.truncated);
        assert_eq!(c.info.total_bytes, data.len() as u64);
    }
}

//! Reading a child's output as bytes with a cap: the first `cap` bytes are kept, every byte is
//! counted and hashed, so a result records what was cut (DESIGN §3).

use sha2::{Digest, Sha256};
use std::io::Read;

use crate::task::StreamInfo;

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

/// Reads `reader` to its end, keeping at most `cap` bytes.
pub fn capture(mut reader: impl Read, cap: usize) -> Captured {
    let mut kept = Vec::new();
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
                if kept.len() < cap {
                    let room = cap - kept.len();
                    kept.extend_from_slice(&chunk[..n.min(room)]);
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
    Captured {
        info: StreamInfo {
            total_bytes: total,
            sha256,
            truncated: total > kept.len() as u64,
        },
        kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! Masking secret values in a task's output before it is kept, the way GitLab masks variables:
//! each value of at least [`MIN_MASKED_LEN`] bytes (without its trailing whitespace: a file read
//! by `$(cat …)` loses its newline), and the base64 forms of the value with and without it,
//! become [`MASK`]. A stream
//! is masked as it is read, so a value cut between two reads is still found; the output's digest
//! and its kept head and tail are computed from the masked bytes.

use base64::Engine as _;
use std::io::Read;
use zeroize::Zeroizing;

/// What a secret value is replaced by.
pub const MASK: &[u8] = b"[MASKED]";

/// Shorter values are not masked: masking "1" or "yes" would garble the output and hide nothing.
pub const MIN_MASKED_LEN: usize = 6;

/// The byte strings to mask, longest first (so a value is masked whole before any part of it).
#[derive(Clone)]
pub struct Masker {
    patterns: Vec<Zeroizing<Vec<u8>>>,
    /// Whether a pattern starts with this byte: most positions of an output are passed over
    /// without comparing any pattern.
    starts: [bool; 256],
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} pattern(s))", self.patterns.len())
    }
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Masker {
        let mut patterns: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for value in values {
            let trimmed = value.trim_ascii_end();
            let b64 = base64::engine::general_purpose::STANDARD;
            // The trimmed value covers the whole one and leaves its newline in the output.
            let plain = if trimmed.len() >= MIN_MASKED_LEN {
                trimmed
            } else {
                value
            };
            for form in [
                plain.to_vec(),
                b64.encode(value).into_bytes(),
                b64.encode(trimmed).into_bytes(),
            ] {
                if form.len() >= MIN_MASKED_LEN && !patterns.iter().any(|p| **p == form) {
                    patterns.push(Zeroizing::new(form));
                }
            }
        }
        patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut starts = [false; 256];
        for p in &patterns {
            starts[usize::from(p[0])] = true;
        }
        Masker { patterns, starts }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The longest pattern's length: a masking stream holds back one byte fewer than this.
    fn longest(&self) -> usize {
        self.patterns.first().map_or(0, |p| p.len())
    }

    /// The first match at or after `from`: (start, length).
    fn find(&self, data: &[u8], from: usize) -> Option<(usize, usize)> {
        (from..data.len()).find_map(|i| {
            if !self.starts[usize::from(data[i])] {
                return None;
            }
            self.patterns
                .iter()
                .find(|p| data[i..].starts_with(p))
                .map(|p| (i, p.len()))
        })
    }

    /// `data` with every pattern replaced.
    pub fn mask(&self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        let done = self.mask_into(data, data.len(), &mut out);
        out.extend_from_slice(&data[done..]);
        out
    }

    /// Masks `data` into `out` up to where no match can start before `end` is known; returns
    /// how many bytes of `data` were consumed.
    fn mask_into(&self, data: &[u8], end: usize, out: &mut Vec<u8>) -> usize {
        let mut at = 0;
        while let Some((start, len)) = self.find(data, at) {
            if start >= end {
                break;
            }
            out.extend_from_slice(&data[at..start]);
            out.extend_from_slice(MASK);
            at = start + len;
        }
        let safe = end.max(at);
        out.extend_from_slice(&data[at..safe]);
        safe
    }
}

/// A reader whose bytes are its inner reader's, masked.
pub struct MaskingReader<R> {
    inner: R,
    masker: Masker,
    /// Read but not yet masked: a match may start in its last `longest - 1` bytes.
    pending: Zeroizing<Vec<u8>>,
    /// Masked, not yet handed out.
    ready: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
    eof: bool,
}

impl<R: Read> MaskingReader<R> {
    pub fn new(inner: R, masker: Masker) -> Self {
        MaskingReader {
            inner,
            masker,
            pending: Zeroizing::new(Vec::new()),
            ready: Vec::new(),
            buf: Zeroizing::new(vec![0u8; 64 * 1024]),
            eof: false,
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        while self.ready.is_empty() && !self.eof {
            let n = match self.inner.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.eof = true;
            }
            self.pending.extend_from_slice(&self.buf[..n]);
            // Bytes from here on may be the start of a value whose end is not read yet.
            let hold = if self.eof {
                0
            } else {
                self.masker.longest().saturating_sub(1)
            };
            let end = self.pending.len().saturating_sub(hold);
            let consumed = self.masker.mask_into(&self.pending, end, &mut self.ready);
            self.pending.drain(..consumed);
        }
        Ok(())
    }
}

impl<R: Read> Read for MaskingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.masker.is_empty() {
            return self.inner.read(out);
        }
        self.fill()?;
        let n = out.len().min(self.ready.len());
        out[..n].copy_from_slice(&self.ready[..n]);
        self.ready.drain(..n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out a few bytes at a time, so values are cut between reads.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn masks_values_their_trimmed_and_base64_forms() {
        let m = Masker::new([&b"hunter22\n"[..], b"short"]);
        let text = b"a hunter22\n b hunter22 c aHVudGVyMjIK d aHVudGVyMjI= e short";
        let masked = String::from_utf8(m.mask(text)).unwrap();
        assert_eq!(
            masked,
            "a [MASKED]\n b [MASKED] c [MASKED] d [MASKED] e short"
        );
    }

    #[test]
    fn a_stream_is_masked_across_reads() {
        let m = Masker::new([&b"s3cret-token"[..]]);
        let text = b"s3cret-token then xs3cret-tokenx and s3cret-toke at the end s3cret-token";
        for step in [1, 2, 5, 11, 12, 13, 100] {
            let mut out = Vec::new();
            MaskingReader::new(Trickle(text, step), m.clone())
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                "[MASKED] then x[MASKED]x and s3cret-toke at the end [MASKED]",
                "reads of {step} bytes"
            );
        }
    }

    #[test]
    fn nothing_to_mask_passes_through() {
        let mut out = Vec::new();
        MaskingReader::new(&b"plain"[..], Masker::new([]))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"plain");
    }
}

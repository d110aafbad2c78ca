//! Single-value rules of the task contract: ids, image references, labels, environment variable
//! names and docker's memory syntax. Each returns the reason a value is wrong, for a `Problem`.

use crate::fields::show;
use serde_json::Value;

/// Largest `command` (the shell string, or the argv items added up).
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
pub const MAX_ID_LEN: usize = 128;
/// Largest free-text field (`submitted_by`, a result's `node_id`).
pub const MAX_SHORT_TEXT: usize = 1024;

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` and no `..`. Returns the reason when invalid.
pub fn check_id(id: &str) -> Result<(), String> {
    let quoted = show(&Value::String(id.to_string()));
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "must be at most {MAX_ID_LEN} characters, got {}",
            id.chars().count()
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if let Some(bad) = id.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "may only contain ASCII letters, digits, '.', '_' and '-', got {quoted} (contains {bad:?})"
        ));
    }
    if !id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("must start with a letter or digit, got {quoted}"));
    }
    if id.contains("..") {
        return Err(format!("must not contain \"..\", got {quoted}"));
    }
    Ok(())
}

/// Docker's image reference grammar: `[registry[:port]/]path[:tag][@sha256:<64 hex>]`.
pub fn check_image(image: &str) -> Result<(), String> {
    if image.is_empty() {
        return Err("must not be empty".into());
    }
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(format!(
                "digest must be \"sha256:\" and 64 lower-case hex digits, got {d:?}"
            ));
        }
    }
    // A ':' after the last '/' starts the tag; one before it belongs to a registry port.
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(i) if last_slash.is_none_or(|s| i > s) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && tag.starts_with(word)
            && tag.chars().all(|c| word(c) || c == '.' || c == '-');
        if !ok {
            return Err(format!(
                "tag must be 1-128 letters, digits, '_', '.' or '-' (not starting with '.' or '-'), got {tag:?}"
            ));
        }
    }
    if name.is_empty() {
        return Err("has no repository name".into());
    }
    if name.len() > 255 {
        return Err("repository name must be at most 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let is_registry = parts.len() > 1
        && (first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()));
    if is_registry {
        check_registry(first)?;
        parts.remove(0);
    }
    for part in parts {
        if part.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("repository name must be lower-case, got {name:?}"));
        }
        if !is_path_component(part) {
            return Err(format!(
                "path component {part:?} must be lower-case letters and digits, separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(format!("registry port must be a number, got {port:?}"));
        }
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(format!("registry host {host:?} is not a valid host name"));
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if expect_alnum {
            if !alnum(bytes[i]) {
                return false;
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
        } else {
            let sep_len = match bytes[i] {
                b'.' => 1,
                b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
                b'_' => 1,
                b'-' => bytes[i..].iter().take_while(|b| **b == b'-').count(),
                _ => return false,
            };
            i += sep_len;
            expect_alnum = true;
        }
    }
    !part.is_empty() && !expect_alnum
}

/// A node label (also what a task's `labels` asks for).
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && label.starts_with(|c: char| c.is_ascii_alphanumeric())
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '='));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "labels are 1-64 ASCII letters, digits, '.', '_', '-', ':' or '=', starting with a letter or digit, got {label:?}"
        ))
    }
}

pub fn check_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Docker's memory syntax as bytes: decimal digits with an optional `b`, `k`, `m` or `g` suffix
/// (either case). The one reading of it, for a task's `resources.memory` and a node's limit.
pub fn memory_bytes(text: &str) -> Option<u64> {
    let digits = text.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
    let shift = match &text[digits.len()..] {
        "" | "b" | "B" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The least memory docker gives a container: it refuses `--memory` below 6 MiB ("Minimum memory
/// limit allowed is 6MB").
pub const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// The fewest CPUs docker gives a container: `--cpus` below 0.01 is a CFS quota under 1 ms per
/// 100 ms period, which the kernel refuses (the container never starts).
pub const MIN_CPUS: f64 = 0.01;

/// A memory size a task may ask for: docker's syntax, at least docker's minimum.
pub fn check_memory(memory: &str) -> bool {
    memory_bytes(memory).is_some_and(|n| n >= MIN_MEMORY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["task-001", "a", "A.b_c-d", &"x".repeat(128)] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "a..b",
            &"x".repeat(129),
            "tàsk",
            "tаsk",
            "a b",
        ] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "python:3.11-alpine",
            "alpine",
            "library/alpine:latest",
            "ghcr.io/owner/repo:v1.2",
            "localhost:5000/x/y",
            "registry.example.com:443/a__b/c-d.e:tag",
            &format!("alpine@sha256:{}", "a".repeat(64)),
            &format!("alpine:3@sha256:{}", "0".repeat(64)),
        ] {
            assert!(check_image(ok).is_ok(), "{ok}: {:?}", check_image(ok));
        }
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "alpine@sha256:abc",
            "a//b",
            "-alpine",
            "alpine_",
            "ex ample",
            "host:port/x",
            "alpine@md5:00",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory() {
        assert!(check_memory("512m"));
        assert!(check_memory("1073741824"));
        assert!(check_memory("6m"));
        assert!(!check_memory("6291455"), "below docker's minimum");
        assert!(!check_memory("1k"), "below docker's minimum");
        assert!(!check_memory("m"));
        assert!(!check_memory("0"));
        assert!(!check_memory("12mb"));
        assert!(!check_memory("+5"));
        assert!(!check_memory(" 5m"));
        assert_eq!(memory_bytes("2G"), Some(2 << 30));
        assert_eq!(memory_bytes("7b"), Some(7));
    }
}

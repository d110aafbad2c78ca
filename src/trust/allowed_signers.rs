//! The allowed-signers file of `ssh-keygen -Y verify` (and git's `gpg.ssh.allowedSignersFile`),
//! which the `ssh-key` crate does not read. One signer a line:
//! `principals [options] keytype base64key [comment]`; `#` comments and blank lines are skipped.
//! Principals are comma-separated patterns (`*`, `?`, `!` to negate). Options, comma-separated:
//! `namespaces="a,b"` (patterns too), `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before=…`
//! (without `Z` in this machine's local time, as OpenSSH reads them), and `cert-authority`.
//!
//! A line that does not read is an error naming the file and line: a worker told to trust a file
//! it cannot read must not start. `cert-authority` lines (a CA that signs user certificates) are
//! skipped with a reason, because task signatures are checked against plain keys only.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ssh_key::public::KeyData;

/// One signer: a key, the principals it stands for, and what it may sign when.
#[derive(Debug, Clone)]
pub struct Signer {
    pub line: usize,
    pub principals: Vec<String>,
    pub key: KeyData,
    /// `None`: any namespace.
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<DateTime<Utc>>,
    pub valid_before: Option<DateTime<Utc>>,
}

impl Signer {
    /// Whether this signer may sign in `namespace`.
    pub fn permits(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|patterns| match_list(namespace, patterns))
    }
}

#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    /// The file's name, for messages.
    pub source: String,
    pub signers: Vec<Signer>,
    /// Lines skipped on purpose, each with its reason (`file:line: …`), for the log.
    pub skipped: Vec<String>,
}

impl AllowedSigners {
    /// Reads the file's text; every line that does not read is named (`file:line: reason`).
    pub fn parse(source: &str, text: &str) -> Result<AllowedSigners, Vec<String>> {
        let mut out = AllowedSigners {
            source: source.to_string(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(n, line) {
                Ok(Line::Signer(signer)) => out.signers.push(signer),
                Ok(Line::Skipped(why)) => out.skipped.push(format!("{source}:{n}: {why}")),
                Err(why) => errors.push(format!("{source}:{n}: {why}")),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The signers whose key is `key`.
    pub fn with_key<'a>(&'a self, key: &'a KeyData) -> impl Iterator<Item = &'a Signer> + 'a {
        self.signers.iter().filter(move |s| &s.key == key)
    }
}

enum Line {
    Signer(Signer),
    Skipped(String),
}

fn parse_line(n: usize, line: &str) -> Result<Line, String> {
    let tokens = tokens(line)?;
    let mut rest = tokens.iter().map(String::as_str);
    let principals = rest.next().ok_or("expected principals")?;
    let principals: Vec<String> = principals
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if principals.is_empty() {
        return Err("expected principals before the key".into());
    }
    let mut next = rest
        .next()
        .ok_or("expected a key type and key after the principals")?;
    let mut signer = Signer {
        line: n,
        principals,
        key: KeyData::Ed25519(ssh_key::public::Ed25519PublicKey([0; 32])),
        namespaces: None,
        valid_after: None,
        valid_before: None,
    };
    let mut cert_authority = false;
    if !looks_like_key_type(next) {
        for option in split_options(next) {
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name.to_ascii_lowercase(), Some(unquote(value)?)),
                None => (option.to_ascii_lowercase(), None),
            };
            match (name.as_str(), value) {
                ("cert-authority", None) => cert_authority = true,
                ("namespaces", Some(v)) => {
                    signer.namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect())
                }
                ("valid-after", Some(v)) => signer.valid_after = Some(parse_time(&v)?),
                ("valid-before", Some(v)) => signer.valid_before = Some(parse_time(&v)?),
                (other, _) => {
                    return Err(format!(
                        "unknown option {other:?} (known: namespaces, valid-after, valid-before, cert-authority)"
                    ))
                }
            }
        }
        next = rest
            .next()
            .ok_or("expected a key type and key after the options")?;
    }
    let key_type = next;
    let base64 = rest
        .next()
        .ok_or(format!("expected the key after {key_type:?}"))?;
    let public = ssh_key::PublicKey::from_openssh(&format!("{key_type} {base64}"))
        .map_err(|e| format!("the {key_type} key does not read: {e}"))?;
    if cert_authority {
        return Ok(Line::Skipped(
            "cert-authority keys are skipped: tasks are verified against plain keys".into(),
        ));
    }
    signer.key = public.key_data().clone();
    Ok(Line::Signer(signer))
}

fn looks_like_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-") || token.starts_with("sk-")
}

/// Whitespace-separated tokens; double quotes keep spaces inside one token (and stay in it).
fn tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".into());
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// Options split at commas outside quotes.
fn split_options(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

fn unquote(value: &str) -> Result<String, String> {
    match value.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .map(str::to_string)
            .ok_or_else(|| format!("option value {value} is not closed by a double quote")),
        None => Ok(value.to_string()),
    }
}

/// `YYYYMMDD[HHMM[SS]][Z]`: `Z` is UTC, otherwise this machine's local time (as OpenSSH).
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    let bad = || format!("{text:?} is not a time: expected YYYYMMDD[HHMM[SS]][Z]");
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let padded = match digits.len() {
        8 => format!("{digits}000000"),
        12 => format!("{digits}00"),
        14 => digits.to_string(),
        _ => return Err(bad()),
    };
    let date = NaiveDate::parse_from_str(&padded[..8], "%Y%m%d").map_err(|_| bad())?;
    let naive = NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S")
        .ok()
        .filter(|t| t.date() == date)
        .ok_or_else(bad)?;
    if utc {
        Ok(Utc.from_utc_datetime(&naive))
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)
    }
}

/// OpenSSH's `match_pattern_list`: comma-separated patterns, `!` negates; a negated match wins.
pub fn match_list(text: &str, patterns: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, text) => return false,
            Some(_) => {}
            None if glob(pattern, text) => matched = true,
            None => {}
        }
    }
    matched
}

/// `*` any run, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH5IEHdqYxfnS7+YMYuEFGuEHxnJKyKC9Em5nYQz9PS7";

    #[test]
    fn reads_principals_options_and_comments() {
        let text = format!(
            "# the grid's signers\n\nalice@example.com,bob {KEY} alice's laptop\n\
             ops namespaces=\"dgrid-task,git\",valid-after=\"20260101\",valid-before=\"20270101Z\" {KEY}\n"
        );
        let s = AllowedSigners::parse("signers", &text).unwrap();
        assert_eq!(s.signers.len(), 2);
        assert_eq!(s.signers[0].principals, ["alice@example.com", "bob"]);
        assert_eq!(s.signers[0].line, 3);
        assert!(s.signers[0].permits("anything"));
        let ops = &s.signers[1];
        assert!(ops.permits("dgrid-task") && !ops.permits("file"));
        assert_eq!(
            ops.valid_before.unwrap().to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        assert!(ops.valid_after.is_some());
    }

    #[test]
    fn bad_lines_are_named_with_their_number() {
        let text = format!(
            "alice {KEY}\nbob ssh-ed25519 notbase64\ncarol\ndave foo=1 {KEY}\n\
             erin valid-after=\"2026\" {KEY}\nfrank namespaces=\"a {KEY}\n"
        );
        let errors = AllowedSigners::parse("f", &text).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors[0].starts_with("f:2: the ssh-ed25519 key does not read"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("f:3: expected a key type"),
            "{errors:?}"
        );
        assert!(
            errors[2].contains("f:4: unknown option \"foo\""),
            "{errors:?}"
        );
        assert!(
            errors[3].contains("f:5: \"2026\" is not a time"),
            "{errors:?}"
        );
        assert!(
            errors[4].contains("f:6: a double quote is not closed"),
            "{errors:?}"
        );
    }

    #[test]
    fn cert_authorities_are_skipped_with_a_reason() {
        let text = format!("*@example.com cert-authority {KEY}\nalice {KEY}\n");
        let s = AllowedSigners::parse("f", &text).unwrap();
        assert_eq!(s.signers.len(), 1);
        assert!(
            s.skipped[0].starts_with("f:1: cert-authority"),
            "{:?}",
            s.skipped
        );
    }

    #[test]
    fn patterns() {
        let list = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        assert!(match_list("dgrid-task", &list("dgrid-*")));
        assert!(match_list("dgrid-task", &list("git,dgrid-t?sk")));
        assert!(!match_list("dgrid-task", &list("*,!dgrid-*")));
        assert!(!match_list("git", &list("dgrid-task")));
        assert!(match_list("a", &list("*")));
    }
}

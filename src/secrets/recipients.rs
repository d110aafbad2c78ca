//! The grid's recipients file, `.dgrid/recipients` on `main`: the public keys tasks' secrets are
//! encrypted to, one per line, named the way git's allowed-signers file names its keys:
//!
//! ```text
//! # name [options] key
//! w1 ssh-ed25519 AAAAC3Nza… worker one
//! w2 labels="gpu,eu" age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq
//! ```
//!
//! Keys: `ssh-ed25519`, `ssh-rsa` (as a `.pub` file has them, a comment may follow) and age
//! X25519 (`age1…`, as `age-keygen` prints it). Options: `labels="a,b"`, the labels of the nodes
//! that hold the key (informative: `submit --recipient` chooses by name).

/// Where the file is, at the top of `main`'s tree.
pub const RECIPIENTS_PATH: &str = ".dgrid/recipients";

/// One line of the file.
#[derive(Clone)]
pub struct Recipient {
    pub name: String,
    pub labels: Vec<String>,
    /// The key as the file writes it (without its comment).
    pub key: String,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipient")
            .field("name", &self.name)
            .field("labels", &self.labels)
            .field("key", &self.key)
            .finish()
    }
}

impl Recipient {
    pub(super) fn as_age(&self) -> &dyn age::Recipient {
        match &self.kind {
            Kind::X25519(r) => r,
            Kind::Ssh(r) => r,
        }
    }
}

/// Reads the file; every line that does not read is named with its number and why.
pub fn parse_recipients(text: &str) -> Result<Vec<Recipient>, Vec<String>> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(r) if out.iter().any(|o| o.name == r.name) => problems.push(format!(
                "{RECIPIENTS_PATH} line {}: the name {:?} is given twice",
                n + 1,
                r.name
            )),
            Ok(r) => out.push(r),
            Err(why) => problems.push(format!("{RECIPIENTS_PATH} line {}: {why}", n + 1)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn parse_line(line: &str) -> Result<Recipient, String> {
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or_default().to_string();
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
    {
        return Err(format!(
            "expected a name (letters, digits, '.', '_', '@', '-') first, got {name:?}"
        ));
    }
    let mut labels = Vec::new();
    let mut key_type = words.next().ok_or("a name with no key")?;
    if !key_type.starts_with("ssh-") && !key_type.starts_with("age1") {
        labels = parse_options(key_type)?;
        key_type = words.next().ok_or("options with no key")?;
    }
    let (key, kind) = if key_type.starts_with("age1") {
        let r: age::x25519::Recipient = key_type
            .parse()
            .map_err(|e| format!("not an age X25519 key ({e})"))?;
        (key_type.to_string(), Kind::X25519(r))
    } else {
        let blob = words.next().ok_or("an ssh key type with no key after it")?;
        let key = format!("{key_type} {blob}");
        let r: age::ssh::Recipient = key.parse().map_err(|e| match e {
            age::ssh::ParseRecipientKeyError::Unsupported(t) => {
                format!("{t} keys cannot receive secrets: use ssh-ed25519, ssh-rsa or age1")
            }
            other => format!("not an ssh-ed25519 or ssh-rsa public key ({other:?})"),
        })?;
        (key, Kind::Ssh(r))
    };
    Ok(Recipient {
        name,
        labels,
        key,
        kind,
    })
}

/// `labels="a,b"` (the only option; several options are comma-separated as in allowed signers).
fn parse_options(options: &str) -> Result<Vec<String>, String> {
    let Some(value) = options.strip_prefix("labels=") else {
        return Err(format!(
            "expected a key (ssh-ed25519, ssh-rsa, age1…) or labels=\"…\", got {options:?}"
        ));
    };
    let value = value.trim_matches('"');
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn age_key() -> (age::x25519::Identity, String) {
        let id = age::x25519::Identity::generate();
        let public = id.to_public().to_string();
        (id, public)
    }

    #[test]
    fn reads_names_options_and_keys() {
        let (_, k1) = age_key();
        let (_, k2) = age_key();
        let text = format!("# workers\n\nw1 {k1}\nw2 labels=\"gpu,eu\" {k2} the second\n");
        let r = parse_recipients(&text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "w1");
        assert_eq!(r[1].labels, vec!["gpu", "eu"]);
        assert_eq!(r[1].key, k2);
    }

    #[test]
    fn names_each_bad_line() {
        let (_, k) = age_key();
        let text = format!(
            "w1 {k}\nw1 {k}\nw3\nw4 ssh-dss AAAA\nw5 age1nope\nw6 color=red {k}\nbad/name {k}\n"
        );
        let problems = parse_recipients(&text).unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(problems[0].contains("line 2") && problems[0].contains("twice"));
        assert!(problems[1].contains("line 3"));
        assert!(problems[3].contains("line 5") && problems[3].contains("age"));
    }
}

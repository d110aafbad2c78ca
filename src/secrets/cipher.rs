//! Encrypting a secret to the grid's recipients, checking that a task's `secrets` value is age
//! ciphertext, and the node's keys (`--identity`) that open a task's secrets in memory.

use super::recipients::Recipient;
use age::armor::{ArmoredReader, ArmoredWriter, Format};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The first line of an armored age file.
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// A secret value is at most this long: it travels in a task file, which is small.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// `plaintext` encrypted to every recipient, armored (the form the `secrets` field holds).
pub fn encrypt(plaintext: &[u8], recipients: &[&Recipient]) -> Result<String, String> {
    if recipients.is_empty() {
        return Err("no recipients to encrypt to".into());
    }
    if plaintext.len() > MAX_SECRET_BYTES {
        return Err(format!(
            "a secret is at most {MAX_SECRET_BYTES} bytes, got {}",
            plaintext.len()
        ));
    }
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r.as_age()))
        .map_err(|e| format!("cannot encrypt: {e}"))?;
    let mut out = Vec::new();
    let armored = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor)
        .map_err(|e| format!("cannot encrypt: {e}"))?;
    let mut writer = encryptor
        .wrap_output(armored)
        .map_err(|e| format!("cannot encrypt: {e}"))?;
    writer
        .write_all(plaintext)
        .and_then(|()| writer.finish())
        .and_then(|armored| armored.finish())
        .map_err(|e| format!("cannot encrypt: {e}"))?;
    String::from_utf8(out).map_err(|_| "age wrote armor that is not text".into())
}

/// Whether `text` is an armored age file whose header reads and names recipients a key can
/// open (not a passphrase, which no worker has). The payload is checked when a worker opens it.
pub fn check_ciphertext(text: &str) -> Result<(), String> {
    if !text.trim_start().starts_with(ARMOR_BEGIN) {
        return Err(format!(
            "expected age ciphertext (armored, starting with {ARMOR_BEGIN}); never put a plain value here: use submit --secret"
        ));
    }
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(text.as_bytes()))
        .map_err(|e| format!("is not age ciphertext: {e}"))?;
    if decryptor.is_scrypt() {
        return Err("is encrypted with a passphrase, which no worker has: encrypt to the grid's recipients (submit --secret)".into());
    }
    Ok(())
}

/// The keys this node decrypts with (`--identity`): age X25519 identities or an ssh private key
/// (ed25519 or RSA, without a passphrase: a worker runs unattended).
pub struct Keys {
    keys: Vec<Key>,
}

enum Key {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} key(s))", self.keys.len())
    }
}

/// A task's secrets, decrypted: held in memory only, wiped when dropped.
pub struct Opened {
    values: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Opened({names:?}, values hidden)")
    }
}

impl Opened {
    /// Each secret's name and value, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.values.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl Keys {
    /// Reads an identity file: age's (`AGE-SECRET-KEY-1…` lines, `#` comments) or an ssh private
    /// key. Errors never quote the file's content.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keys, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "is not text")?;
        if text.contains("AGE-SECRET-KEY-") {
            let mut keys = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let key: age::x25519::Identity = line.parse().map_err(|_| {
                    format!("line {}: not an age identity (AGE-SECRET-KEY-1…)", n + 1)
                })?;
                keys.push(Key::X25519(key));
            }
            return Ok(Keys { keys });
        }
        let key = age::ssh::Identity::from_buffer(bytes, None)
            .map_err(|_| "is neither an age identity nor an ssh private key")?;
        match key {
            age::ssh::Identity::Unencrypted(_) => Ok(Keys {
                keys: vec![Key::Ssh(key)],
            }),
            age::ssh::Identity::Encrypted(_) => Err("is an ssh key with a passphrase, which an unattended worker cannot type: use an age identity (age-keygen) or a key without one".into()),
            age::ssh::Identity::Unsupported(_) => {
                Err("is an ssh key of a type age cannot decrypt with: use ssh-ed25519, ssh-rsa or an age identity".into())
            }
        }
    }

    /// Every secret of a task, decrypted; the first one no key here opens says why.
    pub fn open(&self, secrets: &BTreeMap<String, String>) -> Result<Opened, String> {
        let mut values = Vec::with_capacity(secrets.len());
        for (name, armored) in secrets {
            let value = self
                .open_one(armored)
                .map_err(|why| format!("secret {name}: {why}"))?;
            values.push((name.clone(), value));
        }
        Ok(Opened { values })
    }

    fn open_one(&self, armored: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored.as_bytes()))
            .map_err(|e| format!("is not age ciphertext: {e}"))?;
        let identities = self.keys.iter().map(|k| match k {
            Key::X25519(k) => k as &dyn age::Identity,
            Key::Ssh(k) => k as &dyn age::Identity,
        });
        let mut reader = decryptor.decrypt(identities).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                "not encrypted to any key of this node's --identity".to_string()
            }
            other => format!("cannot be decrypted: {other}"),
        })?;
        let mut value = Zeroizing::new(Vec::new());
        (&mut reader)
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut value)
            .map_err(|e| format!("cannot be decrypted: {e}"))?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(format!("is over {MAX_SECRET_BYTES} bytes"));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::parse_recipients;

    fn setup() -> (Keys, Vec<Recipient>) {
        let id = age::x25519::Identity::generate();
        let line = format!("w1 {}\n", id.to_public());
        let keys = Keys::from_bytes(
            format!(
                "# created: now\n{}\n",
                age::secrecy::ExposeSecret::expose_secret(&id.to_string())
            )
            .as_bytes(),
        )
        .unwrap();
        (keys, parse_recipients(&line).unwrap())
    }

    #[test]
    fn round_trip_and_checks() {
        let (keys, recipients) = setup();
        let refs: Vec<&Recipient> = recipients.iter().collect();
        let armored = encrypt(b"s3cret-value", &refs).unwrap();
        assert!(check_ciphertext(&armored).is_ok());
        let secrets = BTreeMap::from([("TOKEN".to_string(), armored.clone())]);
        let opened = keys.open(&secrets).unwrap();
        assert_eq!(opened.iter().next().unwrap().1, b"s3cret-value");
        assert!(!format!("{opened:?}").contains("s3cret"));

        let (other, _) = setup();
        let err = other.open(&secrets).unwrap_err();
        assert!(err.contains("TOKEN") && err.contains("--identity"), "{err}");

        assert!(check_ciphertext("hunter2").unwrap_err().contains("age"));
        // An edited payload still has a header that reads; opening it fails.
        let mut lines: Vec<String> = armored.lines().map(String::from).collect();
        let n = lines.len() - 2;
        lines[n] = lines[n].chars().rev().collect();
        let edited = BTreeMap::from([("TOKEN".to_string(), lines.join("\n"))]);
        assert!(keys.open(&edited).is_err());
    }

    #[test]
    fn identity_files_that_do_not_read_say_so() {
        assert!(Keys::from_bytes(b"garbage").is_err());
        assert!(Keys::from_bytes(b"AGE-SECRET-KEY-1NOPE").is_err());
        assert!(Keys::from_bytes(&[0xff, 0xfe]).is_err());
    }
}

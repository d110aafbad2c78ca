//! The verdict on one task: signed by a key the worker trusts, or why not. Checked in this
//! order, so that the reason names the first thing wrong: no signature; a signature that does
//! not read or is not for tasks; one that does not match the task's fields (it was edited after
//! signing: checked against the key inside the signature, so it is said even for unknown keys);
//! a key not in the allowed signers; a signer not allowed the `dgrid-task` namespace; a signer
//! outside its validity dates.

use super::allowed_signers::AllowedSigners;
use super::canonical::{canonical_bytes, NAMESPACE};
pub use crate::task::SignedBy;
use crate::task::TaskSpec;
use chrono::{DateTime, Utc};
use ssh_key::{Algorithm, EcdsaCurve, HashAlg, PublicKey, SshSig};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Why a task is not trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untrusted {
    Unsigned,
    /// The signature does not read, or is for another namespace or key type.
    Malformed(String),
    /// The signature does not match the task's fields.
    Tampered {
        fingerprint: String,
    },
    UnknownKey {
        fingerprint: String,
        source: String,
    },
    /// The key is listed, but not for the `dgrid-task` namespace.
    Namespace {
        fingerprint: String,
        line: usize,
    },
    /// The key is listed, but not valid now.
    Expired {
        fingerprint: String,
        line: usize,
    },
}

impl Untrusted {
    /// A short name for counts and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Untrusted::Unsigned => "unsigned",
            Untrusted::Malformed(_) => "malformed signature",
            Untrusted::Tampered { .. } => "tampered",
            Untrusted::UnknownKey { .. } => "unknown signer",
            Untrusted::Namespace { .. } => "namespace",
            Untrusted::Expired { .. } => "expired",
        }
    }
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Unsigned => write!(f, "unsigned: the task has no \"signature\""),
            Untrusted::Malformed(why) => write!(f, "malformed signature: {why}"),
            Untrusted::Tampered { fingerprint } => write!(
                f,
                "tampered: the signature by {fingerprint} does not match the task's fields (edited after signing)"
            ),
            Untrusted::UnknownKey {
                fingerprint,
                source,
            } => write!(f, "unknown signer: key {fingerprint} is not in {source}"),
            Untrusted::Namespace { fingerprint, line } => write!(
                f,
                "namespace: key {fingerprint} (line {line}) may not sign in this namespace"
            ),
            Untrusted::Expired { fingerprint, line } => write!(
                f,
                "expired: key {fingerprint} (line {line}) is outside its valid-after/valid-before dates"
            ),
        }
    }
}

/// Verifies `spec`'s signature against `signers` at `now`.
pub fn verify(
    spec: &TaskSpec,
    signers: &AllowedSigners,
    now: DateTime<Utc>,
) -> Result<SignedBy, Untrusted> {
    let Some(armored) = spec.signature.as_deref() else {
        return Err(Untrusted::Unsigned);
    };
    verify_detached(armored, NAMESPACE, &canonical_bytes(spec), signers, now)
}

/// Verifies an armored SSHSIG over `msg` made in `namespace` (`dgrid-task` for tasks, `git`
/// for commits) by a key of `signers` that may sign in that namespace at `now`.
pub fn verify_detached(
    armored: &str,
    namespace: &str,
    msg: &[u8],
    signers: &AllowedSigners,
    now: DateTime<Utc>,
) -> Result<SignedBy, Untrusted> {
    let sig = SshSig::from_pem(armored.trim())
        .map_err(|e| Untrusted::Malformed(format!("not an SSH signature ({e})")))?;
    if sig.namespace() != namespace {
        return Err(Untrusted::Malformed(format!(
            "made for the namespace {:?}, not {namespace:?}",
            sig.namespace()
        )));
    }
    let key = sig.public_key();
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    // The key types this build verifies; another would fail below as if tampered.
    let supported = match key.algorithm() {
        Algorithm::Ed25519 | Algorithm::Rsa { .. } => true,
        Algorithm::Ecdsa { curve } => curve == EcdsaCurve::NistP256,
        _ => false,
    };
    if !supported {
        return Err(Untrusted::Malformed(format!(
            "{} keys are not supported (use ed25519, ecdsa-sha2-nistp256 or rsa)",
            key.algorithm()
        )));
    }
    PublicKey::new(key.clone(), "")
        .verify(namespace, msg, &sig)
        .map_err(|_| Untrusted::Tampered {
            fingerprint: fingerprint.clone(),
        })?;
    let mut last = Untrusted::UnknownKey {
        fingerprint: fingerprint.clone(),
        source: signers.source.clone(),
    };
    for signer in signers.with_key(key) {
        if !signer.permits(namespace) {
            last = Untrusted::Namespace {
                fingerprint: fingerprint.clone(),
                line: signer.line,
            };
            continue;
        }
        let started = signer.valid_after.is_none_or(|t| now >= t);
        let not_ended = signer.valid_before.is_none_or(|t| now < t);
        if !(started && not_ended) {
            last = Untrusted::Expired {
                fingerprint: fingerprint.clone(),
                line: signer.line,
            };
            continue;
        }
        return Ok(SignedBy {
            principal: signer.principals.join(","),
            fingerprint,
        });
    }
    Err(last)
}

/// A verdict and when it was made.
type Cached = (DateTime<Utc>, Result<SignedBy, Untrusted>);

/// Verdicts by the task file's blob id: a worker looks at the same queue on every poll, and a
/// file's bytes (so its verdict) never change under one id. Entries are kept for a while only,
/// so that validity dates are looked at again, and dropped when the signers change.
pub struct VerdictCache {
    keep: Duration,
    entries: Mutex<HashMap<gix::ObjectId, Cached>>,
}

impl VerdictCache {
    pub fn new(keep: Duration) -> VerdictCache {
        VerdictCache {
            keep,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cached verdict on `blob`, or `compute`'s (then cached).
    pub fn get_or(
        &self,
        blob: gix::ObjectId,
        now: DateTime<Utc>,
        compute: impl FnOnce() -> Result<SignedBy, Untrusted>,
    ) -> Result<SignedBy, Untrusted> {
        let keep = chrono::Duration::from_std(self.keep).unwrap_or(chrono::Duration::MAX);
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, verdict)) = entries.get(&blob) {
                if now - *at < keep {
                    return verdict.clone();
                }
            }
        }
        let verdict = compute();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a queue of many versions is forgotten at once rather than grown without end.
        if entries.len() > 200_000 {
            entries.clear();
        }
        entries.insert(blob, (now, verdict.clone()));
        verdict
    }

    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::{Ed25519Keypair, PrivateKey};
    use ssh_key::LineEnding;

    fn key(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn task(command: &str) -> TaskSpec {
        let json = format!(
            r#"{{"id":"a","image":"alpine:3","command":{command:?},"timeout":5,"created_at":"2026-01-01T00:00:00Z","submitted_by":"alice"}}"#
        );
        crate::trust::test_spec(&json)
    }

    fn signed(spec: &TaskSpec, by: &PrivateKey, namespace: &str) -> TaskSpec {
        let sig = SshSig::sign(by, namespace, HashAlg::Sha512, &canonical_bytes(spec)).unwrap();
        let mut out = spec.clone();
        out.signature = Some(sig.to_pem(LineEnding::LF).unwrap());
        out
    }

    fn signers(lines: &str) -> AllowedSigners {
        AllowedSigners::parse("allowed_signers", lines).unwrap()
    }

    fn line(principal: &str, options: &str, k: &PrivateKey) -> String {
        format!(
            "{principal} {options} {}\n",
            k.public_key().to_openssh().unwrap()
        )
    }

    #[test]
    fn a_listed_key_verifies_and_says_who() {
        let alice = key(1);
        let list = signers(&line("alice@example.com", "", &alice));
        let by = verify(&signed(&task("echo"), &alice, NAMESPACE), &list, Utc::now()).unwrap();
        assert_eq!(by.principal, "alice@example.com");
        assert_eq!(
            by.fingerprint,
            alice.public_key().fingerprint(HashAlg::Sha256).to_string()
        );
        assert!(by.fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn each_reason_in_turn() {
        let (alice, mallory) = (key(1), key(2));
        let list = signers(&line("alice", "", &alice));
        let now = Utc::now();
        let kind =
            |spec: &TaskSpec, list: &AllowedSigners| verify(spec, list, now).unwrap_err().kind();
        assert_eq!(kind(&task("echo"), &list), "unsigned");
        assert_eq!(
            kind(&signed(&task("echo"), &mallory, NAMESPACE), &list),
            "unknown signer"
        );
        let mut edited = signed(&task("echo"), &alice, NAMESPACE);
        edited.command = crate::task::TaskCommand::Shell("rm -rf /".into());
        assert_eq!(kind(&edited, &list), "tampered");
        // A mallory-signed task edited afterwards is said to be tampered, before unknown.
        let mut both = signed(&task("echo"), &mallory, NAMESPACE);
        both.timeout = 6;
        assert_eq!(kind(&both, &list), "tampered");
        assert_eq!(
            kind(&signed(&task("echo"), &alice, "git"), &list),
            "malformed signature"
        );
        let mut garbage = task("echo");
        garbage.signature =
            Some("-----BEGIN SSH SIGNATURE-----\nAA==\n-----END SSH SIGNATURE-----".into());
        assert_eq!(kind(&garbage, &list), "malformed signature");
        let git_only = signers(&line("alice", "namespaces=\"git\"", &alice));
        assert_eq!(
            kind(&signed(&task("echo"), &alice, NAMESPACE), &git_only),
            "namespace"
        );
        let expired = signers(&line("alice", "valid-before=\"20200101Z\"", &alice));
        assert_eq!(
            kind(&signed(&task("echo"), &alice, NAMESPACE), &expired),
            "expired"
        );
        let future = signers(&line("alice", "valid-after=\"29990101Z\"", &alice));
        assert_eq!(
            kind(&signed(&task("echo"), &alice, NAMESPACE), &future),
            "expired"
        );
        // Another line for the same key that does permit it wins.
        let two = signers(&format!(
            "{}{}",
            line("alice", "namespaces=\"git\"", &alice),
            line("alice2", "namespaces=\"dgrid-*\"", &alice)
        ));
        let by = verify(&signed(&task("echo"), &alice, NAMESPACE), &two, now).unwrap();
        assert_eq!(by.principal, "alice2");
    }

    #[test]
    fn worker_fields_keep_the_signature_valid() {
        let alice = key(1);
        let list = signers(&line("alice", "", &alice));
        let mut claimed = signed(&task("echo"), &alice, NAMESPACE);
        claimed.attempts = Some(2);
        claimed.claim = Some(crate::task::Claim {
            node_id: "n".into(),
            claimed_at: "2026-01-01T00:00:00Z".into(),
            lease_expires_at: "2026-01-01T00:01:00Z".into(),
            attempt: crate::task::Attempt::FIRST,
        });
        // Rewritten as the grid does, then read back.
        let back = crate::trust::test_spec(&String::from_utf8(claimed.to_json()).unwrap());
        assert!(verify(&back, &list, Utc::now()).is_ok());
    }

    #[test]
    fn the_cache_answers_by_blob_until_it_expires() {
        let cache = VerdictCache::new(Duration::from_secs(60));
        let blob = gix::ObjectId::null(gix::hash::Kind::Sha1);
        let now = Utc::now();
        let mut calls = 0;
        for _ in 0..3 {
            let _ = cache.get_or(blob, now, || {
                calls += 1;
                Err(Untrusted::Unsigned)
            });
        }
        assert_eq!(calls, 1);
        let later = now + chrono::Duration::seconds(61);
        let _ = cache.get_or(blob, later, || {
            calls += 1;
            Err(Untrusted::Unsigned)
        });
        assert_eq!(calls, 2);
    }
}

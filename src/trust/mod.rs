//! Signed tasks (docs/ARCHITECTURE.md#signed-tasks): the canonical bytes a submitter signs, the
//! allowed-signers file a worker trusts, and the verdict on one task. Pure: no git, no grid, no
//! process; `ssh-keygen` signs (in `cli::sign`), the `ssh-key` crate verifies here.

pub mod allowed_signers;
pub mod canonical;
pub mod verify;

pub use allowed_signers::AllowedSigners;
pub use canonical::{canonical_bytes, NAMESPACE, SIGNED_FIELDS, WORKER_FIELDS};
pub use verify::{verify, verify_detached, SignedBy, Untrusted, VerdictCache};

/// The task in `json` (a whole task file), for the tests here.
#[cfg(test)]
fn test_spec(json: &str) -> crate::task::TaskSpec {
    let (limits, origin) = (
        crate::task::Limits::default(),
        crate::task::Origin::Required,
    );
    crate::task::parse_task("t.json", json.as_bytes(), &limits, origin).unwrap()
}

//! A node's policy over queued tasks: the operator's admission gate (`admission`), whose
//! signatures it trusts (`signers`, `signer_chain`), and which keys tasks' secrets are encrypted
//! to (`recipients_chain`). See `docs/ARCHITECTURE.md#the-worker`, `#signed-tasks` and `#secrets`.

pub(super) mod admission;
pub(super) mod recipients_chain;
pub(super) mod signer_chain;
pub(super) mod signers;

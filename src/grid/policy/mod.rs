//! A node's policy over queued tasks: the operator's admission gate (`admission`) and whose
//! signatures it trusts (`signers`). See `docs/ARCHITECTURE.md#the-worker` and `#signed-tasks`.

pub(super) mod admission;
pub(super) mod signer_chain;
pub(super) mod signers;

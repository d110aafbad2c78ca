//! Replicated tasks in the grid (`"replicas": N`, `docs/ARCHITECTURE.md#quorum`): the transitions
//! over one in-progress file (`quorum`), their upkeep (`quorum_upkeep`) and adaptive replication
//! (`quorum_adaptive`). The pure rules (digests, commitments, verdicts) are `crate::quorum`.

pub(super) mod quorum;
pub(super) mod quorum_adaptive;
pub(super) mod quorum_upkeep;

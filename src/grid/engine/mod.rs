//! The compare-and-swap engine: where the grid is (`Grid`), talking to the remote (`sync`,
//! `atomic_push`, `rate_limit`) and the loop that lands a planned change (`transact`). It knows
//! no plan: a plan is a closure over a snapshot (`docs/ARCHITECTURE.md#compare-and-swap`).

pub(super) mod atomic_push;
pub(super) mod grid;
pub(super) mod rate_limit;
pub(super) mod sync;
pub(super) mod transact;

//! The plans: pure functions from a snapshot and an intent to a change (submit, claim, cancel and
//! retry, the worker's transition `cycle` and what it is made of: taking claims back, start
//! failures, node ownership, how a result lands). The small rules they share are in `rules`.

pub(super) mod claim;
pub(super) mod cycle;
mod cycle_kind;
mod cycle_pass;
pub(super) mod manage;
pub(super) mod ownership;
pub(super) mod record;
pub(super) mod start_failure;
pub(super) mod submit;

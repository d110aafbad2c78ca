//! The grid's history: moving older results to `dgrid-archive` (`archive` plans and reads it,
//! `archive_run` lands it) and giving `main` a fresh root (`compact`).
//! See `docs/ARCHITECTURE.md#archive` and `#compaction`.

pub(super) mod archive;
pub(super) mod archive_gate;
pub(super) mod archive_run;
pub(super) mod compact;

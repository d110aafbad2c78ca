//! The small rules every plan shares, and replicated tasks too: how many attempts a task gets by
//! default, what a task put back in the queue looks like, the result of a task whose node was
//! lost. A plan or a replicated transition names them here, never in `cycle`, so that nothing
//! points back at the worker's transition.
//!
//! For now they are defined in `cycle.rs` and only named here: the rewrite of the transition's
//! pipeline moves their definitions into this file.

pub(crate) use crate::grid::plan::cycle::{lost_result, requeued, DEFAULT_MAX_ATTEMPTS};

//! The grid on git: a snapshot of the state at a commit (read), transitions that turn a snapshot and
//! an intent into a commit (write), and the compare-and-swap push loop that lands them (sync).

pub mod claim;
pub mod cycle;
pub mod location;
pub mod manage;
pub mod ownership;
pub mod reap;
pub mod snapshot;
pub mod submit;
pub mod sync;
pub mod transact;

pub use location::Grid;
pub use snapshot::Snapshot;
pub use transact::{Change, Outcome};

//! Looking at the grid: a status model read from a snapshot, drawn as a terminal table, as JSON, or
//! as a static HTML page with charts from the history of `main`. Everything here only reads.

pub mod history;
pub mod html;
mod light;
pub mod model;
mod queue;
pub mod table;

pub use model::StatusModel;

//! Reading the grid: the state at one commit (`snapshot`), who added a task file (`added`), the
//! files `validate` judges (`inspect`) and who wrote the commits on `main` (`writers`). Uses no
//! other room of the grid.

pub(super) mod added;
pub(super) mod inspect;
pub(super) mod snapshot;
mod task_ref;
pub(super) mod writers;

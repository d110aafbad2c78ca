//! Where a task's file is in a snapshot: the handle every reader passes around. A file of its own
//! so that who added a file (`added`) and the snapshot that asks it need not name each other.

use crate::layout::State;
use gix::ObjectId;

#[derive(Debug, Clone)]
pub struct TaskRef {
    pub id: String,
    pub state: State,
    /// Where the file is (sharded or flat).
    pub path: String,
    pub blob: ObjectId,
    /// The commit the snapshot was read at: where to look for the commit that added the file.
    pub commit: ObjectId,
}

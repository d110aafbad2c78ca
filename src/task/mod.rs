//! The task contract: task specs and results, their JSON form and every validation rule.
//! Pure code: bytes in, a model or a list of problems out. No I/O, no git.
//!
//! - `model`: the data types, in the form they are written to the grid;
//! - `ids`: the task id and the attempt, checked once where parsed;
//! - `rules`: the single-value rules (id, image reference, label, env name, memory);
//! - `parse`: the whole-file parsers for task and result files;
//! - `replicated`: the fields of replicated tasks (`replicas`, `instances`, a result's `quorum`);
//! - `secret_fields`: `secrets` (age ciphertext only) and `secrets_env`; credentials in `env`;
//! - `order`: the order claims take queued tasks in (the dashboard shows the queue in it);
//! - `cut`: cutting long output to its head and tail with a marker (capture and `fit` share it);
//! - `output`: fitting a result's kept output into the file size limit.

pub(crate) mod cut;
mod ids;
mod model;
mod order;
mod output;
mod parse;
mod parse_result;
mod replicated;
mod rules;
mod secret_fields;

pub use crate::fields::MAX_FILE_BYTES;
pub use cut::{cut_marker, head_and_tail, text_head_and_tail};
pub use ids::{Attempt, TaskId};
pub use model::{
    AddedBy, Claim, Instance, LateResult, Limits, Network, Origin, QuorumOutcome, Replicas,
    Resources, SignedBy, StartFailure, Status, StreamInfo, TaskCommand, TaskResult, TaskSpec, Vote,
    DEFAULT_MAX_TIMEOUT,
};
pub use order::{claim_order, created_seconds};
pub use parse::{invalid_everywhere, parse_task, task_from_object};
pub use parse_result::parse_result;
pub use replicated::{task_warnings, ADAPTIVE_REPLICAS, MAX_INSTANCES, MAX_REPLICAS};
pub use rules::{
    check_env_name, check_id, check_image, check_label, check_memory, memory_bytes,
    MAX_COMMAND_BYTES, MAX_ID_LEN, MAX_SHORT_TEXT, MIN_CPUS, MIN_MEMORY_BYTES,
};

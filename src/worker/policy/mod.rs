//! The worker's pure policies, decided over its own clocks and counts with no git and no docker:
//! when it may push under the grid's push budget (`pacing`), how many tasks to claim and when the
//! work is done (`budget`, with the hourly window of `hourly`), when another node's claim may be
//! taken back (`observe`), and the clocks they go by (`clock`).

mod budget;
pub(super) mod clock;
mod hourly;
mod observe;
mod pacing;

pub(super) use budget::Budget;
pub(super) use observe::Observer;
pub(super) use pacing::{tail_split, Pacing};

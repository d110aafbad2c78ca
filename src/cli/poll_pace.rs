//! How often `submit --wait` and `status --watch` ask the remote: reads count against the remote's
//! budget too (GitHub: about 15 a second per repository, shared by every worker), so a follower
//! asks with `ls-remote` (a round trip, no objects), fetches only when the tip moved, and asks less
//! often while nothing changes.

use crate::grid::{Grid, RateLimited, RemoteTip};
use anyhow::Result;
use gix::ObjectId;
use std::time::Duration;

/// Never ask faster than this, whatever was asked for.
pub const FLOOR: Duration = Duration::from_secs(1);
/// While nothing changes the wait doubles up to this many times the one asked for...
const GROWTH: u32 = 8;
/// ...but not beyond a minute (unless more than a minute was asked for).
const CEILING: Duration = Duration::from_secs(60);

/// The wait between two looks at the remote.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    base: Duration,
    cap: Duration,
    current: Duration,
}

impl Pace {
    /// Starting at `asked` (at least [`FLOOR`]).
    pub fn new(asked: Duration) -> Pace {
        let base = asked.max(FLOOR);
        let cap = base.max((base * GROWTH).min(CEILING));
        Pace {
            base,
            cap,
            current: base,
        }
    }

    /// The wait before the next look.
    pub fn wait(&self) -> Duration {
        self.current
    }

    /// The last look saw a change (back to the wait asked for) or nothing new (twice as long, up
    /// to the cap).
    pub fn saw(&mut self, changed: bool) {
        self.current = if changed {
            self.base
        } else {
            (self.current * 2).min(self.cap)
        };
    }
}

/// What a look at the remote found.
#[derive(Debug, PartialEq, Eq)]
pub enum Look {
    /// The tip moved, and was fetched.
    Moved(Option<ObjectId>),
    /// The tip is where it was: nothing fetched.
    Same,
    /// The remote asks us to slow down (a rate limit): nothing fetched.
    Limited,
}

/// Asks the remote where `main` is and fetches only if it is not at `known` (`None`: never
/// fetched yet). An unreachable remote is fetched all the same: the fetch retries, and its error
/// says what is wrong.
pub fn look(grid: &Grid, known: Option<Option<ObjectId>>) -> Result<Look> {
    let remote = match grid.remote_tip() {
        Ok(RemoteTip::At(tip)) => Some(tip),
        Ok(RemoteTip::Unreachable(_)) => None,
        Err(e) if e.is::<RateLimited>() => return Ok(Look::Limited),
        Err(e) => return Err(e),
    };
    if remote.is_some() && remote == known {
        return Ok(Look::Same);
    }
    match grid.fetch() {
        // Asked for by an unreachable `ls-remote`: the fetch found the tip where it was.
        Ok(tip) if Some(tip) == known => Ok(Look::Same),
        Ok(tip) => Ok(Look::Moved(tip)),
        Err(e) if e.is::<RateLimited>() => Ok(Look::Limited),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_while_nothing_changes_and_resets_on_a_change() {
        let s = Duration::from_secs;
        let mut pace = Pace::new(s(2));
        assert_eq!(pace.wait(), s(2));
        let waits: Vec<_> = (0..6)
            .map(|_| {
                pace.saw(false);
                pace.wait()
            })
            .collect();
        assert_eq!(waits, [s(4), s(8), s(16), s(16), s(16), s(16)]);
        pace.saw(true);
        assert_eq!(pace.wait(), s(2));
    }

    #[test]
    fn never_faster_than_a_second_and_never_slower_than_a_minute_unless_asked() {
        let s = Duration::from_secs;
        let mut fast = Pace::new(Duration::ZERO);
        assert_eq!(fast.wait(), FLOOR);
        for _ in 0..10 {
            fast.saw(false);
        }
        assert_eq!(fast.wait(), s(8));
        let mut slow = Pace::new(s(30));
        for _ in 0..10 {
            slow.saw(false);
        }
        assert_eq!(slow.wait(), s(60));
        let mut asked = Pace::new(s(120));
        asked.saw(false);
        assert_eq!(asked.wait(), s(120));
    }
}

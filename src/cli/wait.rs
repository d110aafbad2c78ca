//! Following tasks until they finish (`submit --wait`), with a progress bar on a terminal and a
//! plain line per change in a pipe.

use super::poll_pace::{self, Look, Pace};
use crate::exit::No;
use crate::grid::{Grid, Snapshot};
use crate::layout::State;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
struct Counts {
    queued: usize,
    running: usize,
    completed: usize,
    failed: usize,
}

fn count(snapshot: &Snapshot, ids: &[String]) -> Counts {
    let mut c = Counts::default();
    for id in ids {
        match snapshot.get(id).map(|t| t.state) {
            Some(State::Queue) | None => c.queued += 1,
            Some(State::InProgress) => c.running += 1,
            Some(State::Completed) => c.completed += 1,
            Some(State::Failed) => c.failed += 1,
        }
    }
    c
}

/// Polls (at the pace of [`Pace`], starting at `interval`) until every task is completed or
/// failed. Exit 0 if all succeeded, a clean "no" (exit 1) otherwise: the last line shown says how
/// many failed.
pub fn follow(grid: &Grid, ids: &[String], interval: Duration) -> Result<()> {
    let total = ids.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Some(bar)
    } else {
        None
    };
    let mut last = None;
    // `ls-remote` first, a fetch only when the tip moved, less often while nothing changes.
    let mut pace = Pace::new(interval);
    let mut known: Option<Option<gix::ObjectId>> = None;
    loop {
        let look = poll_pace::look(grid, known)?;
        let moved = matches!(look, Look::Moved(_));
        if let Look::Moved(tip) = look {
            known = Some(tip);
        }
        pace.saw(moved);
        let c = match (last, moved) {
            (Some(c), false) => c,
            // The first look, or a new tip. A first look that was rate limited counts what the
            // submit's own push left in the tracking ref.
            _ => {
                let tip = match known {
                    Some(tip) => tip,
                    None => grid.tip()?,
                };
                count(&Snapshot::read(&grid.repo, tip)?, ids)
            }
        };
        let line = format!(
            "queued {}, running {}, completed {}, failed {}",
            c.queued, c.running, c.completed, c.failed
        );
        match &bar {
            Some(bar) => {
                bar.set_position((c.completed + c.failed) as u64);
                bar.set_message(line.clone());
            }
            None if last != Some(c) => eprintln!("{line}"),
            None => {}
        }
        last = Some(c);
        if c.completed + c.failed == ids.len() {
            if let Some(bar) = bar {
                bar.finish_with_message(line);
            }
            return match c.failed {
                0 => Ok(()),
                _ => Err(No::said().into()),
            };
        }
        std::thread::sleep(pace.wait());
    }
}

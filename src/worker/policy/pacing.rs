//! Pacing: when this worker may push so that all writers of the grid *together* stay within the
//! push budget (`--push-budget`, pushes per minute; `docs/ARCHITECTURE.md#push-economy`).
//!
//! Workers share nothing but the repository, so each learns what it needs from what it sees land
//! on `main`: every new commit, stamped with the instant *this process* saw it (its own monotonic
//! clock, at fetch time; never another machine's commit date), and its writer (the node named by
//! the commit's author). From that it knows the grid's recent push rate and how many writers are
//! active, and it spaces its own pushes by about `writers × 60 s / budget`, with jitter:
//!
//! - spacing: at most one push of its own per spacing;
//! - window: never a push while the last 60 s (as seen here) already hold a budget's worth;
//! - slowdown: a 60-s window that ran over, or a remote that said "rate limited", makes the
//!   spacing grow (×1.5 each time, up to ~5×); calm windows bring it back;
//! - a newcomer to a busy grid waits about one spacing before its first push, and one to a grid
//!   that looks quiet a random part of a spacing (others may be joining at the same instant).
//!
//! What a pusher can do to this: writers are counted only from nodes'
//! own transitions (`grid::writers`), at most one per push of the budget ([`Pacing::active_writers`]),
//! so made-up node ids cannot stretch the spacing without bound; and pushes that are not workers'
//! transitions fill at most half the window ([`foreign_cap`]), so commits pushed just over the
//! budget cannot hold the workers at zero: together they keep at least half the budget.
//!
//! Pushes seen late are stamped late, which only makes the window look fuller: the error is on the
//! safe side. The cases that cannot wait (a lease about to run out, a cancel, a shutdown) are the
//! worker's to decide; they push at once and count here like any other push.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// A writer not seen pushing for this long (or a few of its spacings, if longer) is not active.
const MIN_ACTIVE_FOR: Duration = Duration::from_secs(120);
const MAX_SLOWDOWN: i32 = 4;
/// How long the window must stay within the budget before the slowdown eases by one step.
const CALM_FOR: Duration = Duration::from_secs(120);

/// How many pushes in a window that are not workers' transitions count against the budget: half
/// of it (rounded down) at most, the rest is the workers' share whatever else lands on `main`.
pub fn foreign_cap(per_minute: u32) -> usize {
    per_minute as usize / 2
}

pub struct Pacing {
    per_minute: u32,
    /// Accepted pushes seen in the last window (ours and others'), oldest first, each marked
    /// `true` when it was not a worker's transition (a person's, or a commit posing as a node).
    seen: VecDeque<(Instant, bool)>,
    /// Whether the log was told that commits not workers' fill the window (once per spell).
    said_foreign: bool,
    /// Other writers (node ids) and when this process last saw each push.
    writers: HashMap<String, Instant>,
    /// This process's last push, and the jitter drawn for the spacing after it: the next push
    /// may go a spacing later, by the writers known *then* (one learnt of later still counts).
    last_own: Option<(Instant, f64)>,
    /// No push before this (a newcomer's turn, a rate-limit answer).
    hold_until: Option<Instant>,
    slowdown: i32,
    /// The last window that ran over, or the last rate-limit answer.
    last_trouble: Option<Instant>,
    /// A moving average of how long this worker's tasks take.
    task_duration: Option<Duration>,
    rng: fastrand::Rng,
}

impl Pacing {
    /// `None` for no budget (0): pushes are never held back.
    pub fn new(per_minute: u32, seed: u64) -> Option<Pacing> {
        (per_minute > 0).then(|| Pacing {
            per_minute,
            seen: VecDeque::new(),
            said_foreign: false,
            writers: HashMap::new(),
            last_own: None,
            hold_until: None,
            slowdown: 0,
            last_trouble: None,
            task_duration: None,
            rng: fastrand::Rng::with_seed(seed),
        })
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// At start: `others` are the nodes that wrote the grid's latest commits and have not stopped.
    /// They count as active now, and if there are any this worker waits its turn, half to one
    /// spacing, before its first push (registering is a push too).
    ///
    /// A grid that looks quiet may not be: workers started at the same instant (a fleet brought
    /// up together, a cron minute) cannot see each other yet. So even then the first push waits a
    /// random part of a lone writer's spacing: the joiners look at the remote one after the other,
    /// each sees the registrations that landed before its turn, and the window rule holds the rest
    /// back. Only racers that look within the same instant still both push.
    pub fn joined(&mut self, at: Instant, others: &[String]) {
        for writer in others {
            self.writers.insert(writer.clone(), at);
        }
        let share = if others.is_empty() {
            self.rng.f64()
        } else {
            0.5 + self.rng.f64() * 0.5
        };
        let wait = self.spacing(at).mul_f64(share);
        self.hold(at + wait);
    }

    /// Another writer's accepted push, seen now. `writer` is a node id, or `None` for a person
    /// (submit, cancel): their pushes fill the window, but they do not pace themselves.
    pub fn saw_push(&mut self, at: Instant, writer: Option<&str>) {
        self.note(at, writer.is_none());
        if let Some(writer) = writer {
            self.writers.insert(writer.to_string(), at);
        }
    }

    /// A writer's node record says it stopped: it pushes no more.
    pub fn writer_left(&mut self, writer: &str) {
        self.writers.remove(writer);
    }

    /// This worker's push was accepted now.
    pub fn pushed(&mut self, at: Instant) {
        self.note(at, false);
        // Jitter upwards only: two writers started together drift apart, and the spacing is
        // never shorter than the budget allows.
        self.last_own = Some((at, 1.0 + self.rng.f64() * 0.25));
    }

    fn hold(&mut self, until: Instant) {
        self.hold_until = Some(self.hold_until.map_or(until, |h| h.max(until)));
    }

    /// The remote answered a push with a rate-limit error: slow down further, and wait at least
    /// a spacing before trying again. (The hook for the push classification to call.)
    pub fn rate_limited(&mut self, at: Instant) {
        self.slow_down(at);
        let wait = self.spacing(at).mul_f64(1.0 + self.rng.f64() * 0.25);
        self.hold(at + wait);
    }

    /// A task of this worker ran for `took`.
    pub fn task_took(&mut self, took: Duration) {
        self.task_duration = Some(match self.task_duration {
            None => took,
            Some(avg) => avg.mul_f64(0.7) + took.mul_f64(0.3),
        });
    }

    /// Writers pushing to the grid now, this one included, at most one per push of the budget:
    /// a writer is a node seen landing its own transitions, which anyone who may push can fake
    /// under made-up ids, so the spacing never stretches past a minute (before slowdown) on
    /// writers alone; beyond that many real writers the window rule shares the budget.
    pub fn active_writers(&self, at: Instant) -> usize {
        let cap = (self.per_minute as usize).max(1);
        let everyone = (1 + self.writers.len()).min(cap) as u32;
        let active_for = MIN_ACTIVE_FOR.max(self.base_spacing(everyone).mul_f64(2.5));
        let active = 1 + self
            .writers
            .values()
            .filter(|seen| at.saturating_duration_since(**seen) <= active_for)
            .count();
        active.min(cap)
    }

    /// The pushes counted against the budget in the window before `at`: every worker's
    /// transition (ours too), and the others up to [`foreign_cap`].
    fn counted(&self, at: Instant) -> usize {
        let (mut workers, mut foreign) = (0, 0);
        for (t, is_foreign) in &self.seen {
            if at.saturating_duration_since(*t) < WINDOW && *t <= at {
                if *is_foreign {
                    foreign += 1;
                } else {
                    workers += 1;
                }
            }
        }
        workers + foreign.min(foreign_cap(self.per_minute))
    }

    /// Pushes in the window before `at` that were not workers' transitions.
    pub fn foreign(&self, at: Instant) -> usize {
        self.seen
            .iter()
            .filter(|(t, f)| *f && at.saturating_duration_since(*t) < WINDOW)
            .count()
    }

    /// The line to say, once per spell, when commits that are not workers' transitions fill
    /// their part of the window: they eat the push budget, and the workers keep the rest.
    pub fn foreign_notice(&mut self, at: Instant) -> Option<String> {
        let foreign = self.foreign(at);
        let cap = foreign_cap(self.per_minute);
        if foreign < cap.max(1) {
            self.said_foreign = false;
            return None;
        }
        if std::mem::replace(&mut self.said_foreign, true) {
            return None;
        }
        Some(format!(
            "{foreign} of the pushes on main in the last minute are not workers' transitions (people's, or commits posing as nodes): they eat the push budget of {}/min; workers keep at least {} of it",
            self.per_minute,
            self.per_minute as usize - cap
        ))
    }

    /// The time between two pushes of this worker: its share of the budget, slowed down after
    /// trouble.
    pub fn spacing(&self, at: Instant) -> Duration {
        let writers = self.active_writers(at) as u32;
        self.base_spacing(writers)
            .mul_f64(1.5f64.powi(self.effective_slowdown(at)))
    }

    /// The spacing with one writer and no slowdown: the shortest there is.
    pub fn shortest_spacing(&self) -> Duration {
        self.base_spacing(1)
    }

    fn base_spacing(&self, writers: u32) -> Duration {
        (WINDOW * writers) / self.per_minute
    }

    /// The earliest instant this worker may push (`at` or later).
    pub fn earliest_push(&self, at: Instant) -> Instant {
        let own = match self.last_own {
            Some((last, jitter)) => last + self.spacing(at).mul_f64(jitter),
            None => at,
        }
        .max(self.hold_until.unwrap_or(at))
        .max(at);
        // The window: with a budget's worth counted in the last 60 s, wait until enough of them
        // age out that this push makes at most a budget's worth.
        let budget = self.per_minute as usize;
        let mut window = at;
        if self.counted(at) >= budget {
            let mut ends: Vec<Instant> = self.seen.iter().map(|(t, _)| *t + WINDOW).collect();
            ends.sort();
            window = ends
                .into_iter()
                .filter(|end| *end > at)
                .find(|end| self.counted(*end) < budget)
                .unwrap_or(at + WINDOW);
        }
        own.max(window)
    }

    pub fn may_push(&self, at: Instant) -> bool {
        self.earliest_push(at) <= at
    }

    /// How many tasks to hold beyond the slots so that `slots` stay busy until the next push
    /// this worker may make, by the durations it has seen; one per slot until it has seen one
    /// (a task of an hour is not hoarded many times over on a guess).
    pub fn ahead(&self, slots: usize, at: Instant) -> usize {
        let Some(took) = self.task_duration else {
            return slots;
        };
        let until_next = self.spacing(at).mul_f64(1.125).as_secs_f64(); // the jitter's mean
        let per_slot = until_next / took.as_secs_f64().max(0.05);
        (per_slot * slots as f64).ceil() as usize
    }

    fn note(&mut self, at: Instant, foreign: bool) {
        while self
            .seen
            .front()
            .is_some_and(|(t, _)| at.saturating_duration_since(*t) >= WINDOW)
        {
            self.seen.pop_front();
        }
        self.seen.push_back((at, foreign));
        // Commits that are not workers' beyond their part do not slow the workers down: that
        // would hand them the rest of the budget too.
        if self.counted(at) > self.per_minute as usize
            && self
                .last_trouble
                .is_none_or(|t| at.saturating_duration_since(t) >= WINDOW)
        {
            // The grid went over its budget in a window (seen here): slow down, once per window.
            self.slow_down(at);
        }
    }

    fn slow_down(&mut self, at: Instant) {
        self.slowdown = (self.effective_slowdown(at) + 1).min(MAX_SLOWDOWN);
        self.last_trouble = Some(at);
    }

    /// The slowdown, eased by one step per calm period since the last trouble.
    fn effective_slowdown(&self, at: Instant) -> i32 {
        let calm = self.last_trouble.map_or(0, |t| {
            (at.saturating_duration_since(t).as_secs() / CALM_FOR.as_secs()) as i32
        });
        (self.slowdown - calm).max(0)
    }
}

/// The tail split: one push claims no more than this worker's share of the work left, `ceil((queued +
/// in progress) / writers)` minus what it already holds (`queued`: the tasks it may claim;
/// `in_progress`: every claimed task on the grid, its own `held` among them), and never fewer than
/// its free slots, so that near the end of the queue no worker sits on a backlog while others have
/// nothing. Counting what the others hold makes the writers that claim one after the other end up
/// with even shares, where `ceil(queued / writers)` would give each next one less. Returns how many
/// to claim.
pub fn tail_split(
    free: usize,
    ahead: usize,
    queued: usize,
    in_progress: usize,
    held: usize,
    writers: usize,
) -> usize {
    let share = (queued + in_progress.max(held))
        .div_ceil(writers.max(1))
        .saturating_sub(held);
    (free + ahead).min(share.max(free))
}

#[cfg(test)]
#[path = "pacing_tests.rs"]
mod tests;

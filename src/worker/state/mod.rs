//! The worker's state dir (the node's folder in it): the lock and the sessions noted there
//! (`session`), the results spooled until the grid has them (`spool`), the claims made ahead and
//! never started (`never_started`), and the key of this node's commitments to replicated tasks'
//! results (`reveal_key`), the task starts of the last hour (`hourly_note`). Everything this process keeps across a crash is here.

mod hourly_note;
mod never_started;
mod reveal_key;
mod session;
mod spool;

use crate::grid::{Grid, Ownership};
use crate::node::NodeRecord;
use crate::task::{Attempt, Limits, TaskResult, TaskSpec};
use crate::worker::Config;
use anyhow::Result;
use chrono::{DateTime, Utc};
use hourly_note::HourlyNote;
use never_started::NeverStarted;
use session::NodeSession;
use spool::Spool;
use std::collections::HashSet;
use std::time::Duration;

pub(super) struct StateDir {
    session: NodeSession,
    spool: Spool,
    never_started: NeverStarted,
    /// The `--max-tasks-per-hour` window's starts, across processes.
    hourly: HourlyNote,
    /// The secret of this node's commitments to replicated tasks' results (`reveal_key.rs`).
    reveal_key: Vec<u8>,
}

impl StateDir {
    /// Locks the node's folder of `cfg` and notes a new session drawn from `rng`; opens the spool,
    /// reads the note of claims never started, and loads (or makes) the reveal key.
    pub(super) fn open(cfg: &Config, rng: &mut fastrand::Rng) -> Result<StateDir> {
        let silence = cfg.lease + cfg.clock_skew;
        let session = NodeSession::open(&cfg.node_dir, &cfg.node_id, silence, rng)?;
        Ok(StateDir {
            session,
            spool: Spool::open(&cfg.node_dir.join("spool"))?,
            never_started: NeverStarted::open(&cfg.node_dir),
            hourly: HourlyNote::open(&cfg.node_dir),
            reveal_key: reveal_key::load_or_create(&cfg.node_dir)?,
        })
    }

    /// The record this process starts with (see [`NodeSession::fresh_record`]).
    pub(super) fn fresh_record(&self, cfg: &Config, now: DateTime<Utc>) -> NodeRecord {
        self.session.fresh_record(cfg, now)
    }

    /// Checks that no other live worker uses the node id (see [`NodeSession::take_up`]).
    pub(super) fn take_up(
        &mut self,
        grid: &Grid,
        node: &mut NodeRecord,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.session.take_up(grid, node, now)
    }

    /// This process's claim to the node id, for the transition.
    pub(super) fn ownership(&self) -> &Ownership {
        &self.session.ownership
    }

    /// A transition is about to be written, `since_last_write` after this process's last push.
    pub(super) fn writing(&mut self, since_last_write: Option<Duration>) {
        self.session.ownership.since_last_write = since_last_write;
    }

    /// A push of this process landed: the node id is ours, and the previous run's claims are
    /// settled.
    pub(super) fn wrote(&mut self) {
        self.session.ownership.started = true;
    }

    pub(super) fn reveal_key(&self) -> &[u8] {
        &self.reveal_key
    }

    /// The results spooled before a restart, still to be recorded.
    pub(super) fn spooled(&self, limits: &Limits) -> Result<Vec<TaskResult>> {
        self.spool.load(limits)
    }

    /// Spools a result, flushed to disk, before it is pushed.
    pub(super) fn spool(&self, result: &TaskResult) -> Result<()> {
        self.spool.write(result)
    }

    /// The grid has the result (or it has nowhere to go): out of the spool.
    pub(super) fn unspool(&self, id: &str, attempt: Attempt) {
        self.spool.remove(id, attempt);
    }

    /// (id, attempt, `claimed_at`) of every claim noted as never started, for the transition.
    pub(super) fn never_started(&self) -> HashSet<(String, Attempt, String)> {
        self.never_started.claims()
    }

    /// Notes the tasks waiting for a slot as never started; once this process has pushed, the
    /// previous run's claims are settled and leave the note.
    pub(super) fn note_never_started(&mut self, waiting: Vec<&TaskSpec>) -> Result<()> {
        if self.session.ownership.started {
            let keys: HashSet<(String, Attempt)> = waiting
                .iter()
                .filter_map(|s| s.claim.as_ref().map(|c| (s.id.to_string(), c.attempt)))
                .collect();
            self.never_started.keep_only(&keys)?;
        }
        self.never_started.add(waiting)
    }

    /// The task starts of the last hour that earlier processes noted.
    pub(super) fn hourly_starts(&self) -> Vec<DateTime<Utc>> {
        self.hourly.read()
    }

    /// Notes the task starts in the hourly window now (wall-clock times).
    pub(super) fn note_hourly_starts(&self, starts: &[DateTime<Utc>]) -> Result<()> {
        self.hourly.write(starts)
    }

    /// A task waiting for a slot is about to start: out of the note before its container may run.
    pub(super) fn starting(&mut self, id: &str, attempt: Attempt) -> Result<()> {
        self.never_started.remove(id, attempt)
    }
}

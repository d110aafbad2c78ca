//! Where the grid is: a user's clone and one of its remotes, or a private bare cache clone of a URL
//! (for workers with no clone). Either way, commands never touch a working tree, the index or HEAD:
//! only objects and the remote-tracking ref of `main`. A [`Location`] says which grid (as the
//! command line or the worker names it); [`Grid`] is the grid opened, with the retries and waits
//! every operation on its remote shares, and who commits a maintainer's change.

use crate::gitcmd;
use crate::grid::engine::rate_limit::{self, RateLimited};
use crate::grid::engine::sync::{self, PushOutcome, RemoteRefused, RemoteTip};
use crate::odb::{self, Identity};
use crate::repo::LocalRepo;
use crate::settings::{REMOTE, REPO_URL, STATE_DIR};
use crate::task::Limits;
use anyhow::{bail, Context, Result};
use gix::ObjectId;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How a grid is named: a remote of the clone in the current directory, or a URL (whose private
/// cache clone lives under the state dir). The command line's `--remote`, `--repo` and
/// `--state-dir` (`cli::GridArgs`) fill it; unset fields come from git config
/// ([`Location::resolve`]).
#[derive(Debug, Clone, Default)]
pub struct Location {
    pub remote: Option<String>,
    pub repo: Option<String>,
    pub state_dir: Option<PathBuf>,
}

pub struct Grid {
    /// Where git commands run.
    pub dir: PathBuf,
    /// Remote name (or URL) to fetch from and push to.
    pub remote: String,
    /// Where `main` of the remote is tracked locally.
    pub tracking_ref: String,
    pub repo: gix::Repository,
    pub limits: Limits,
    lock_path: PathBuf,
    /// Asked between retries whether to stop waiting for the remote (a worker told to stop whose
    /// grace period is over): the retry pauses end, and the operation fails with [`Interrupted`].
    give_up: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
    /// How many rate-limited answers in a row an operation takes, waiting longer after each,
    /// before it fails with [`RateLimited`]; 1 for a caller that paces itself (the worker).
    rate_limit_tries: u32,
}

message_error!(
    /// Waiting for the remote was given up because the process was told to stop.
    Interrupted
);

impl Location {
    /// Fills what the command line and environment left unset from git config (flag > env > git config).
    pub fn resolve(&self) -> Result<Location> {
        let config = crate::repo::command_config()?;
        Ok(Location {
            remote: REMOTE.resolve_opt(self.remote.clone(), &config)?,
            repo: REPO_URL.resolve_opt(self.repo.clone(), &config)?,
            state_dir: STATE_DIR.resolve_opt(self.state_dir.clone(), &config)?,
        })
    }

    pub fn state_dir(&self) -> Result<PathBuf> {
        match &self.state_dir {
            Some(d) => Ok(d.clone()),
            None => default_state_dir(),
        }
    }
}

impl Grid {
    pub fn open(location: &Location) -> Result<Grid> {
        Grid::open_resolved(&location.resolve()?)
    }

    /// Like [`open`](Grid::open), for a location already completed by [`Location::resolve`].
    pub fn open_resolved(args: &Location) -> Result<Grid> {
        match &args.repo {
            Some(url) => Grid::cache_clone(url, &args.state_dir()?),
            None => {
                let local = LocalRepo::current()?;
                let remote = args.remote.clone();
                Grid::in_clone(&local, &remote.unwrap_or_else(|| REMOTE.fixed().into()))
            }
        }
    }

    pub fn in_clone(local: &LocalRepo, remote: &str) -> Result<Grid> {
        if gitcmd::output_opt(&local.dir, &["remote", "get-url", remote])?.is_none() {
            bail!("this clone has no remote named {remote:?}; name the grid's remote with --remote NAME or git config dgrid.remote");
        }
        Ok(Grid {
            dir: local.dir.clone(),
            remote: remote.to_string(),
            tracking_ref: format!("refs/remotes/{remote}/main"),
            repo: local.open()?,
            limits: local.limits()?,
            lock_path: local.git_dir.join("dgrid.lock"),
            give_up: None,
            rate_limit_tries: RATE_LIMIT_TRIES,
        })
    }

    /// A bare clone of `url` under `state_dir/repos/`, created on first use.
    pub fn cache_clone(url: &str, state_dir: &Path) -> Result<Grid> {
        let url = absolute_if_local(&gitcmd::strip_credentials(url));
        let dir = state_dir.join("repos").join(cache_name(&url));
        if !dir.join("HEAD").exists() {
            create_cache(&dir, &url)?;
        }
        let local = LocalRepo::discover(&dir)?;
        Ok(Grid {
            dir: dir.clone(),
            remote: "origin".into(),
            tracking_ref: "refs/remotes/origin/main".into(),
            repo: local.open()?,
            limits: local.limits()?,
            lock_path: dir.join("dgrid.lock"),
            give_up: None,
            rate_limit_tries: RATE_LIMIT_TRIES,
        })
    }

    /// Who commits a maintainer's change (cancel, retry, archive, compact): the one rule of
    /// every person's command, [`crate::repo::person_identity`].
    pub fn maintainer(&self) -> Identity {
        crate::repo::person_identity(&self.dir)
    }

    /// Makes retry pauses end, and operations fail with [`Interrupted`], once `give_up` says so.
    pub fn give_up_when(&mut self, give_up: Arc<dyn Fn() -> bool + Send + Sync>) {
        self.give_up = Some(give_up);
    }

    /// Makes an operation fail with [`RateLimited`] after `tries` rate-limited answers in a row
    /// (at least 1): a caller with its own pacing (the worker) waits for the remote itself.
    pub fn rate_limit_tries(&mut self, tries: u32) {
        self.rate_limit_tries = tries.max(1);
    }

    /// The remote answered the `attempt`-th time in a row (1 = the first) that it limits our
    /// rate: waits longer each time (at least what the remote asked for) and returns to try
    /// again, or gives up with [`RateLimited`] once the tries are spent.
    pub(crate) fn rate_limited(&self, attempt: u32, what: &str, why: &str) -> Result<()> {
        let hint = rate_limit::retry_hint(why);
        if attempt >= self.rate_limit_tries {
            let still = if attempt > 1 {
                format!("; still limited after {attempt} tries, try again in a few minutes")
            } else {
                String::new()
            };
            return Err(RateLimited {
                message: format!(
                    "{} is rate limiting us ({what}): {}{still}",
                    self.describe(),
                    why.trim()
                ),
                retry_after: hint,
            }
            .into());
        }
        let wait = rate_limit::backoff(attempt, RATE_LIMIT_BASE, RATE_LIMIT_CAP, hint);
        self.pause(wait.min(RATE_LIMIT_CAP * 2))
    }

    /// Waits `pause` before trying the remote again, unless waiting was given up.
    pub(crate) fn pause(&self, pause: Duration) -> Result<()> {
        let until = std::time::Instant::now() + pause;
        loop {
            if self.give_up.as_ref().is_some_and(|g| g()) {
                return Err(Interrupted(format!(
                    "stopped waiting for {}: told to stop",
                    self.describe()
                ))
                .into());
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// The remote's URL as git config has it (credentials and all: never print it unredacted).
    pub fn url(&self) -> Option<String> {
        gitcmd::output_opt(&self.dir, &["remote", "get-url", &self.remote])
            .ok()
            .flatten()
    }

    /// The remote's name and URL, for messages.
    pub fn describe(&self) -> String {
        match gitcmd::output_opt(&self.dir, &["remote", "get-url", &self.remote]) {
            Ok(Some(url)) if url != self.remote => {
                format!("{} ({})", self.remote, crate::text::redact_urls(&url))
            }
            _ => self.remote.clone(),
        }
    }

    /// Serializes grid writes of all processes using this repository (objects and tracking ref).
    pub fn lock(&self) -> Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .with_context(|| format!("cannot open {}", self.lock_path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", self.lock_path.display()))?;
        Ok(file)
    }

    /// The last fetched tip of the remote's `main`.
    pub fn tip(&self) -> Result<Option<ObjectId>> {
        let out = gitcmd::output_opt(
            &self.dir,
            &["rev-parse", "--verify", "--quiet", &self.tracking_ref],
        )?;
        out.map(|hex| odb::parse_oid(&hex)).transpose()
    }

    /// Where the remote's `main` is now, asked cheaply (`git ls-remote` transfers nothing when
    /// nothing changed); the message of an unreachable remote names it.
    pub fn remote_tip(&self) -> Result<RemoteTip> {
        Ok(match sync::ls_remote(&self.dir, &self.remote)? {
            RemoteTip::Unreachable(why) => match sync::other_failure(&why) {
                PushOutcome::Denied(m) => {
                    return Err(
                        RemoteRefused(format!("{} refused access: {m}", self.describe())).into(),
                    );
                }
                // Polling is what a rate limit asks to slow down: the caller's pacing decides
                // when to ask again, so this never waits here.
                PushOutcome::RateLimited(m) => {
                    return Err(RateLimited {
                        message: format!(
                            "{} is rate limiting us (ls-remote): {m}",
                            self.describe()
                        ),
                        retry_after: rate_limit::retry_hint(&m),
                    }
                    .into());
                }
                _ => RemoteTip::Unreachable(format!("cannot reach {}: {why}", self.describe())),
            },
            at => at,
        })
    }

    /// Fetches `main`, retrying a few times when the remote cannot be reached; returns the new tip.
    pub fn fetch(&self) -> Result<Option<ObjectId>> {
        let mut delay = Duration::from_millis(100);
        let mut limited = 0;
        let mut server_errors = 0;
        let mut attempt = 0;
        while attempt < NETWORK_TRIES {
            match sync::fetch(&self.dir, &self.remote, &self.tracking_ref)? {
                PushOutcome::RateLimited(m) => {
                    // Not a network failure: its own tries and waits.
                    limited += 1;
                    self.rate_limited(limited, "fetch", &m)?;
                    continue;
                }
                // A server that fails now and then (dulwich answers 500 when a commit it
                // advertised stopped being a tip before the fetch asked for it): its own tries,
                // with a growing wait, as for a rate limit.
                PushOutcome::Unreachable(m)
                    if sync::is_server_error(&m) && server_errors + 1 < SERVER_ERROR_TRIES =>
                {
                    server_errors += 1;
                    self.pause(jitter(
                        SERVER_ERROR_BASE.saturating_mul(1 << server_errors.min(6)),
                    ))?;
                    continue;
                }
                PushOutcome::Done => return self.tip(),
                PushOutcome::NoBranch => return Ok(None),
                PushOutcome::Denied(m) => {
                    return Err(
                        RemoteRefused(format!("{} refused access: {m}", self.describe())).into(),
                    )
                }
                PushOutcome::Unreachable(m)
                | PushOutcome::LostRace(m)
                | PushOutcome::Declined(m) => {
                    attempt += 1;
                    if attempt == NETWORK_TRIES {
                        bail!("cannot fetch from {}: {m}", self.describe());
                    }
                }
            }
            self.pause(jitter(delay))?;
            delay *= 2;
        }
        unreachable!("the loop returns or bails on its last attempt")
    }

    /// `git gc --auto` now and then: gix writes loose objects and never packs them
    /// (`docs/ARCHITECTURE.md#compare-and-swap`).
    pub fn maybe_gc(&self) {
        if fastrand::u32(0..32) == 0 {
            let _ = gitcmd::run(&self.dir, &["gc", "--auto", "--quiet"]);
        }
    }
}

/// How often a remote that cannot be reached is tried before giving up.
pub(crate) const NETWORK_TRIES: u32 = 4;

/// Server errors (HTTP 5xx) in a row a fetch takes before it gives up, waiting about 0.2, 0.4,
/// 0.8 ... 6.4 s between them (13 s in all): a busy server's passing trouble, not a dead one.
const SERVER_ERROR_TRIES: u32 = 7;
const SERVER_ERROR_BASE: Duration = Duration::from_millis(100);

/// Rate-limited answers in a row a command takes before it gives up: waits of about 1, 2, 4, 8
/// and 16 s between them, half a minute in all (longer when the remote asks for longer).
pub(crate) const RATE_LIMIT_TRIES: u32 = 6;
const RATE_LIMIT_BASE: Duration = Duration::from_secs(1);
const RATE_LIMIT_CAP: Duration = Duration::from_secs(60);

/// A random duration between half of `d` and `d`.
pub(crate) fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis() as u64;
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

pub(crate) fn default_state_dir() -> Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("git-dgrid"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_CACHE_HOME nor HOME is set: give --state-dir")?;
    Ok(PathBuf::from(home).join(".cache").join("git-dgrid"))
}

fn absolute_if_local(url: &str) -> String {
    let path = Path::new(url);
    if !url.contains("://") && path.exists() {
        if let Ok(abs) = std::path::absolute(path) {
            return abs.to_string_lossy().into_owned();
        }
    }
    url.to_string()
}

/// A readable, collision-free folder name for a URL (credentials in it are not kept).
fn cache_name(url: &str) -> String {
    let readable: String = url
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("grid")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{readable}-{hash:016x}")
}

/// Creates the cache clone in a temporary folder and renames it into place, so a crash never
/// leaves a half-made one behind.
fn create_cache(dir: &Path, url: &str) -> Result<()> {
    let parent = dir.parent().context("cache folder has no parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".tmp-{}-{}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&tmp)?;
    gitcmd::output(&tmp, &["init", "--quiet", "--bare"])?;
    gitcmd::output(&tmp, &["remote", "add", "origin", url])?;
    gitcmd::output(
        &tmp,
        &[
            "config",
            "remote.origin.fetch",
            "+refs/heads/main:refs/remotes/origin/main",
        ],
    )?;
    match std::fs::rename(&tmp, dir) {
        Ok(()) => Ok(()),
        // Another process made it first: use theirs.
        Err(_) if dir.join("HEAD").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot create the cache clone {}", dir.display()))
        }
    }
}

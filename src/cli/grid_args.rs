//! How the command line names a grid: `--remote`, `--repo` and `--state-dir` (each also from the
//! environment), flattened into every command that reaches a grid. The grid itself takes a
//! plain [`Location`]; clap stays in the command line.

use crate::grid::Location;
use crate::settings::{REMOTE, REPO_URL, STATE_DIR};
use anyhow::Result;
use std::path::PathBuf;

/// How the command line names a grid.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GridArgs {
    #[arg(long, value_name = "NAME", env = REMOTE.key.env, help = REMOTE.help())]
    pub remote: Option<String>,
    #[arg(long, value_name = "URL", env = REPO_URL.key.env, help = REPO_URL.help())]
    pub repo: Option<String>,
    #[arg(long, value_name = "DIR", env = STATE_DIR.key.env, help = STATE_DIR.help())]
    pub state_dir: Option<PathBuf>,
}

impl GridArgs {
    /// The grid as the flags and the environment name it (git config not read yet).
    pub fn location(&self) -> Location {
        Location {
            remote: self.remote.clone(),
            repo: self.repo.clone(),
            state_dir: self.state_dir.clone(),
        }
    }

    /// Fills what the command line and environment left unset from git config (flag > env > git config).
    pub fn resolve(&self) -> Result<Location> {
        self.location().resolve()
    }
}

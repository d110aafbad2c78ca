//! The local repository a command runs in: a user's clone (with or without a working tree).

use crate::config::GitConfig;
use crate::gitcmd;
use crate::settings::{DEFAULT_IMAGE, MAX_TIMEOUT};
use crate::task::Limits;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The user's git identity (config or GIT_AUTHOR_* environment), as git itself would use it.
pub fn git_identity(dir: &Path) -> Option<crate::odb::Identity> {
    let ident = gitcmd::output_opt(dir, &["var", "GIT_AUTHOR_IDENT"])
        .ok()
        .flatten()?;
    let (name, rest) = ident.split_once(" <")?;
    let (email, _) = rest.split_once('>')?;
    Some(crate::odb::Identity {
        name: name.trim().to_string(),
        email: email.trim().to_string(),
    })
}

/// Who a person's command (init, submit, cancel, retry, archive, compact) commits as: their git
/// identity as git sees it in `dir`, else [`FALLBACK_IDENTITY`]. One rule for every command, so a
/// command run where git knows no one lands all the same (and `init` never stops half done), and
/// its commits say who they are from when git does know.
pub fn person_identity(dir: &Path) -> crate::odb::Identity {
    git_identity(dir).unwrap_or_else(fallback_identity)
}

/// The identity of a person's commits where git has none: `git-dgrid <git-dgrid@localhost>`.
pub const FALLBACK_IDENTITY: (&str, &str) = ("git-dgrid", "git-dgrid@localhost");

fn fallback_identity() -> crate::odb::Identity {
    crate::odb::Identity {
        name: FALLBACK_IDENTITY.0.into(),
        email: FALLBACK_IDENTITY.1.into(),
    }
}

/// `dgrid.*` (and `user.signingKey`) as git sees them in the directory the command runs in (local,
/// global and system config): the one place git-dgrid reads git config, so every command and a
/// worker on a URL or in a clone resolve their settings from the same place.
pub fn command_config() -> Result<GitConfig> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    read_config(&cwd)
}

/// Defined here, not in `config`, so the settings (a base module) never run git themselves;
/// `user.signingKey` is read too, which `submit --sign` shares with git's own signing.
fn read_config(dir: &Path) -> Result<GitConfig> {
    let out = gitcmd::run(
        dir,
        &[
            "config",
            "--null",
            "--get-regexp",
            r"^(dgrid\..*|user\.signingkey)$",
        ],
    )?;
    // Exit 1 means no key matched; anything is fine as long as what was printed parses.
    Ok(GitConfig::from_null_separated(&out.stdout))
}

pub struct LocalRepo {
    /// Where git commands run.
    pub dir: PathBuf,
    pub git_dir: PathBuf,
    /// The top of the working tree; `None` in a bare repository.
    pub work_tree: Option<PathBuf>,
}

impl LocalRepo {
    /// The repository containing `dir`.
    pub fn discover(dir: &Path) -> Result<LocalRepo> {
        let out = gitcmd::run(
            dir,
            &["rev-parse", "--absolute-git-dir", "--is-bare-repository"],
        )?;
        if !out.success {
            bail!(
                "not in a git repository ({}): {}",
                dir.display(),
                out.stderr.trim()
            );
        }
        let mut lines = out.stdout.lines();
        let git_dir = PathBuf::from(lines.next().context("git rev-parse printed nothing")?);
        let bare = lines.next() == Some("true");
        let work_tree = if bare {
            None
        } else {
            gitcmd::output_opt(dir, &["rev-parse", "--show-toplevel"])?.map(PathBuf::from)
        };
        Ok(LocalRepo {
            dir: dir.to_path_buf(),
            git_dir,
            work_tree,
        })
    }

    pub fn current() -> Result<LocalRepo> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        LocalRepo::discover(&cwd)
    }

    pub fn config(&self, key: &str) -> Result<Option<String>> {
        gitcmd::config(&self.dir, key)
    }

    /// What readers of the grid's files are told: the longest timeout (git config
    /// `dgrid.maxTimeout`) and the image of a file that names none (`DGRID_DEFAULT_IMAGE`, else
    /// git config `dgrid.defaultImage`, else the Python implementation's image; `work
    /// --default-image` overrides it).
    pub fn limits(&self) -> Result<Limits> {
        let config = command_config()?;
        let max_timeout: u64 = MAX_TIMEOUT
            .resolve(None, &config)
            .ok()
            .filter(|n| *n >= 1)
            .with_context(|| {
                format!(
                    "git config dgrid.maxTimeout: expected a whole number of seconds, got {:?}",
                    config.get("dgrid.maxTimeout").unwrap_or_default()
                )
            })?;
        let from_env = DEFAULT_IMAGE
            .key
            .env
            .and_then(|var| std::env::var(var).ok())
            .filter(|v| !v.trim().is_empty());
        let default_image: String = DEFAULT_IMAGE.resolve(from_env, &config)?;
        Ok(Limits {
            max_timeout,
            default_image,
        })
    }

    /// The hooks folder, honouring `core.hooksPath`.
    pub fn hooks_dir(&self) -> Result<PathBuf> {
        let path = gitcmd::output(&self.dir, &["rev-parse", "--git-path", "hooks"])?;
        Ok(self.dir.join(path))
    }

    pub fn open(&self) -> Result<gix::Repository> {
        crate::odb::open(&self.git_dir)
    }
}

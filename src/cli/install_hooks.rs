//! `git dgrid install-hooks`: install (or remove) the pre-push hook that validates task files.

use crate::hooks::{self, Installed, Uninstalled};
use crate::repo::LocalRepo;
use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// Install the pre-push hook that validates task files (honours core.hooksPath; keeps existing hooks)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove git-dgrid's hook (and put back a hook it had kept aside)
    #[arg(long)]
    pub uninstall: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let hooks_dir = LocalRepo::current()?.hooks_dir()?;
    if args.uninstall {
        match hooks::uninstall(&hooks_dir)? {
            Uninstalled::Removed => writeln!(out, "Removed the git-dgrid pre-push hook.")?,
            Uninstalled::Restored(p) => writeln!(
                out,
                "Removed the git-dgrid pre-push hook and restored {}.",
                p.display()
            )?,
            Uninstalled::NotInstalled => writeln!(out, "No pre-push hook is installed.")?,
            Uninstalled::Foreign(p) => writeln!(
                out,
                "{} is not git-dgrid's hook; left it alone.",
                p.display()
            )?,
        }
        return Ok(());
    }
    report_install(&hooks_dir)?;
    Ok(())
}

pub fn report_install(hooks_dir: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let hook = hooks_dir.join("pre-push");
    match hooks::install(hooks_dir)? {
        Installed::New => writeln!(out, "Installed the pre-push hook: {}", hook.display())?,
        Installed::AlreadyCurrent => writeln!(out, "The pre-push hook is installed: {}", hook.display())?,
        Installed::Upgraded => writeln!(out, "Upgraded the pre-push hook: {}", hook.display())?,
        Installed::Chained(kept) => writeln!(out,
            "Installed the pre-push hook: {}\nYour existing hook was kept as {} and still runs after the task check.",
            hook.display(),
            kept.display()
        )?,
    }
    Ok(())
}

//! `git dgrid install-hooks`: install (or remove) the pre-push hook that validates task files.

use crate::exit;
use crate::hooks::{self, Installed, Uninstalled};
use crate::repo::LocalRepo;
use anyhow::Result;
use std::path::Path;

/// Install the pre-push hook that validates task files (honours core.hooksPath; keeps existing hooks)
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Remove git-dgrid's hook (and put back a hook it had kept aside)
    #[arg(long)]
    pub uninstall: bool,
}

pub fn run(args: Args) -> Result<u8> {
    let hooks_dir = LocalRepo::current()?.hooks_dir()?;
    if args.uninstall {
        match hooks::uninstall(&hooks_dir)? {
            Uninstalled::Removed => println!("Removed the git-dgrid pre-push hook."),
            Uninstalled::Restored(p) => println!(
                "Removed the git-dgrid pre-push hook and restored {}.",
                p.display()
            ),
            Uninstalled::NotInstalled => println!("No pre-push hook is installed."),
            Uninstalled::Foreign(p) => {
                println!("{} is not git-dgrid's hook; left it alone.", p.display())
            }
        }
        return Ok(exit::OK);
    }
    report_install(&hooks_dir)?;
    Ok(exit::OK)
}

pub fn report_install(hooks_dir: &Path) -> Result<()> {
    let hook = hooks_dir.join("pre-push");
    match hooks::install(hooks_dir)? {
        Installed::New => println!("Installed the pre-push hook: {}", hook.display()),
        Installed::AlreadyCurrent => println!("The pre-push hook is installed: {}", hook.display()),
        Installed::Upgraded => println!("Upgraded the pre-push hook: {}", hook.display()),
        Installed::Chained(kept) => println!(
            "Installed the pre-push hook: {}\nYour existing hook was kept as {} and still runs after the task check.",
            hook.display(),
            kept.display()
        ),
    }
    Ok(())
}

//! The command line: one clap definition for `git dgrid <cmd>` and every `git-dgrid-<cmd>` binary.

use crate::exit;
use crate::grid::Conflict;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod archive;
pub mod claim;
pub mod compact;
pub mod docs;
pub mod env;
pub mod grid_args;
pub mod hook;
pub mod init;
pub mod install_hooks;
pub mod manage;
pub mod poll_pace;
pub mod read;
pub mod secrets;
pub mod show;
pub mod sign;
pub mod status;
pub mod submit;
pub mod submit_secrets;
pub mod validate;
pub mod wait;
pub mod work;

#[derive(Parser, Debug)]
#[command(
    name = "git-dgrid",
    bin_name = "git dgrid",
    version,
    about = "Turn any git remote into a decentralized task grid",
    long_about = "Turn any git remote into a decentralized task grid.\n\n\
        The remote's main branch is the database: tasks are JSON files in tasks/queue, tasks/in_progress, \
        tasks/completed and tasks/failed; workers claim tasks by pushing commits and run them in Docker.",
    // `git dgrid --help` is git's: it runs `man git-dgrid`, which has nothing to show until the
    // pages are installed. This help is what is always there, so it says how to get them.
    after_help = "Manual pages: `git dgrid install-docs` installs them (and the shell completions); \
        then `git dgrid --help` and `git help dgrid` open them. Until then `git dgrid -h` and \
        `git dgrid <command> -h` print the same help.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Init(init::Args),
    Validate(validate::Args),
    Submit(Box<submit::Args>),
    Claim(claim::Args),
    Compact(compact::Args),
    Archive(archive::Args),
    Work(Box<work::Args>),
    Status(Box<status::Args>),
    Show(show::Args),
    Logs(show::LogsArgs),
    Cancel(manage::CancelArgs),
    Retry(manage::RetryArgs),
    Secrets(secrets::Args),
    InstallHooks(install_hooks::Args),
    InstallDocs(docs::InstallArgs),
    Env(env::Args),
    #[command(hide = true)]
    Hook(hook::Args),
    #[command(hide = true)]
    GenerateDocs(docs::GenerateArgs),
}

/// Entry point of every binary; `preset` is the subcommand a `git-dgrid-<cmd>` binary stands for.
pub fn main_with(preset: Option<&str>) -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(cmd) = preset {
        args.insert(1.min(args.len()), cmd.into());
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_exit(&e),
    };
    match crate::gitcmd::require_git().and_then(|_| run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e, exit_kind(&e)),
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Init(a) => init::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Submit(a) => submit::run(*a),
        Command::Claim(a) => claim::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Archive(a) => archive::run(a),
        Command::Work(a) => work::run(*a),
        Command::Status(a) => status::run(*a),
        Command::Show(a) => show::run(a),
        Command::Logs(a) => show::run_logs(a),
        Command::Cancel(a) => manage::run_cancel(a),
        Command::Retry(a) => manage::run_retry(a),
        Command::Secrets(a) => secrets::run(a),
        Command::InstallHooks(a) => install_hooks::run(a),
        Command::Hook(a) => hook::run(a),
        Command::InstallDocs(a) => docs::run_install(a),
        Command::Env(a) => env::run(a),
        Command::GenerateDocs(a) => docs::run_generate(a),
    }
}

/// How a command's error ends it: the errors of the layers below that mean a clean "no" (a
/// transition that refuses the user's input) are told apart here, the rest by [`exit::kind`].
pub fn exit_kind(error: &anyhow::Error) -> exit::Kind {
    match exit::kind(error) {
        exit::Kind::Error if error.downcast_ref::<Conflict>().is_some() => {
            exit::Kind::No(Some(format!("{error:#}")))
        }
        kind => kind,
    }
}

/// Says what did not happen when a transition refuses (`nothing submitted: <why>`); other errors
/// pass unchanged.
pub fn refused<T>(result: Result<T>, what: &'static str) -> Result<T> {
    result.map_err(|e| {
        if e.is::<Conflict>() {
            e.context(what)
        } else {
            e
        }
    })
}

/// `--help`, `--version` (exit 0) and usage errors (exit 2), as clap prints them; a closed stdout
/// while printing help is as quiet as anywhere else.
fn usage_exit(error: &clap::Error) -> ExitCode {
    match error.print() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(exit::CLOSED_PIPE),
        _ => ExitCode::from(error.exit_code().clamp(0, 255) as u8),
    }
}

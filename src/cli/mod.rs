//! The command line: one clap definition for `git dgrid <cmd>` and every `git-dgrid-<cmd>` binary.

use crate::exit;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod claim;
pub mod docs;
pub mod env;
pub mod hook;
pub mod init;
pub mod install_hooks;
pub mod manage;
pub mod read;
pub mod show;
pub mod status;
pub mod submit;
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
    Work(Box<work::Args>),
    Status(Box<status::Args>),
    Show(show::Args),
    Logs(show::LogsArgs),
    Cancel(manage::CancelArgs),
    Retry(manage::RetryArgs),
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
    let cli = Cli::parse_from(args);
    let result = crate::gitcmd::require_git().and_then(|_| match cli.command {
        Command::Init(a) => init::run(a),
        Command::Validate(a) => validate::run(a),
        Command::Submit(a) => submit::run(*a),
        Command::Claim(a) => claim::run(a),
        Command::Work(a) => work::run(*a),
        Command::Status(a) => status::run(*a),
        Command::Show(a) => show::run(a),
        Command::Logs(a) => show::run_logs(a),
        Command::Cancel(a) => manage::run_cancel(a),
        Command::Retry(a) => manage::run_retry(a),
        Command::InstallHooks(a) => install_hooks::run(a),
        Command::Hook(a) => hook::run(a),
        Command::InstallDocs(a) => docs::run_install(a),
        Command::Env(a) => env::run(a),
        Command::GenerateDocs(a) => docs::run_generate(a),
    });
    match result {
        Ok(code) => exit::code(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::code(exit::ERROR)
        }
    }
}

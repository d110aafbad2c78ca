//! `git dgrid <cmd>`: git runs `git-dgrid <cmd>` for it.
fn main() -> std::process::ExitCode {
    git_dgrid::cli::main_with(None)
}

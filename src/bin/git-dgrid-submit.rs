//! `git-dgrid-submit ARGS` behaves exactly like `git dgrid submit ARGS`.
fn main() -> std::process::ExitCode {
    git_dgrid::cli::main_with(Some("submit"))
}

//! `git-dgrid-status ARGS` behaves exactly like `git dgrid status ARGS`.
fn main() -> std::process::ExitCode {
    git_dgrid::cli::main_with(Some("status"))
}

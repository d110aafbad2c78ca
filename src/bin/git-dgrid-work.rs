//! `git-dgrid-work ARGS` behaves exactly like `git dgrid work ARGS`.
fn main() -> std::process::ExitCode {
    git_dgrid::cli::main_with(Some("work"))
}

//! `git-dgrid-claim ARGS` behaves exactly like `git dgrid claim ARGS`.
fn main() -> std::process::ExitCode {
    git_dgrid::cli::main_with(Some("claim"))
}

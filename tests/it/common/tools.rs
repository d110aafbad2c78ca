//! The programs some tests need besides git. `build.rs` probes them once per build and sets
//! `have_<tool>`; a test that needs a missing one carries
//! `#[cfg_attr(not(have_<tool>), ignore = "needs <tool>: <how to get it>")]`, so cargo's summary
//! counts it as ignored, never as passed. The checks here are the second line of defence, at run
//! time: a tool that went away since the build is a printed skip, or a failure when
//! `DGRID_REQUIRE_<TOOL>=1` or `DGRID_REQUIRE_ALL=1` (CI) asks for the tool.

use std::path::Path;

/// Whether `DGRID_REQUIRE_<require>` (or `DGRID_REQUIRE_ALL`) asks for the tool.
pub fn required(require: &str) -> bool {
    [
        format!("DGRID_REQUIRE_{require}"),
        "DGRID_REQUIRE_ALL".into(),
    ]
    .iter()
    .any(|var| std::env::var(var).as_deref() == Ok("1"))
}

/// A tool is missing (`why`): a failure when it is required, else a skip said on stderr.
pub fn missing(require: &str, why: &str) {
    if required(require) {
        panic!("DGRID_REQUIRE_{require}=1 (or DGRID_REQUIRE_ALL=1) but {why}");
    }
    eprintln!("SKIPPED: {why}; set DGRID_REQUIRE_{require}=1 to make this a failure");
}

fn runs(shell_command: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", shell_command])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `man` (man-db), for the installed manual pages.
pub fn man_ready() -> bool {
    let here = runs("command -v man");
    if !here {
        missing("MAN", "man is not installed");
    }
    here
}

/// `script` (util-linux), for a real terminal (a pty).
pub fn script_ready() -> bool {
    let here = runs("script --version");
    if !here {
        missing("SCRIPT", "script (util-linux) is not installed");
    }
    here
}

/// Where git's bash completion script is (build.rs looks in the same places).
pub fn git_completion_script() -> Option<&'static str> {
    let found = [
        "/usr/share/bash-completion/completions/git",
        "/etc/bash_completion.d/git",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    if found.is_none() {
        missing(
            "GIT_COMPLETION",
            "git's bash completion script is not installed",
        );
    }
    found
}

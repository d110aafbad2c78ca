//! `git dgrid --help` is git's (it runs `man git-dgrid`), so the manual must be
//! where man looks, and what is always there (`-h`, `install-docs`' own words) says how to get it.
//! Real git, real man.

use crate::common;
use crate::common::{man_ready, Env};
use std::path::Path;
use std::process::Output;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `bin` and the system's folders: man derives its path from PATH, and this machine's own
/// `~/.cargo/bin` (where the README's first command installs git-dgrid and its pages) must not
/// answer for the copy under test.
fn path_with(bin: &Path) -> String {
    format!(
        "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        bin.display()
    )
}

/// `git ARGS` with `bin` first on PATH, no MANPATH (man derives its path from PATH) and no pager.
fn git_with(env: &Env, bin: &Path, args: &[&str]) -> Output {
    env.cmd("git", env.tmp.path())
        .args(args)
        .env("PATH", path_with(bin))
        .env_remove("MANPATH")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap()
}

/// Installed as `cargo install` does (a binary in PREFIX/bin, on PATH), `install-docs` with no
/// options puts the pages where man finds them without MANPATH: `git dgrid --help` opens them.
#[test]
#[cfg_attr(not(have_man), ignore = "needs man (apt-get install man-db)")]
fn install_docs_puts_the_pages_where_git_dgrid_help_finds_them() {
    if !man_ready() {
        return;
    }
    let env = Env::new();
    let bin = env.path("cargo/bin");
    std::fs::create_dir_all(&bin).unwrap();
    let exe = bin.join("git-dgrid");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_git-dgrid"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_git-dgrid"), &exe).unwrap();
    }
    let before = git_with(&env, &bin, &["dgrid", "--help"]);
    assert!(!before.status.success(), "no pages yet: {}", text(&before));

    let out = env
        .cmd(&exe, env.tmp.path())
        .arg("install-docs")
        .env_remove("MANPATH")
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(env.path("cargo/share/man/man1/git-dgrid.1").exists());
    assert!(env
        .home
        .join(".local/share/bash-completion/completions/git-dgrid")
        .exists());
    assert!(
        text(&out).contains("`git dgrid --help` and `git help dgrid` open the manual"),
        "{}",
        text(&out)
    );
    for args in [["dgrid", "--help"], ["help", "dgrid"]] {
        let out = git_with(&env, &bin, &args);
        let shown = text(&out);
        assert!(out.status.success(), "git {args:?}: {shown}");
        assert!(
            shown.contains("git-dgrid") && shown.contains("submit"),
            "{shown}"
        );
    }
}

/// Pages put where man does not look: `install-docs` says so and what to set.
#[test]
#[cfg_attr(not(have_man), ignore = "needs man (apt-get install man-db)")]
fn install_docs_says_what_to_set_when_man_cannot_find_the_pages() {
    if !man_ready() {
        return;
    }
    let env = Env::new();
    let prefix = env.path("elsewhere");
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .args(["install-docs", "--prefix", prefix.to_str().unwrap()])
        .env("PATH", path_with(&env.path("no-bin")))
        .env_remove("MANPATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    let man = prefix.join("share/man");
    assert!(
        said.contains(&format!("export MANPATH=\"{}:$MANPATH\"", man.display())),
        "{said}"
    );
    assert!(said.contains("`git dgrid -h`"), "{said}");
}

/// `-h` is always there (no man needed): it says how to get the manual.
#[test]
fn short_help_says_how_to_get_the_manual() {
    let env = Env::new();
    let out = env.dgrid(env.tmp.path(), &["-h"]);
    assert!(out.status.success(), "{}", text(&out));
    // clap wraps the help to the terminal: compare words.
    let help = common::words(&out.stdout).join(" ");
    assert!(help.contains("`git dgrid install-docs`"), "{help}");
    assert!(help.contains("`git dgrid --help`"), "{help}");
}

//! Feeling native to git: generated docs are fresh, `git dgrid <TAB>` completes, `git help dgrid`
//! finds the man page, configuration precedence, and `env` never shows a secret.

use crate::common;
use crate::common::{assert_success, Env};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn man_pages_and_completions_are_fresh() {
    let env = Env::new();
    let out = env.path("gen");
    env.dgrid_ok(
        env.tmp.path(),
        &["generate-docs", "--out", out.to_str().unwrap()],
        0,
    );
    for dir in ["man", "completions"] {
        let mut generated: Vec<String> = std::fs::read_dir(out.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut checked_in: Vec<String> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        generated.sort();
        checked_in.sort();
        assert_eq!(
            generated, checked_in,
            "{dir}/ differs: run `cargo run -- generate-docs`"
        );
        for name in generated {
            let fresh = std::fs::read(out.join(dir).join(&name)).unwrap();
            let old = std::fs::read(root().join(dir).join(&name)).unwrap();
            assert!(
                fresh == old,
                "{dir}/{name} is stale: run `cargo run -- generate-docs`"
            );
        }
    }
    for page in [
        "git-dgrid.1",
        "git-dgrid-submit.1",
        "git-dgrid-work.1",
        "git-dgrid-status.1",
    ] {
        assert!(out.join("man").join(page).exists(), "{page}");
    }
}

/// What bash completes for `line` (ending at the cursor) with git's completion and ours loaded.
fn complete(env: &Env, git_script: &str, words: &[&str]) -> Vec<String> {
    let words_literal: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source {git_script}
source {ours}
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_LINE="{line}"
COMP_POINT=${{#COMP_LINE}}
__git_wrap__git_main
printf '%s\n' "${{COMPREPLY[@]}}""#,
        ours = root().join("completions/git-dgrid.bash").display(),
        words = words_literal.join(" "),
        cword = words.len() - 1,
        line = words.join(" "),
    );
    let out = env
        .cmd("bash", env.tmp.path())
        .args(["-c", &script])
        .output()
        .unwrap();
    common::words(&out.stdout)
}

#[test]
#[cfg_attr(
    not(have_git_completion),
    ignore = "needs git's bash completion (/usr/share/bash-completion/completions/git, with Debian's git)"
)]
fn bash_completes_git_dgrid_subcommands_and_flags() {
    let Some(git_script) = common::git_completion_script() else {
        return;
    };
    let env = Env::new();
    assert_eq!(
        complete(&env, git_script, &["git", "dgrid", "su"]),
        vec!["submit"]
    );
    let flags = complete(&env, git_script, &["git", "dgrid", "work", "--sl"]);
    assert_eq!(flags, vec!["--slots"]);
}

/// Whether `shell` is installed (see tests/it/common/tools.rs; DGRID_REQUIRE_SHELLS).
fn shell_ready(shell: &str) -> bool {
    let here = std::process::Command::new(shell)
        .args(["-c", "exit 0"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !here {
        common::missing("SHELLS", &format!("{shell} is not installed"));
    }
    here
}

/// An interactive zsh (driven through zsh/zpty) with our completions on `fpath` and zsh's own git
/// completion: `<TAB>` turns each line into the expected one.
#[test]
#[cfg_attr(not(have_zsh), ignore = "needs zsh (apt-get install zsh)")]
fn zsh_completes_git_dgrid_subcommands_and_flags() {
    if !shell_ready("zsh") {
        return;
    }
    let env = Env::new();
    for (line, expected) in [
        ("git dgrid su", "git dgrid submit"),
        ("git-dgrid st", "git-dgrid status"),
        ("git dgrid work --sl", "git dgrid work --slots"),
    ] {
        let out = env
            .cmd("zsh", env.tmp.path())
            .arg("-f")
            .arg(root().join("tests/support/zsh-complete.zsh"))
            .arg(root().join("completions"))
            .args([line, expected])
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains(expected), "{line:?} -> {shown:?}");
    }
}

/// fish with our completions first on `fish_complete_path`: `complete -C` lists what `<TAB>`
/// offers. (fish 3.6's own git completion does not pass `git dgrid ...` on to git-dgrid's, so the
/// `git-dgrid` form is what fish users get.)
#[test]
#[cfg_attr(not(have_fish), ignore = "needs fish (apt-get install fish)")]
fn fish_completes_git_dgrid_subcommands_and_flags() {
    if !shell_ready("fish") {
        return;
    }
    let env = Env::new();
    for (line, expected) in [
        ("git-dgrid su", "submit"),
        ("git-dgrid work --sl", "--slots"),
    ] {
        let out = env
            .cmd("fish", env.tmp.path())
            .arg("-c")
            .arg(format!(
                "set fish_complete_path {} $fish_complete_path; complete -C '{line}'",
                root().join("completions").display()
            ))
            .output()
            .unwrap();
        let offered: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect();
        assert_eq!(offered, vec![expected.to_string()], "{line:?}");
    }
}

#[test]
#[cfg_attr(not(have_man), ignore = "needs man (apt-get install man-db)")]
fn git_help_dgrid_finds_the_installed_page() {
    if !common::man_ready() {
        return;
    }
    let env = Env::new();
    let prefix = env.path("prefix");
    env.dgrid_ok(
        env.tmp.path(),
        &["install-docs", "--prefix", prefix.to_str().unwrap()],
        0,
    );
    assert!(prefix
        .join("share/bash-completion/completions/git-dgrid")
        .exists());
    assert!(prefix.join("share/zsh/site-functions/_git-dgrid").exists());
    assert!(prefix
        .join("share/fish/vendor_completions.d/git-dgrid.fish")
        .exists());
    for args in [vec!["help", "dgrid"], vec!["dgrid", "--help"]] {
        let out = env
            .cmd("git", env.tmp.path())
            .args(&args)
            .env(
                "MANPATH",
                format!("{}:", prefix.join("share/man").display()),
            )
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("git-dgrid") && text.contains("submit"),
            "git {args:?} printed: {text}"
        );
    }
}

/// flag > environment > git config > default, observed on which remote `status` reads.
#[test]
fn configuration_precedence() {
    let env = Env::new();
    let a = env.grid("a.git");
    let b = env.grid("b.git");
    let clone = env.clone(a.to_str().unwrap(), "c");
    env.git(&clone, &["remote", "add", "other", b.to_str().unwrap()]);
    env.dgrid_ok(
        &clone,
        &[
            "submit",
            "--remote",
            "other",
            "--id",
            "only-in-b",
            "--image",
            "alpine",
            "--",
            "true",
        ],
        0,
    );
    let queued = |extra_env: Option<(&str, &str)>, args: &[&str]| -> u64 {
        let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone);
        cmd.args(["status", "--json"]).args(args);
        if let Some((k, v)) = extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_success(&out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["counts"]["queue"].as_u64().unwrap()
    };
    assert_eq!(queued(None, &[]), 0, "default: origin (a)");
    env.git(&clone, &["config", "dgrid.remote", "other"]);
    assert_eq!(queued(None, &[]), 1, "git config beats the default");
    assert_eq!(
        queued(Some(("DGRID_REMOTE", "origin")), &[]),
        0,
        "environment beats git config"
    );
    assert_eq!(
        queued(Some(("DGRID_REMOTE", "origin")), &["--remote", "other"]),
        1,
        "the flag beats the environment"
    );

    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), &clone)
        .arg("env")
        .env("PULL_INTERVAL", "7")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |flag: &str| {
        text.lines()
            .find(|l| l.starts_with(flag))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("--remote").contains("other") && line("--remote").contains("git config dgrid.remote"),
        "{text}"
    );
    assert!(
        line("--poll-interval").contains("environment PULL_INTERVAL"),
        "{text}"
    );
    assert!(line("--slots").ends_with("default"), "{text}");
}

#[test]
fn env_never_prints_a_token() {
    let env = Env::new();
    let out = env
        .cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path())
        .arg("env")
        .env("GIT_TOKEN", "ghp_supersecret123")
        .env(
            "DGRID_REPO_URL",
            "https://bot:ghp_alsosecret@github.com/o/g.git",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("supersecret") && !all.contains("alsosecret"),
        "{all}"
    );
    assert!(all.contains("[redacted]"), "{all}");
    assert!(
        all.contains("https://bot:[redacted]@github.com/o/g.git"),
        "{all}"
    );
}

#[test]
fn every_binary_is_the_same_command() {
    let env = Env::new();
    let grid = env.grid("g.git");
    let clone = env.clone(grid.to_str().unwrap(), "c");
    let dir = common::bin_dir();
    let via_binary = env
        .cmd(dir.join("git-dgrid-status"), &clone)
        .args(["--json"])
        .output()
        .unwrap();
    let via_git = env
        .cmd("git", &clone)
        .args(["dgrid", "status", "--json"])
        .output()
        .unwrap();
    let counts = |o: &std::process::Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["counts"].clone()
    };
    assert_eq!(counts(&via_binary), counts(&via_git));
    for bin in [
        "git-dgrid-submit",
        "git-dgrid-claim",
        "git-dgrid-work",
        "git-dgrid-status",
    ] {
        let out = env
            .cmd(dir.join(bin), &clone)
            .arg("--help")
            .output()
            .unwrap();
        let sub = bin.trim_start_matches("git-dgrid-");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("git dgrid {sub}")),
            "{bin} --help"
        );
    }
}

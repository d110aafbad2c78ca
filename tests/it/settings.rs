//! One table of settings (`git_dgrid::settings::SETTINGS`) and three places that show it: the
//! README's "Configuration" table, `git dgrid env` and clap's help. They agree.

use crate::common::Env;
use git_dgrid::cli::env::row_name;
use git_dgrid::settings::SETTINGS;
use std::path::Path;

/// A cell without its backticks and without a closing note in parentheses.
fn plain(cell: &str) -> String {
    let cell = cell.trim().replace('`', "");
    match cell.rfind(" (") {
        Some(i) if cell.ends_with(')') => cell[..i].to_string(),
        _ => cell,
    }
}

fn some(cell: String) -> Option<String> {
    (!cell.is_empty()).then_some(cell)
}

/// The README's rows: (flag, environment, git config, default).
type Row = (Option<String>, Option<String>, Option<String>, String);

fn readme_rows() -> Vec<Row> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2) // the header and the |---| line
        .map(|line| {
            let inner = line
                .trim()
                .strip_prefix('|')
                .and_then(|l| l.strip_suffix('|'));
            let cells: Vec<&str> = inner.unwrap_or_default().split('|').collect();
            assert_eq!(cells.len(), 4, "README row {line:?}");
            (
                some(plain(cells[0])),
                some(plain(cells[1])),
                some(plain(cells[2])),
                plain(cells[3]),
            )
        })
        .collect()
}

fn table_rows() -> Vec<Row> {
    SETTINGS
        .iter()
        .map(|s| {
            let key = s.key();
            let default = match key.unit {
                "" => s.default_text(),
                unit => format!("{} {unit}", s.default_text()),
            };
            (
                key.flag.map(str::to_string),
                key.env.map(str::to_string),
                key.git.map(str::to_string),
                default,
            )
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_settings_table() {
    assert_eq!(readme_rows(), table_rows());
}

/// A command with none of the settings' environment variables set.
fn clean(env: &Env, args: &[&str]) -> String {
    let mut cmd = env.cmd(env!("CARGO_BIN_EXE_git-dgrid"), env.tmp.path());
    for var in SETTINGS.iter().filter_map(|s| s.key().env) {
        cmd.env_remove(var);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn git_dgrid_env_lists_every_setting_with_its_default() {
    let env = Env::new();
    let text = clean(&env, &["env"]);
    for s in SETTINGS {
        let name = row_name(s.key());
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("git dgrid env has no line for {name}:\n{text}"));
        let default = if s.is_derived() {
            format!("({})", s.default_text())
        } else {
            s.default_text()
        };
        let rest = line[name.len()..].trim();
        assert!(
            rest.starts_with(&default) && rest.ends_with("default"),
            "{line:?} should show the default {default:?}"
        );
    }
}

#[test]
fn work_help_shows_every_flag_with_its_environment_and_default() {
    let env = Env::new();
    // Wrapped lines joined: what matters is the words, not where a line breaks.
    let help = clean(&env, &["work", "--help"])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for s in SETTINGS {
        let key = s.key();
        let Some(flag) = key.flag else { continue };
        // A setting of `submit --sign`, not of the worker.
        if flag == "--signing-key" {
            continue;
        }
        let env_var = key.env.unwrap();
        let git = key.git.unwrap();
        let start = help
            .find(&format!("{flag} "))
            .unwrap_or_else(|| panic!("work --help has no {flag}: {help}"));
        let end = help[start..]
            .find(&format!("[env: {env_var}="))
            .unwrap_or_else(|| panic!("{flag} shows no [env: {env_var}=]"));
        let entry = &help[start..start + end];
        let expected = format!("[git config {git}; default: {}]", s.default_text());
        assert!(
            entry.contains(&expected),
            "{flag}: {entry:?} lacks {expected:?}"
        );
    }
}

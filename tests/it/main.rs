//! The integration tests, as one test binary (`cargo test --test it`; one module:
//! `cargo test --test it quorum::`). One binary links the crate and gix once instead of once per
//! file; its tests share one process, so nothing here may rely on a process of its own (no
//! `set_var`, no `set_current_dir`, no fixed names or ports shared by two files). Crowds of
//! workers run beside other tests: their leases are long enough for a loaded machine.
//!
//! Every `.rs` file under `tests/` is a module of this binary: `test_no_forgotten_test_files`
//! fails, naming the file, for one that is not (it would never run). The data the tests read
//! lives beside them: `tests/corpus/` (validate), `tests/support/` (zsh), `tests/it/snapshots/`
//! (insta).

// The kits: shared by several files, each declared once here.
mod common;
mod hostile_kit;
mod quorum_kit;
mod secrets_kit;
mod trust_kit;
mod worker_kit;

// One module per behaviour.
mod archive;
mod archive_replay;
mod claim_ahead;
mod claim_ahead_restart;
mod cli_snapshots;
mod compact;
mod credentials;
mod dashboard_shallow;
mod docker_executor;
mod docs_and_config;
mod dulwich_server;
mod engine;
mod forged_node_records;
mod help_and_manual;
mod hooks_and_init;
mod hostile_task_files;
mod identity;
mod json_log;
mod newcomer;
mod no_endless_loops;
mod node_records;
mod operator_policy;
mod pacing_hostile;
mod pipes;
mod printed_messages;
mod push_budget;
mod python_era;
mod quorum;
mod quorum_adaptive;
mod quorum_copycat;
mod rate_limits;
mod read_pacing;
mod registry_policy;
mod secrets;
mod secrets_hostile;
mod secrets_recipients;
mod secrets_rotate;
mod settings;
mod soak_hostile;
mod status;
mod status_replicated;
mod submit_flags;
mod submit_no_push;
mod terminal_controls;
mod trust_grid_signers;
mod trust_signing;
mod trust_worker;
mod unusual_remotes;
mod validate;
mod worker;
mod worker_crashes;
mod worker_stopping;

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Whether `parent` (a module's source) declares `mod name;`, whatever its visibility.
fn declares(parent: &Path, name: &str) -> bool {
    let source = std::fs::read_to_string(parent).unwrap_or_default();
    source.lines().any(|line| {
        let line = line.trim();
        let line = match line.strip_prefix("pub") {
            Some(rest) if rest.starts_with(' ') => rest.trim_start(),
            Some(rest) if rest.starts_with('(') => {
                rest.split_once(')').map_or("", |r| r.1.trim_start())
            }
            _ => line,
        };
        line == format!("mod {name};")
    })
}

/// Why `file` (below `tests/`) is not compiled into this binary, if it is not: a file of
/// `tests/it/` must be declared by its parent module (`main.rs` for the top, `<dir>/mod.rs`
/// below); any other `.rs` file under `tests/` would be a test binary of its own.
fn forgotten(tests: &Path, file: &Path) -> Option<String> {
    let it = tests.join("it");
    let shown = file
        .strip_prefix(tests.parent().unwrap())
        .unwrap()
        .display();
    let Ok(inside) = file.strip_prefix(&it) else {
        return Some(format!(
            "{shown} is outside tests/it/: make it a module of tests/it/main.rs"
        ));
    };
    if inside == Path::new("main.rs") {
        return None;
    }
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let dir = file.parent().unwrap();
    // `dir/mod.rs` is the module `dir`, declared by the folder above; `dir/x.rs` is declared by
    // `dir/mod.rs` (or by `main.rs` at the top).
    let (name, parent_dir) = if stem == "mod" {
        (
            dir.file_name().unwrap().to_str().unwrap(),
            dir.parent().unwrap(),
        )
    } else {
        (stem, dir)
    };
    let parent = if parent_dir == it {
        it.join("main.rs")
    } else {
        parent_dir.join("mod.rs")
    };
    (!declares(&parent, name)).then(|| {
        format!(
            "{shown} is not a module of the test binary: add `mod {name};` to {}",
            parent
                .strip_prefix(tests.parent().unwrap())
                .unwrap()
                .display()
        )
    })
}

/// A file under `tests/` that is not a module of this binary never runs (or, outside
/// `tests/it/`, builds a test binary of its own): name it.
#[test]
fn test_no_forgotten_test_files() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let forgotten: Vec<String> = rust_files(&tests)
        .iter()
        .filter_map(|file| forgotten(&tests, file))
        .collect();
    assert!(forgotten.is_empty(), "{}", forgotten.join("\n"));
}

//! The layers of the crate and the one way arrows between them (`docs/ARCHITECTURE.md#layers`),
//! kept by a test that reads every `src/**/*.rs`, finds each `crate::<module>` path and fails on
//! an arrow the table below does not allow, naming the file, the line and the arrow.
//!
//! A new top-level module must be given a layer here, or the test fails.
//!
//! `source.rs` reads the module tree and the paths each file names; `graph.rs` turns them into
//! arrows between files and checks what the layers cannot see: no import cycle among the files,
//! the rooms of `grid/` and `worker/` used one way (its `ROOMS` table), those rooms private, and
//! `clap` only in `cli/` and `bin/`.

mod graph;
mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module (a file or folder under `src/`) and its layer.
const MODULES: &[(&str, Layer)] = &[
    // Base: settings, logging, time formats, exit codes; uses nothing above it.
    ("config", Layer::Base),
    ("settings", Layer::Base),
    ("log", Layer::Base),
    ("exit", Layer::Base),
    ("time", Layer::Base),
    ("macros", Layer::Base),
    ("text", Layer::Base),
    // The task contract: formats and rules over bytes and paths. No git, no grid, no docker.
    ("task", Layer::Contract),
    ("fields", Layer::Contract),
    ("layout", Layer::Contract),
    ("node", Layer::Contract),
    ("problem", Layer::Contract),
    ("validate", Layer::Contract),
    // Signed tasks: canonical bytes, allowed signers, verdicts. Pure.
    ("trust", Layer::Contract),
    // Replicated tasks: digests, commitments, when a round seals and settles, reputation. Pure.
    ("quorum", Layer::Contract),
    // Task secrets: age encryption to the grid's recipients, the node's keys, masking. Pure.
    ("secrets", Layer::Contract),
    // Git plumbing: objects, the git binary, the local repository and its hooks.
    ("odb", Layer::Plumbing),
    ("gitcmd", Layer::Plumbing),
    ("repo", Layer::Plumbing),
    ("hooks", Layer::Plumbing),
    // The grid on git: snapshots, transitions, the compare-and-swap loop, reading trees.
    ("grid", Layer::Grid),
    ("exec", Layer::Exec),
    ("worker", Layer::Worker),
    ("dashboard", Layer::Dashboard),
    ("cli", Layer::Cli),
    ("bin", Layer::Cli),
    ("layers", Layer::Cli),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Base,
    Contract,
    Plumbing,
    Grid,
    Exec,
    Worker,
    Dashboard,
    Cli,
}

impl Layer {
    /// The layers this one may use (besides itself).
    fn may_use(self) -> &'static [Layer] {
        use Layer::*;
        match self {
            Base => &[],
            Contract => &[Base],
            // Plumbing knows the shapes it moves (an entry kind, the grid's limits), never the grid.
            Plumbing => &[Contract, Base],
            Grid => &[Contract, Plumbing, Base],
            Exec => &[Contract, Base],
            // The worker reaches git only through the grid.
            Worker => &[Grid, Exec, Contract, Base],
            Dashboard => &[Grid, Contract, Base],
            Cli => &[Base, Contract, Plumbing, Grid, Exec, Worker, Dashboard],
        }
    }
}

/// Arrows that point the wrong way today and are being removed; each (from module, to module)
/// is allowed only while it is listed. Empty this list, do not grow it.
const KNOWN_EXCEPTIONS: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<Layer> {
    MODULES.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`None` for `lib.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// Every `(line, module)` a file names as `crate::module`, including each item of a
/// `use crate::{a, b::c}` group. Comments are skipped: a doc may point anywhere.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let line_at = |offset: usize| code[..offset].matches('\n').count() + 1;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `git_dgrid_crate::`-like names, not the `crate` keyword
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {}
                    _ => continue,
                }
                if (c == ',' && depth == 1) || depth == 0 {
                    let item = group[item_start..i].trim_start();
                    let name = ident(item);
                    if !name.is_empty() {
                        let offset = at + "crate::{".len() + item_start;
                        found.push((line_at(offset), name));
                    }
                    item_start = i + 1;
                }
                if depth == 0 {
                    break;
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push((line_at(at), name));
            }
        }
    }
    found
}

#[test]
fn arrows_between_layers_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut used_exceptions: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let Some(from) = module_of(relative) else {
            continue;
        };
        let Some(from_layer) = layer_of(&from) else {
            wrong.push(format!(
                "src/{}: module {from:?} has no layer in src/layers/mod.rs",
                relative.display()
            ));
            continue;
        };
        if from == "layers" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a readable source file");
        for (line, to) in crate_paths(&text) {
            if to == from || to == "self" || to == "super" {
                continue;
            }
            let Some(to_layer) = layer_of(&to) else {
                wrong.push(format!(
                    "src/{}:{line}: {from} -> {to}: module {to:?} has no layer",
                    relative.display()
                ));
                continue;
            };
            if to_layer == from_layer || from_layer.may_use().contains(&to_layer) {
                continue;
            }
            if let Some(&(f, t)) = KNOWN_EXCEPTIONS
                .iter()
                .find(|(f, t)| *f == from && *t == to)
            {
                *used_exceptions.entry((f, t)).or_default() += 1;
                continue;
            }
            wrong.push(format!(
                "src/{}:{line}: {from} ({from_layer:?}) -> {to} ({to_layer:?}) is not allowed",
                relative.display()
            ));
        }
    }
    for (from, to) in KNOWN_EXCEPTIONS {
        if !used_exceptions.contains_key(&(*from, *to)) {
            wrong.push(format!(
                "KNOWN_EXCEPTIONS lists {from} -> {to}, which no longer occurs: remove it"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn paths_are_found_in_groups_and_comments_are_skipped() {
    let text = "use crate::{grid::x, task::{self, Y}};\n// crate::worker\nlet t = crate::time::rfc3339(now);\n";
    let found = crate_paths(text);
    assert_eq!(
        found,
        vec![(1, "grid".into()), (1, "task".into()), (3, "time".into())]
    );
}

fn source_tree() -> source::Tree {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    source::Tree::read(&src).unwrap_or_else(|e| panic!("the module tree does not read: {e}"))
}

#[test]
fn no_import_cycle_among_the_files() {
    let arrows = graph::arrows(&source_tree());
    let cycles = graph::cycles(&arrows);
    let explain = |group: &Vec<String>| {
        let inside: Vec<String> = arrows
            .iter()
            .filter(|a| group.contains(&a.from) && group.contains(&a.to))
            .map(|a| format!("    {}:{} -> {}", a.from, a.line, a.to))
            .collect();
        format!("{}\n{}", group.join(", "), inside.join("\n"))
    };
    let text: Vec<String> = cycles.iter().map(explain).collect();
    assert!(
        cycles.is_empty(),
        "import cycles among files:\n{}",
        text.join("\n")
    );
}

#[test]
fn rooms_of_grid_and_worker_point_one_way() {
    let wrong = graph::wrong_room_arrows(&graph::arrows(&source_tree()));
    assert!(
        wrong.is_empty(),
        "arrows against the rooms:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn rooms_are_private_behind_their_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let wrong = graph::public_rooms(&src);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn clap_is_used_only_in_cli_and_bin() {
    let wrong = graph::clap_outside_cli(&source_tree());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_cycle_is_found_and_named() {
    let arrow = |from: &str, to: &str| graph::Arrow {
        from: from.into(),
        to: to.into(),
        line: 1,
        from_module: vec![from.into()],
        to_module: vec![to.into()],
    };
    let arrows = [
        arrow("a", "b"),
        arrow("b", "c"),
        arrow("c", "a"),
        arrow("c", "d"),
    ];
    assert_eq!(
        graph::cycles(&arrows),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
    assert!(graph::cycles(&arrows[1..]).is_empty());
}

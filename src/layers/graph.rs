//! The arrows between the files of `src/` (`docs/ARCHITECTURE.md#layers`): no import cycle among
//! them, the rooms of `grid/` and `worker/` used one way by their own arrow table, the rooms
//! private behind their folder's `mod.rs`, and `clap` only in `cli/` and `bin/`.
//!
//! An arrow is a path a file names (`source::Tree::named_in`) landing in another file
//! (`Tree::file_of`, through `pub use` re-exports to where the item is defined). Arrows between a
//! module and its own ancestors or descendants do not count: a folder's `mod.rs` declares its
//! children and shows their items, and a child may use what its folder's `mod.rs` defines.

use super::source::{ModPath, SourceFile, Tree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The rooms of a folder and the rooms each may use (besides itself). A file directly in the
/// folder (e.g. `grid/testkit.rs`) is a room of its own name. A room missing here fails the test.
/// A room and the rooms it may use.
type Row = (&'static str, &'static [&'static str]);

pub const ROOMS: &[(&str, &[Row])] = &[
    (
        "grid",
        &[
            ("read", &[]),
            ("engine", &["read"]),
            ("policy", &["read"]),
            ("rules", &["read"]),
            ("replicated", &["rules", "read", "engine", "policy"]),
            ("plan", &["replicated", "rules", "read", "engine", "policy"]),
            ("history", &["plan", "rules", "read", "engine", "policy"]),
            (
                "testkit",
                &[
                    "engine",
                    "read",
                    "plan",
                    "policy",
                    "replicated",
                    "rules",
                    "history",
                ],
            ),
        ],
    ),
    (
        "worker",
        &[
            ("policy", &[]),
            ("state", &["policy"]),
            ("held", &["policy", "state"]),
            ("remote", &["held", "policy", "state"]),
            ("stopping", &["held", "policy", "state", "remote"]),
        ],
    ),
];

/// Rooms any room may use: the unit tests' kit (`#[cfg(test)]`, so production code cannot).
const ANY_ROOM_MAY_USE: &[&str] = &["testkit"];

/// Modules left out of the graph: the layer tests hold crate paths in their test strings.
const NOT_IN_GRAPH: &[&str] = &["layers"];

/// An arrow between two files; code in a file's inline `mod tests {` is a node of its own
/// (`src/a.rs#tests`): unit tests may use the test kit that uses the file they test.
pub struct Arrow {
    pub from: String,
    pub to: String,
    pub line: usize,
    pub from_module: ModPath,
    pub to_module: ModPath,
}

fn is_within(a: &ModPath, b: &ModPath) -> bool {
    a.len() <= b.len() && b[..a.len()] == a[..]
}

/// Every arrow between two files, the first line of each pair.
pub fn arrows(tree: &Tree) -> Vec<Arrow> {
    let mut seen = BTreeMap::new();
    for file in tree.files.values() {
        if file
            .module
            .first()
            .is_some_and(|m| NOT_IN_GRAPH.contains(&m.as_str()))
        {
            continue;
        }
        for named in tree.named_in(file) {
            let Some(target) = tree.file_of(&named.path) else {
                continue;
            };
            if is_within(&target.module, &named.from) || is_within(&named.from, &target.module) {
                continue;
            }
            let mut from = name(file);
            if named.from != file.module {
                from = format!("{from}#{}", named.from.last().map_or("", String::as_str));
            }
            let key = (from, name(target));
            seen.entry(key)
                .or_insert((named.line, named.from.clone(), target.module.clone()));
        }
    }
    seen.into_iter()
        .map(|((from, to), (line, from_module, to_module))| Arrow {
            from,
            to,
            line,
            from_module,
            to_module,
        })
        .collect()
}

fn name(file: &SourceFile) -> String {
    format!("src/{}", file.relative.display())
}

/// The strongly connected groups of more than one file (Tarjan), each sorted.
pub fn cycles(arrows: &[Arrow]) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for a in arrows {
        next.entry(&a.from).or_default().push(&a.to);
        next.entry(&a.to).or_default();
    }
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(v: &'a str, next: &BTreeMap<&'a str, Vec<&'a str>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &next[v] {
            if !s.index.contains_key(w) {
                visit(w, next, s);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut state = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in next.keys() {
        if !state.index.contains_key(v) {
            visit(v, &next, &mut state);
        }
    }
    state.groups
}

/// The room of a module under `<folder>`, if it is in one: the module just below the folder.
fn room_of<'a>(folder: &str, module: &'a ModPath) -> Option<&'a str> {
    (module.first()? == folder).then(|| module.get(1).map(String::as_str))?
}

/// Arrows between rooms that their folder's table does not allow, and rooms with no row.
pub fn wrong_room_arrows(arrows: &[Arrow]) -> Vec<String> {
    let mut wrong = BTreeSet::new();
    for (folder, rooms) in ROOMS {
        let row = |room: &str| rooms.iter().find(|(r, _)| *r == room).map(|(_, may)| *may);
        for a in arrows {
            let from = room_of(folder, &a.from_module);
            let to = room_of(folder, &a.to_module);
            for room in [from, to].into_iter().flatten() {
                if row(room).is_none() {
                    wrong.insert(format!("src/{folder}/{room}: a room with no row in ROOMS"));
                }
            }
            let (Some(from), Some(to)) = (from, to) else {
                continue;
            };
            let allowed = row(from).unwrap_or(&[]).contains(&to) || ANY_ROOM_MAY_USE.contains(&to);
            if from != to && !allowed {
                wrong.insert(format!(
                    "{}:{}: {folder} room {from} -> {to} is not allowed",
                    a.from, a.line
                ));
            }
        }
    }
    wrong.into_iter().collect()
}

/// `pub mod` declarations in the folders whose `mod.rs` is their only public surface.
pub fn public_rooms(src: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for (folder, _) in ROOMS {
        let file = src.join(folder).join("mod.rs");
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("pub mod ") {
                wrong.push(format!(
                    "src/{folder}/mod.rs:{}: `{}`: rooms are private, show items with `pub use`",
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    wrong
}

/// Files outside `cli/` and `bin/` that name `clap`.
pub fn clap_outside_cli(tree: &Tree) -> Vec<String> {
    let mut wrong = Vec::new();
    for file in tree.files.values() {
        let first = file.module.first().map(String::as_str);
        if matches!(first, Some("cli" | "bin" | "layers")) {
            continue;
        }
        for (i, line) in file.code.lines().enumerate() {
            let named = line.match_indices("clap").any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + 4..].chars().next();
                let ident =
                    |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                !ident(before) && !ident(after) && !line[..at].contains('"')
            });
            if named {
                wrong.push(format!(
                    "{}:{}: clap outside cli/ and bin/",
                    name(file),
                    i + 1
                ));
            }
        }
    }
    wrong
}

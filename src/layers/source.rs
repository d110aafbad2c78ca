//! The crate's source as the layer tests see it: the module tree (which file is which module,
//! followed from `lib.rs` through `mod` declarations and `#[path]` attributes), and every path a
//! file names (`crate::…`, `super::…`, `self::…`, a child module's `name::…`), with `use` groups
//! expanded and `pub use` re-exports followed to the file that defines the item.
//!
//! It reads text, not a parsed syntax tree: comments are cut at `//`, and an inline `mod NAME {`
//! (the unit tests at the end of a file) is taken to run to the end of the file. That is how this
//! crate writes its files; the tests built on it fail loudly when a file cannot be placed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A module's path from the crate root, e.g. `["grid", "plan", "cycle"]`.
pub type ModPath = Vec<String>;

/// One file of the crate.
pub struct SourceFile {
    /// Relative to `src/`, e.g. `grid/plan/cycle.rs`.
    pub relative: PathBuf,
    pub module: ModPath,
    /// The code with comments cut.
    pub code: String,
}

/// A path named in a file, made absolute.
pub struct Named {
    pub line: usize,
    pub path: ModPath,
    /// The module naming it: the file's, or its inline `mod NAME {`.
    pub from: ModPath,
}

/// Every file reached from `lib.rs`, by module path.
pub struct Tree {
    pub files: BTreeMap<ModPath, SourceFile>,
    /// `pub use` items of each module: item name -> the absolute path it re-exports.
    reexports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
}

impl Tree {
    /// Reads the tree under `src`; the error names a `mod` whose file is missing.
    pub fn read(src: &Path) -> Result<Tree, String> {
        let mut tree = Tree {
            files: BTreeMap::new(),
            reexports: BTreeMap::new(),
        };
        tree.add(src, PathBuf::from("lib.rs"), Vec::new())?;
        let mut reexports = BTreeMap::new();
        for (module, file) in &tree.files {
            let mut items = BTreeMap::new();
            for (text, _) in statements(&file.code, "pub use ")
                .into_iter()
                .chain(statements(&file.code, "pub(crate) use "))
                .chain(statements(&file.code, "pub(super) use "))
            {
                for (path, alias) in use_tree(&text) {
                    if let Some(abs) = absolute(module, &children(&file.code), &path) {
                        items.insert(alias, abs);
                    }
                }
            }
            reexports.insert(module.clone(), items);
        }
        tree.reexports = reexports;
        Ok(tree)
    }

    fn add(&mut self, src: &Path, relative: PathBuf, module: ModPath) -> Result<(), String> {
        let text = std::fs::read_to_string(src.join(&relative))
            .map_err(|e| format!("src/{}: {e}", relative.display()))?;
        let code = strip_comments(&text);
        let dir = relative.parent().unwrap_or(Path::new("")).to_path_buf();
        let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Children of `lib.rs` and `mod.rs` sit beside them; those of `a.rs` in `a/`.
        let child_dir = if name == "lib.rs" || name == "mod.rs" || module.is_empty() {
            dir.clone()
        } else {
            dir.join(name.trim_end_matches(".rs"))
        };
        for (child, path_attr) in declared_children(&code) {
            let file = match path_attr {
                Some(p) => dir.join(p),
                None if src.join(&child_dir).join(format!("{child}.rs")).exists() => {
                    child_dir.join(format!("{child}.rs"))
                }
                None => child_dir.join(&child).join("mod.rs"),
            };
            let mut child_module = module.clone();
            child_module.push(child);
            self.add(src, file, child_module)?;
        }
        self.files.insert(
            module.clone(),
            SourceFile {
                relative,
                module,
                code,
            },
        );
        Ok(())
    }

    /// The file a module path lands in: its longest prefix that is a module, following a `pub use`
    /// of the next segment to where the item comes from (a few hops at most).
    pub fn file_of(&self, path: &[String]) -> Option<&SourceFile> {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let prefix = (0..=path.len())
                .rev()
                .find(|&n| self.files.contains_key(&path[..n]))?;
            let module = &path[..prefix];
            let next = path.get(prefix);
            match next.and_then(|item| self.reexports.get(module)?.get(item)) {
                Some(target) if target != &path[..=prefix] => {
                    let mut followed = target.clone();
                    followed.extend_from_slice(&path[prefix + 1..]);
                    path = followed;
                }
                _ => return self.files.get(module),
            }
        }
        None
    }

    /// Every path a file names, absolute; inline `mod NAME {` code counts as that child's.
    pub fn named_in(&self, file: &SourceFile) -> Vec<Named> {
        let (outer, inner) = match inline_module(&file.code) {
            Some((at, name)) => {
                let mut module = file.module.clone();
                module.push(name);
                (&file.code[..at], Some((at, module)))
            }
            None => (&file.code[..], None),
        };
        let mut found = Vec::new();
        let mut scan = |code: &str, module: &ModPath, offset: usize| {
            let kids = children(code);
            for (at, path) in path_starts(code) {
                let line = file.code[..offset + at].matches('\n').count() + 1;
                for (p, _) in use_tree(&path) {
                    if let Some(abs) = absolute(module, &kids, &p) {
                        let from = module.clone();
                        found.push(Named {
                            line,
                            path: abs,
                            from,
                        });
                    }
                }
            }
        };
        scan(outer, &file.module, 0);
        if let Some((at, module)) = inner {
            scan(&file.code[at..], &module, at);
        }
        found
    }
}

/// `path` made absolute from `module` (`crate`, `super`, `self`, or a child module's name);
/// `None` for other crates and local names.
fn absolute(module: &ModPath, children: &[String], path: &[String]) -> Option<ModPath> {
    let first = path.first()?;
    let mut abs = module.clone();
    let mut rest = path;
    match first.as_str() {
        "crate" => {
            abs.clear();
            rest = &path[1..];
        }
        "self" => rest = &path[1..],
        "super" => {
            while rest.first().is_some_and(|s| s == "super") {
                abs.pop()?;
                rest = &rest[1..];
            }
        }
        name if children.iter().any(|c| c == name) => {}
        _ => return None,
    }
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(abs)
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `mod NAME;` declarations, each with its `#[path = "…"]` if the line before has one.
fn declared_children(code: &str) -> Vec<(String, Option<String>)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
        let t = t.strip_prefix("pub(super) ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("mod ") else {
            continue;
        };
        let Some(name) = rest.strip_suffix(';') else {
            continue;
        };
        let attr = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim().starts_with("#["))
            .find_map(|l| {
                let a = l.trim().strip_prefix("#[path = \"")?;
                Some(a.split('"').next()?.to_string())
            });
        out.push((name.trim().to_string(), attr));
    }
    out
}

fn children(code: &str) -> Vec<String> {
    declared_children(code)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Where the first inline `mod NAME {` starts, and its name.
fn inline_module(code: &str) -> Option<(usize, String)> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("mod ") {
            if let Some(name) = rest.strip_suffix('{') {
                return Some((offset, name.trim().to_string()));
            }
        }
        offset += line.len();
    }
    None
}

/// The text of each statement that starts with `keyword` at the start of a line, to its `;`.
fn statements(code: &str, keyword: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        if line.trim_start().starts_with(keyword) {
            let start = offset + (line.len() - line.trim_start().len()) + keyword.len();
            let end = code[start..].find(';').map_or(code.len(), |e| start + e);
            out.push((code[start..end].to_string(), start));
        }
        offset += line.len();
    }
    out
}

/// Each place a path starts (an identifier followed by `::`, not itself after `::`), with the
/// text of the path and any `{…}` group after it.
fn path_starts(code: &str) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        let starts_ident = is_ident(c) && (i == 0 || !is_ident(bytes[i - 1] as char));
        if !starts_ident {
            i += 1;
            continue;
        }
        let end = code[i..]
            .find(|c: char| !is_ident(c))
            .map_or(code.len(), |e| i + e);
        let after_colons = code[..i].trim_end().ends_with("::");
        if !after_colons && code[end..].starts_with("::") {
            let len = path_len(&code[i..]);
            out.push((i, code[i..i + len].to_string()));
            i += len.max(1);
        } else {
            i = end;
        }
    }
    out
}

/// The length of a path with its groups: identifiers, `::`, and balanced `{…}`.
fn path_len(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            c if depth > 0 || is_ident(c) || c == ':' || c == '*' => {}
            _ => return i,
        }
    }
    text.len()
}

/// The leaves of a use tree (`a::b::{c, d::{e as f, self}}`), each with the name it is known by.
pub fn use_tree(text: &str) -> Vec<(ModPath, String)> {
    let mut out = Vec::new();
    expand(text.trim(), &mut Vec::new(), &mut out);
    out
}

fn expand(text: &str, prefix: &mut ModPath, out: &mut Vec<(ModPath, String)>) {
    let text = text.trim();
    if let Some(group) = text.strip_prefix('{') {
        let inner = group.strip_suffix('}').unwrap_or(group);
        for item in split_top(inner) {
            let mut p = prefix.clone();
            expand(item, &mut p, out);
        }
        return;
    }
    match text.split_once("::") {
        Some((head, rest)) => {
            prefix.push(head.trim().to_string());
            expand(rest, prefix, out);
        }
        None => {
            let (name, alias) = match text.split_once(" as ") {
                Some((n, a)) => (n.trim(), a.trim()),
                None => (text, text),
            };
            let name: String = name.chars().take_while(|&c| is_ident(c)).collect();
            if name.is_empty() {
                if !prefix.is_empty() {
                    let last = prefix.last().cloned().unwrap_or_default();
                    out.push((prefix.clone(), last));
                }
                return;
            }
            let mut path = prefix.clone();
            if name != "self" {
                path.push(name.clone());
            }
            let alias = if alias == "self" {
                path.last().cloned().unwrap_or_default()
            } else {
                alias.chars().take_while(|&c| is_ident(c)).collect()
            };
            out.push((path, alias));
        }
    }
}

/// Splits at the commas outside nested braces.
fn split_top(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> ModPath {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn use_trees_expand_groups_and_aliases() {
        let leaves = use_tree("crate::{grid::{a, b::C as D}, task::{self, Y}}");
        let got: Vec<(String, String)> = leaves
            .iter()
            .map(|(p, a)| (p.join("::"), a.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("crate::grid::a".into(), "a".into()),
                ("crate::grid::b::C".into(), "D".into()),
                ("crate::task".into(), "task".into()),
                ("crate::task::Y".into(), "Y".into()),
            ]
        );
    }

    #[test]
    fn paths_start_at_roots_and_children_and_resolve_from_the_module() {
        let code = "mod kid;\nuse super::x::Y;\nlet t = crate::time::rfc3339(now);\nkid::go();\nstd::mem::take(a);\n";
        let module = strings(&["grid", "plan"]);
        let kids = children(code);
        let abs: Vec<String> = path_starts(code)
            .into_iter()
            .flat_map(|(_, p)| use_tree(&p))
            .filter_map(|(p, _)| absolute(&module, &kids, &p))
            .map(|p| p.join("::"))
            .collect();
        assert_eq!(
            abs,
            vec!["grid::x::Y", "time::rfc3339", "grid::plan::kid::go"]
        );
    }
}

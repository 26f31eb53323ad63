//! The crate's shape, checked: the top-level modules under `src/` import each other
//! in one direction only (no cycle), and no source file is over 500 lines once its
//! test module is set aside. `scripts/layers.sh` prints the graph this test reads.
//!
//! An import is any `crate::NAME` path in a module's files (in `use` trees too),
//! outside its `#[cfg(test)] mod` blocks and test-only files; the binaries in
//! `src/bin/` are the crate's users, not layers, and are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 500;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
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

/// The top-level module a file belongs to; `None` for the crate root and binaries.
fn layer(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_owned()),
    }
}

fn is_test_file(file: &Path) -> bool {
    matches!(
        file.file_name().and_then(|n| n.to_str()),
        Some("tests.rs" | "fuzz_tests.rs")
    )
}

/// The file without its trailing `#[cfg(test)] mod …` block.
fn non_test_part(text: &str) -> &str {
    let mut search = 0;
    while let Some(at) = text[search..].find("#[cfg(test)]") {
        let start = search + at;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod ") || rest.starts_with("pub(crate) mod ") {
            return &text[..start];
        }
        search = start + 1;
    }
    text
}

/// The first name of every `crate::` path, including each branch of a `use` tree.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut token = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                // Only the first word of each top-level branch names a module.
                if depth == 1 && c == ',' {
                    names.extend(first_word(&token));
                    token.clear();
                } else if depth == 1 && c != '}' {
                    token.push(c);
                }
            }
            names.extend(first_word(&token));
        } else {
            names.extend(first_word(rest));
        }
    }
    names
}

fn first_word(s: &str) -> Option<String> {
    let word: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty() && word != "self").then_some(word)
}

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The import graph of the top-level modules, and the files over the line limit.
fn graph() -> (Graph, Vec<(PathBuf, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut long = Vec::new();
    for file in files {
        if is_test_file(&file) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        let code = non_test_part(&text);
        let lines = code.lines().count();
        if lines > MAX_LINES {
            long.push((file.clone(), lines));
        }
        let Some(me) = layer(&src, &file) else {
            continue;
        };
        let entry = edges.entry(me.clone()).or_default();
        entry.extend(crate_imports(code).into_iter().filter(|n| *n != me));
    }
    (edges, long)
}

/// A cycle through the graph, if there is one (depth-first search).
fn find_cycle(edges: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let (edges, _) = graph();
    println!("\nimports between top-level modules:");
    for (module, imports) in &edges {
        let list: Vec<&str> = imports.iter().map(String::as_str).collect();
        println!("{module} -> {}", list.join(" "));
    }
    if let Some(cycle) = find_cycle(&edges) {
        panic!(
            "import cycle between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn no_source_file_is_over_500_lines() {
    let (_, long) = graph();
    let shown: Vec<String> = long
        .iter()
        .map(|(f, n)| format!("{} ({n} lines)", f.display()))
        .collect();
    assert!(
        shown.is_empty(),
        "over {MAX_LINES} lines: {}",
        shown.join(", ")
    );
}

#[test]
fn the_checks_see_what_they_must() {
    let code = "use crate::a::{b, c::{d, e}};\nuse crate::{f::g, h, i::{j, k}};\nlet x = crate::l::m();\n#[cfg(test)]\nmod tests { use crate::z; }";
    let names: Vec<String> = crate_imports(non_test_part(code)).into_iter().collect();
    assert_eq!(names, ["a", "f", "h", "i", "l"]);
    let mut edges = BTreeMap::new();
    edges.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    edges.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    assert_eq!(find_cycle(&edges), None);
    edges.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        find_cycle(&edges).unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
}

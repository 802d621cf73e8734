//! The crate's layering, checked: no import cycle among the modules above the protocol core (`config`, `call`,
//! `io`, `store`, `routing`, `twilio`). Each module's non-test source is read for `crate::<module>` paths (and
//! `use crate::{a, b}` groups); an edge is "module A names module B". The graph is printed:
//!
//! ```sh
//! cargo test --test layers -- --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules whose imports must form no cycle.
const LAYERED: &[&str] = &["config", "call", "io", "store", "routing", "twilio"];

/// Every top-level module of the crate this check knows, so `crate::x` is only counted for real modules.
const MODULES: &[&str] = &[
    "admin", "agent", "call", "cli", "client", "clock", "config", "daemon", "e164", "io", "media", "metrics",
    "routing", "sdp", "sip", "store", "twilio",
];

/// The source of one file without its `#[cfg(test)] mod tests { … }` (test code may reach anywhere).
fn without_tests(src: &str) -> &str {
    match src.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &src[..i],
        None => src,
    }
}

/// The modules a piece of source names through `crate::`.
fn named(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            for part in inner.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out.retain(|m| MODULES.contains(&m.as_str()));
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file of test code (which may reach anywhere): `tests.rs`, `*_tests.rs`, or any file under a `tests/`
/// folder.
fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || rel.components().any(|c| c.as_os_str() == "tests")
}

/// Module -> the modules its non-test code names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if !MODULES.contains(&top.as_str()) || is_test_file(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let names = named(without_tests(&text));
        edges.entry(top.clone()).or_default().extend(names.into_iter().filter(|m| *m != top));
    }
    edges
}

/// The cycles among `LAYERED` (each as the path that closes it).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn walk(
        edges: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        path: &mut Vec<String>,
        found: &mut BTreeSet<Vec<String>>,
    ) {
        let last = path.last().unwrap().clone();
        for next in edges.get(&last).into_iter().flatten().filter(|m| LAYERED.contains(&m.as_str())) {
            if next == start {
                let mut cycle = path.clone();
                // One rotation per cycle: start from its smallest module.
                let min = cycle.iter().enumerate().min_by_key(|(_, m)| (*m).clone()).map(|(i, _)| i).unwrap();
                cycle.rotate_left(min);
                found.insert(cycle);
            } else if !path.contains(next) {
                path.push(next.clone());
                walk(edges, start, path, found);
                path.pop();
            }
        }
    }
    let mut found = BTreeSet::new();
    for start in LAYERED {
        walk(edges, start, &mut vec![start.to_string()], &mut found);
    }
    found.into_iter().collect()
}

#[test]
fn the_modules_above_the_protocol_core_import_each_other_without_a_cycle() {
    let edges = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    for m in LAYERED {
        let deps: Vec<&str> =
            edges.get(*m).into_iter().flatten().filter(|d| LAYERED.contains(&d.as_str())).map(String::as_str).collect();
        println!("{m:8} -> {}", deps.join(", "));
    }
    let cycles = cycles(&edges);
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("config".into()).or_default().insert("store".into());
    edges.entry("store".into()).or_default().insert("routing".into());
    edges.entry("routing".into()).or_default().insert("config".into());
    assert_eq!(cycles(&edges), [vec!["config".to_string(), "store".into(), "routing".into()]]);
    assert_eq!(
        named("use crate::{call::X, store::Y};\nlet a = crate::routing::f(); // crate::nothing"),
        ["call", "routing", "store"].into_iter().map(String::from).collect()
    );
    assert_eq!(named(without_tests("crate::io\n#[cfg(test)]\nmod tests {\n crate::call }")).len(), 1);
}

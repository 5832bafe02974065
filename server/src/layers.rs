//! The layers of `lib.rs`'s `# Layout`, held to the code: a module may use the modules of
//! the layers below its own, never one of its own layer or above. Read from the source, so
//! a new `use` that points up fails here, with the line that does it.

use std::path::Path;

/// Bottom first; `app` is the composition root. Keep in step with `lib.rs`.
const LAYERS: &[&[&str]] = &[
    &["config", "telemetry", "input"],
    &["store"],
    &["progress", "access"],
    &["hub"],
    &["ingest"],
    &["query"],
    &["insight"],
    &["site"],
    &["api"],
    &["demo"],
    &["app"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The product code of a file: what comes before its `#[cfg(test)]` module.
fn product_code(src: &str) -> &str {
    src.find("#[cfg(test)]\nmod ").map_or(src, |i| &src[..i])
}

/// The top-level modules `crate::…` names in `code`, with the line of each.
fn crate_uses(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|s| s.trim())
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let m: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !m.is_empty() {
                    out.push((n + 1, m));
                }
            }
        }
    }
    out
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let p = entry.path();
        if p.is_dir() {
            visit(&p, files);
        } else if p.extension().is_some_and(|e| e == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn layers_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(mine) = layer_of(&top) else {
            continue;
        };
        // Test modules in files of their own (`tests.rs`, `tests/`) may reach anywhere.
        if rel
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs")
        {
            continue;
        }
        seen += 1;
        let text = std::fs::read_to_string(file).expect("read file");
        for (line, used) in crate_uses(product_code(&text)) {
            if let Some(theirs) = layer_of(&used) {
                if used != top && theirs >= mine {
                    wrong.push(format!("{}:{line}: {top} uses {used}", rel.display()));
                }
            }
        }
    }
    assert!(seen > 40, "only {seen} files were read");
    assert!(
        wrong.is_empty(),
        "uses that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_and_nested_uses() {
    let uses = crate_uses(
        "use crate::{store::Store, hub};\nlet x = crate::api::router(); // crate::app\n",
    );
    let names: Vec<&str> = uses.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(names, ["store", "hub", "api"]);
    assert_eq!(uses[2].0, 2);
}

//! Keeps `docs/design/semantics.md` honest: every test it names must exist.
//!
//! Tier: unit (reads files only).

use std::path::Path;

/// References look like `crate/path/file.rs::test_name`; `*` in the name matches any text.
fn references(doc: &str) -> Vec<(String, String)> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|r| {
            r.split_once(".rs::")
                .map(|(file, name)| (format!("{file}.rs"), name.to_string()))
        })
        .collect()
}

fn defines(source: &str, pattern: &str) -> bool {
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    source.split("fn ").skip(1).any(|rest| {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if pattern.contains('*') {
            name.starts_with(prefix) && name.ends_with(suffix)
        } else {
            name == pattern
        }
    })
}

#[test]
fn every_test_named_in_semantics_md_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/design/semantics.md")).unwrap();
    let refs = references(&doc);
    assert!(
        refs.len() >= 20,
        "semantics.md names only {} tests; the parser is probably broken",
        refs.len()
    );
    let missing: Vec<String> = refs
        .iter()
        .filter(|(file, name)| {
            std::fs::read_to_string(root.join(file)).map_or(true, |src| !defines(&src, name))
        })
        .map(|(file, name)| format!("{file}::{name}"))
        .collect();
    assert!(
        missing.is_empty(),
        "semantics.md names tests that do not exist: {missing:#?}"
    );
}

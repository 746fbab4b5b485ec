//! The README's "Use from Rust tests" example is the crate's doctest, word for word.

fn rust_block_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not found"));
    let rest = &text[start..];
    let open = rest
        .find("```rust\n")
        .or_else(|| rest.find("```\n"))
        .expect("a code block");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("the block ends")].to_owned()
}

#[test]
fn the_readme_example_is_the_doctest() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let lib = std::fs::read_to_string(format!("{root}/src/lib.rs")).unwrap();
    let doc: String = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    let from_readme = rust_block_after(&readme, "## Use from Rust tests");
    let from_doc = rust_block_after(&doc, "# Use from Rust tests");
    assert!(from_readme.contains("Server::builder()"));
    assert_eq!(from_readme, from_doc);
}

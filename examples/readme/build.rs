//! Copies each Rust block of the repository's README into
//! `$OUT_DIR/readme_blocks.rs` as a module: a block with `fn main` as it
//! is, any other inside a function, as rustdoc wraps doctests. Lines
//! rustdoc hides (`# ...`) are kept without their marker.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let readme_path = manifest.join("../../README.md");
    println!("cargo:rerun-if-changed={}", readme_path.display());
    let readme = std::fs::read_to_string(&readme_path).unwrap_or_default();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(lines), text) => lines.push(unhide(text)),
            (None, _) => {}
        }
    }
    let mut out = String::new();
    for (n, block) in blocks.iter().enumerate() {
        let body = block.join("\n");
        let _ = writeln!(out, "mod block_{n} {{");
        if body.contains("fn main(") {
            let _ = writeln!(out, "{body}");
        } else {
            let returns = block
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with("Ok::<"));
            let signature = if returns { " -> plume::Result<()>" } else { "" };
            let _ = writeln!(out, "pub(crate) fn run(){signature} {{\n{body}\n}}");
        }
        let _ = writeln!(out, "}}");
    }
    let _ = writeln!(out, "pub(crate) const BLOCKS: usize = {};", blocks.len());
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("readme_blocks.rs");
    if let Err(error) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {error}", dest.display());
    }
}

/// A line without rustdoc's hiding marker (`# ` or a lone `#`).
fn unhide(line: &str) -> String {
    let trimmed = line.trim_start();
    if trimmed == "#" {
        String::new()
    } else if let Some(rest) = trimmed.strip_prefix("# ") {
        rest.to_owned()
    } else {
        line.to_owned()
    }
}

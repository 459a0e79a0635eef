//! The README's Rust examples, compiled with only `plume` and `tokio` as
//! dependencies (see `Cargo.toml` and `build.rs`). Running it only says
//! how many blocks were built.

#![allow(dead_code, unused_imports, clippy::all, missing_docs, unreachable_pub)]

include!(concat!(env!("OUT_DIR"), "/readme_blocks.rs"));

fn main() {
    println!("{BLOCKS} README blocks build with plume and tokio alone");
}

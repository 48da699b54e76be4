//! Build script: re-embed the diesel migrations (`migrations/sqlite`, `migrations/postgres`)
//! whenever anything under `migrations/` changes.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

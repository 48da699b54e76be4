//! Build script: re-embed the diesel migrations whenever the `migrations/` folder changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

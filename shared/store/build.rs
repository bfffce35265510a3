// The migrations are embedded at build time (refinery): rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

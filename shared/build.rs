//! `adapters::postgres::MIGRATOR` embeds `../migrations` at compile time (`sqlx::migrate!`), and
//! the compiler re-runs that macro only when a file it already knows about changes: a new
//! migration alone would leave the binaries and the tests on the old list. This is the build
//! script sqlx recommends (`sqlx migrate build-script`).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

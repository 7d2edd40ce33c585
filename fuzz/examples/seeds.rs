//! Writes the seed corpora: `cargo +nightly run --example seeds` (from `fuzz/`).

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    ipfs_cluster_fuzz::seeds::write_all(&dir)
}

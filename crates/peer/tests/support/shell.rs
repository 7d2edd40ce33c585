//! Commands the namespace tests run to build their networks (`ip`, `nft`).

use std::process::Command;

/// Runs `args` (program first); whether it succeeded.
pub fn run(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `args`, which must succeed.
pub fn must(args: &[&str]) {
    assert!(run(args), "{args:?} failed");
}

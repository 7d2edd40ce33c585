//! Each scenario in a child process (this binary re-executed), so that the
//! RSS it prints is its own: the parent echoes the child's lines and takes
//! the result from the last one.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scenario::scenario;
use crate::yardstick::{SCENARIOS, Scenario};

/// A child process that runs longer than this is killed.
const CHILD_LIMIT: Duration = Duration::from_secs(300);
/// Marks the machine-readable line a child prints last.
const RESULT: &str = "INGEST_RESULT ";

/// Runs scenario `i` in a child process, echoing its lines; its result.
pub(crate) fn run_child(i: usize) -> Option<Value> {
    let sc = &SCENARIOS[i];
    println!("\n== {} ==", sc.name);
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .env("INGEST_BENCH_CHILD", i.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn scenario process");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + CHILD_LIMIT;
    let mut result = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => match line.strip_prefix(RESULT) {
                Some(r) => result = serde_json::from_str(r).ok(),
                None => println!("{line}"),
            },
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                println!("  !! scenario still running after {CHILD_LIMIT:?}: killed");
                let _ = child.kill();
                break;
            }
        }
    }
    match child.wait() {
        Ok(s) if s.success() => {}
        Ok(s) => println!("  !! scenario process ended with {s}"),
        Err(e) => println!("  !! waiting for the scenario process: {e}"),
    }
    result
}

/// The child's side: runs scenario `sc` with `pins` pins and prints its result.
pub(crate) fn child(sc: &Scenario, pins: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(scenario(sc, pins));
    println!("{RESULT}{result}");
    // Peers are stopped; don't wait for stray blocking tasks.
    runtime.shutdown_timeout(Duration::from_secs(5));
}

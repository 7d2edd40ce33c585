//! Crash-resume of the CRDT walk with a real process kill: a worker applying
//! a signed history to an on-disk replica is SIGKILLed mid-walk, restarted,
//! and must end in exactly the state of an uninterrupted run, having kept
//! every batch it reported durable and holding no half-applied one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crdt_dag::limits::APPLY_BATCH_DELTAS;

const WORKER: &str = env!("CARGO_BIN_EXE_crdt-crash-worker");

fn worker(args: &[&str]) -> Command {
    let mut cmd = Command::new(WORKER);
    cmd.args(args).env_remove("CRASH_WORKER_EVENT_SLEEP_US");
    cmd
}

/// Runs the worker to completion and returns its stdout lines.
fn run(args: &[&str]) -> Vec<String> {
    let Output {
        status,
        stdout,
        stderr,
    } = worker(args).output().expect("spawn worker");
    assert!(
        status.success(),
        "worker {args:?} failed ({status}): {}",
        String::from_utf8_lossy(&stderr)
    );
    String::from_utf8(stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The line starting with `tag `, without the tag.
fn record<'a>(lines: &'a [String], tag: &str) -> &'a str {
    let prefix = format!("{tag} ");
    let found: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "one {tag:?} line expected in {lines:?}");
    found[0]
}

/// The `key=value` fields of a record.
fn fields(rec: &str) -> HashMap<&str, &str> {
    rec.split(' ').filter_map(|f| f.split_once('=')).collect()
}

fn num(fields: &HashMap<&str, &str>, key: &str) -> usize {
    fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {fields:?}"))
        .parse()
        .expect("a number")
}

/// What `done` reports: state hash, pin count, heads.
#[derive(Debug, PartialEq, Eq)]
struct Final {
    hash: String,
    pins: u64,
    heads: String,
}

fn parse_final(rec: &str) -> Final {
    let mut parts = rec.split(' ');
    let mut next = || parts.next().expect("hash pins heads").to_owned();
    Final {
        hash: next(),
        pins: next().parse().expect("pin count"),
        heads: next(),
    }
}

/// Where a round kills the worker: after it printed `after` lines starting
/// with `marker`, plus `delay`. With `event_sleep_us` the worker's event hook
/// dawdles, so a kill soon after a report lands between two batches.
#[derive(Debug)]
struct Kill {
    how: &'static str,
    marker: &'static str,
    after: usize,
    delay: Duration,
    event_sleep_us: Option<u64>,
}

/// What the killed worker had said before it died.
#[derive(Debug)]
struct Killed {
    lines: Vec<String>,
    /// `pending` of its last `applied-batch` line, if it printed one.
    last_pending: Option<usize>,
}

fn spawn_and_kill(dir: &Path, kill: &Kill) -> Killed {
    let mut cmd = worker(&["apply", dir.to_str().expect("utf-8 path"), kill.how]);
    if let Some(us) = kill.event_sleep_us {
        cmd.env("CRASH_WORKER_EVENT_SLEEP_US", us.to_string());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut seen = 0;
    while seen < kill.after {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read worker stdout") == 0 {
            let mut err = String::new();
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            panic!(
                "worker ended before its kill point {kill:?} ({:?}): {lines:?}\n{err}",
                child.wait()
            );
        }
        let line = line.trim_end().to_owned();
        if line.starts_with(kill.marker) {
            seen += 1;
        }
        lines.push(line);
    }
    std::thread::sleep(kill.delay);
    child.kill().expect("SIGKILL the worker");
    let status = child.wait().expect("reap worker");
    // Whatever it managed to print before dying.
    for line in out.lines() {
        lines.push(line.expect("read worker stdout"));
    }
    assert!(
        !status.success(),
        "the worker finished before the kill ({kill:?}): {status}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("done")),
        "the worker was not interrupted ({kill:?}): {lines:?}"
    );
    let last_pending = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("applied-batch "))
        .map(|rec| num(&fields(rec), "pending"));
    Killed {
        lines,
        last_pending,
    }
}

#[test]
fn a_killed_walk_resumes_to_the_uninterrupted_state() {
    let started = Instant::now();
    let work = tempfile::tempdir().expect("tempdir");
    let history = work.path().join("history");
    std::fs::create_dir(&history).expect("mkdir");
    let car = history.join("history.car");

    let prepared = run(&["prepare", history.to_str().expect("utf-8 path")]);
    let prepared = fields(record(&prepared, "prepared"));
    let deltas = num(&prepared, "deltas");
    let prepare_time = started.elapsed();

    // The reference: the same history applied without interruption.
    let fresh = |name: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::copy(&car, dir.join("history.car")).expect("copy the CAR");
        dir
    };
    let dir = fresh("reference");
    let lines = run(&["apply", dir.to_str().expect("utf-8 path"), "car"]);
    let reference = parse_final(record(&lines, "done"));
    assert_eq!(
        reference.hash, prepared["hash"],
        "import reproduces the writers' state"
    );
    assert_eq!(reference.pins, num(&prepared, "pins") as u64);
    assert_eq!(
        reference.heads.split(',').count(),
        num(&prepared, "heads"),
        "heads {}",
        reference.heads
    );
    let batches = lines
        .iter()
        .filter(|l| l.starts_with("applied-batch"))
        .count();
    assert!(
        batches >= 8,
        "the walk should take many batches, took {batches}: {lines:?}"
    );
    let dir = fresh("reference-sync");
    let lines = run(&["apply", dir.to_str().expect("utf-8 path"), "sync"]);
    assert_eq!(
        parse_final(record(&lines, "done")),
        reference,
        "walk = import"
    );
    eprintln!(
        "{deltas} deltas, {} ops, {batches} batches; prepare {prepare_time:?}, references by {:?}",
        prepared["ops"],
        started.elapsed()
    );

    let ms = Duration::from_millis;
    let rounds = [
        // While blocks are being stored pending, before the first batch.
        Kill {
            how: "car",
            marker: "ingesting",
            after: 1,
            delay: ms(150),
            event_sleep_us: None,
        },
        // Early, inside the second batch.
        Kill {
            how: "sync",
            marker: "applied-batch",
            after: 1,
            delay: ms(5),
            event_sleep_us: None,
        },
        // Between two batches: the second is durable and reported, and the
        // hook is still dawdling over its events.
        Kill {
            how: "car",
            marker: "applied-batch",
            after: 2,
            delay: ms(10),
            event_sleep_us: Some(20),
        },
        // Half way, some way into the next batch.
        Kill {
            how: "car",
            marker: "applied-batch",
            after: batches / 2,
            delay: ms(25),
            event_sleep_us: None,
        },
        // Late, right as the next batch starts.
        Kill {
            how: "sync",
            marker: "applied-batch",
            after: batches - 3,
            delay: ms(0),
            event_sleep_us: None,
        },
    ];
    for (i, kill) in rounds.iter().enumerate() {
        let round_started = Instant::now();
        let dir = fresh(&format!("round-{i}"));
        let path = dir.to_str().expect("utf-8 path");
        let killed = spawn_and_kill(&dir, kill);

        let lines = run(&["finish", path]);
        let reopened = fields(record(&lines, "reopened"));
        let (applied, pending) = (num(&reopened, "applied"), num(&reopened, "pending"));
        // Nothing half applied: the store is exactly the effect of the
        // deltas it lists as applied, and its pin count matches its pins.
        assert_eq!(
            reopened["hash"], reopened["replay"],
            "round {i}: state differs from its applied deltas replayed"
        );
        assert_eq!(
            num(&reopened, "pins"),
            num(&reopened, "counted"),
            "round {i}"
        );
        let resumed = record(&lines, "resumed");
        let (resumed_pending, resumed) = resumed.split_once(' ').expect("pending and state");
        let resumed_pending = num(&fields(resumed_pending), "pending");
        let resumed = parse_final(resumed);

        let point = match killed.last_pending {
            None => format!("before the first batch, {pending} blocks pending survived"),
            Some(reported) => {
                // Nothing lost: the first batch's flush made every stored
                // block durable, and every batch reported survived.
                assert_eq!(
                    applied + pending,
                    deltas,
                    "round {i}: blocks lost ({applied} applied + {pending} pending)"
                );
                assert!(
                    pending <= reported,
                    "round {i}: {pending} pending after restart but only {reported} when \
                     the worker reported its last batch durable"
                );
                // The store alone is enough to resume.
                assert_eq!(resumed_pending, 0, "round {i}: left pending");
                assert_eq!(
                    resumed, reference,
                    "round {i}: apply_pending resumed elsewhere"
                );
                let batch = (deltas - reported).div_ceil(APPLY_BATCH_DELTAS);
                if pending == reported {
                    format!(
                        "after batch {batch} of {batches} was reported, before batch {} \
                         was committed",
                        batch + 1
                    )
                } else {
                    format!(
                        "after batch {} of {batches} was committed, before its report \
                         ({} more applied)",
                        batch + 1,
                        reported - pending
                    )
                }
            }
        };
        assert_eq!(
            parse_final(record(&lines, "done")),
            reference,
            "round {i}: the restarted replica differs from the uninterrupted one"
        );
        eprintln!(
            "round {i} ({kill:?}): killed {point}; {} lines before the kill; \
             reopened applied={applied} pending={pending}; {:?}",
            killed.lines.len(),
            round_started.elapsed()
        );
    }
    eprintln!("total {:?}", started.elapsed());
}

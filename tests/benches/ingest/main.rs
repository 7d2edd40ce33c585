//! Go IPFS Cluster's ingest yardstick (`ipfs-cluster-go.md` §8.1) for our
//! peer: 3 peers on loopback, 64 concurrent clients sending
//! `POST /pins/{cid}` (random CIDv1 raw CIDs, replication -1 = everywhere)
//! through the REST API of the first peer. Per scenario it prints pins/s
//! acknowledged with p50/p99 latency, the time until all 3 peers hold every
//! pin, `GET /allocations` of the whole pinset, memory and disk, and how long
//! a new 4th peer takes to hold every pin; then a table beside Go's figures.
//!
//! Each scenario runs in a fresh child process (this binary re-executed), so
//! its RSS is its own; the 3 peers, their HTTP servers and the 64 clients
//! share that process, and the RSS printed is the whole process's.
//!
//! Run with `cargo bench -p cluster-tests --bench ingest`;
//! `INGEST_BENCH_SCALE=0.02` shrinks every size for a smoke run.
//!
//! By idea: [`yardstick`] (the scenarios and Go's figures), [`process`]
//! (one child process a scenario), [`scenario`] (one run), [`node`] (a peer
//! behind its REST API), [`load`] (the clients), [`phase`] (one ingest
//! phase's figures), [`converge`] (waiting until peers agree), [`resources`]
//! (memory and disk) and [`table`] (the comparison with Go).

mod converge;
mod load;
mod node;
mod phase;
mod process;
mod resources;
mod scenario;
mod table;
mod yardstick;

use std::time::Instant;

use serde_json::Value;

use process::{child, run_child};
use table::table;
use yardstick::{CLIENTS, SCENARIOS, scale, scaled};

fn main() {
    let scale = scale();
    if let Ok(i) = std::env::var("INGEST_BENCH_CHILD") {
        let i: usize = i.parse().expect("scenario index");
        child(&SCENARIOS[i], scaled(SCENARIOS[i].pins, scale));
        return;
    }
    println!(
        "ingest bench: 3 peers on 127.0.0.1, {CLIENTS} clients POST /pins/{{cid}} to one peer \
         (INGEST_BENCH_SCALE={scale}; each scenario in its own process)"
    );
    let started = Instant::now();
    let results: Vec<Option<Value>> = (0..SCENARIOS.len()).map(run_child).collect();
    println!();
    table(&results, scale);
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
}

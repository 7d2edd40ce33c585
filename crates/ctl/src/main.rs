//! `ipfs-cluster-ctl`: the command-line client of the IPFS Cluster REST API,
//! with Go IPFS Cluster's commands, flags, output and exit codes. It talks
//! to a peer only through `api::Client` (HTTP), so it must not depend on the
//! peer, the pinset or IPFS.
//!
//! This file owns how a run ends: the exit code and how an error is shown.
//! Go's rules (`checkErr`, `formatResponse` in `cmd/ipfs-cluster-ctl`):
//!
//! | exit | when | printed |
//! |---|---|---|
//! | 0 | success (also when standard output is closed early) | the answer |
//! | 1 | a client-side error: bad arguments, the API unreachable | `error: …` on stderr, or Go's `An error occurred` block with `Code: 0` on stdout when a request could not be made |
//! | 2 | the API answered with an error | Go's `An error occurred` block (or the `{"code","message"}` JSON with `--enc json`) on stdout |
//! | 62 | a deadline passed: `--timeout`, `--wait-timeout` | `error: …` on stderr |
//!
//! Usage errors (unknown flag, missing argument) exit with 1, as Go's
//! urfave/cli does, not clap's 2, which here means an API error.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// jemalloc, as the daemons (spec/config.md §4): listing a big pinset
// allocates per line.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod args;
mod commands;
mod format;
mod parse;

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser as _;

use crate::args::Encoding;
use crate::format::Printer;

/// Go's exit code for a client-side error.
const EXIT_CLIENT_ERROR: u8 = 1;
/// Go's exit code when the API answered with an error.
const EXIT_API_ERROR: u8 = 2;
/// Go's exit code when a deadline passed (ETIME).
const EXIT_DEADLINE: u8 = 62;

/// Why a command failed, beyond a plain client-side error: this decides the
/// exit code and where the error is printed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// An error as Go's client reports it (`api.Error`): `code` is the HTTP
    /// status the API answered with, or 0 when no answer came (connection
    /// refused, bad address), which exits with 1 instead of 2.
    Api {
        /// HTTP status, or 0.
        code: u16,
        /// The API's message, or what went wrong with the request.
        message: String,
    },
    /// A deadline passed (`--timeout`, `--wait-timeout`).
    Deadline(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api { code, message } => write!(f, "{message} (code {code})"),
            Failure::Deadline(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Failure {}

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_CLIENT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.debug);
    let encoding = cli.encoding;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(EXIT_CLIENT_ERROR);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err, encoding),
    }
}

/// `--debug` shows the client's debug logs on stderr; otherwise warnings.
fn init_logging(debug: bool) {
    let filter = if debug { "debug" } else { "warn" };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(debug)
        .try_init();
}

/// Prints the error where Go prints it and picks the exit code.
fn report(err: &anyhow::Error, encoding: Encoding) -> ExitCode {
    if format::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    match err.chain().find_map(|e| e.downcast_ref::<Failure>()) {
        Some(Failure::Api { code, message }) => {
            let mut out = Printer::new(encoding, std::io::stdout().lock(), SystemTime::now());
            if let Err(e) = out.api_error(*code, message)
                && !format::is_broken_pipe(&e)
            {
                eprintln!("error: {message} (code {code})");
            }
            ExitCode::from(if *code == 0 {
                EXIT_CLIENT_ERROR
            } else {
                EXIT_API_ERROR
            })
        }
        Some(Failure::Deadline(_)) => {
            eprint_error(err);
            ExitCode::from(EXIT_DEADLINE)
        }
        None => {
            eprint_error(err);
            ExitCode::from(EXIT_CLIENT_ERROR)
        }
    }
}

fn eprint_error(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err:#}");
}

//! Running a parsed command line: [`Ctx`] resolves the global flags into API
//! clients and a printer, and each command group has its file.
//!
//! Every API call goes through [`Ctx::call`] or [`Ctx::stream`], which try
//! the `--host` addresses in order while one cannot be reached (Go's
//! failover client) and turn client errors into [`Failure`]s.

mod add;
mod health;
mod history;
mod id;
mod ipfs;
mod peers;
mod pin;
mod status;

use std::future::Future;
use std::io::Stdout;
use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use api::{Client, ClientConfig, ClientError};
use clap::CommandFactory as _;
use futures::FutureExt as _;
use futures::stream::{self, BoxStream, StreamExt as _};
use serde::Serialize;

use crate::Failure;
use crate::args::{Cli, Command};
use crate::format::{Kind, Printer};
use crate::parse;

/// The resolved global flags: the API clients and the printer for
/// `--encoding` (apart, so a stream can borrow one while the other prints).
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The clients, one per `--host` address.
    pub(crate) api: Api,
    /// Standard output in the chosen encoding.
    pub(crate) out: Printer<Stdout>,
}

/// One client per `--host` address, tried in order.
pub(crate) struct Api {
    clients: Vec<Client>,
    hosts: Vec<String>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// Runs the command of `cli`.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    if let Command::Commands = cli.command {
        list_commands();
        return Ok(());
    }
    let mut ctx = Ctx::new(&cli)?;
    match cli.command {
        Command::Id => id::id(&mut ctx).await,
        Command::Version => id::version(&mut ctx).await,
        Command::Peers { command } => peers::run(&mut ctx, command).await,
        Command::Add(args) => add::run(&mut ctx, args).await,
        Command::Pin { command } => pin::run(&mut ctx, command).await,
        Command::Status(args) => status::status(&mut ctx, args).await,
        Command::Recover(args) => status::recover(&mut ctx, args).await,
        Command::Health { command } => health::run(&mut ctx, command).await,
        Command::Ipfs { command } => ipfs::run(&mut ctx, command).await,
        Command::History { command } => history::run(&mut ctx, command).await,
        Command::Commands => Ok(()),
    }
}

impl Ctx {
    /// Builds the clients from `--host`, `--basic-auth`, `--timeout`.
    fn new(cli: &Cli) -> Result<Self> {
        if cli.https {
            bail!("--https: this client speaks plain HTTP only (the API serves HTTP)");
        }
        if cli.no_check_certificate {
            bail!(
                "--no-check-certificate is only valid with --https, which this client does not support"
            );
        }
        let basic_auth = cli
            .basic_auth
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse::credentials);
        if basic_auth.is_some() && !cli.force_http {
            // Go switches to HTTPS here; the API speaks HTTP only.
            tracing::warn!(
                "basic auth credentials are sent over plain HTTP; --force-http silences this warning"
            );
        }
        let timeout = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
        let hosts: Vec<String> = cli
            .host
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect();
        if hosts.is_empty() {
            bail!("parsing host multiaddress: no address given");
        }
        let mut clients = Vec::with_capacity(hosts.len());
        for host in &hosts {
            let config = ClientConfig {
                host: host.clone(),
                basic_auth: basic_auth.clone(),
                timeout,
            };
            let client = Client::new(config)
                .map_err(|e| anyhow::anyhow!("parsing host multiaddress {host:?}: {e}"))?;
            clients.push(client);
        }
        let out = Printer::new(cli.encoding, std::io::stdout(), SystemTime::now());
        Ok(Self {
            api: Api { clients, hosts },
            out,
        })
    }
}

impl Api {
    /// One API call, on the first address that can be reached.
    pub(crate) async fn call<'a, T, F, Fut>(&'a self, f: F) -> Result<T>
    where
        F: Fn(&'a Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>> + 'a,
    {
        let mut last = None;
        for client in &self.clients {
            match f(client).await {
                Err(e) if is_unreachable(&e) => last = Some(e),
                other => return other.map_err(failure),
            }
        }
        Err(last
            .map(failure)
            .unwrap_or_else(|| anyhow::anyhow!("no API address to try")))
    }

    /// A streaming API call, on the first address that can be reached (the
    /// next address is tried only if the first item is a connection error).
    pub(crate) async fn stream<'a, T, F>(&'a self, f: F) -> BoxStream<'a, Result<T, ClientError>>
    where
        T: Send + 'a,
        F: Fn(&'a Client) -> BoxStream<'a, Result<T, ClientError>>,
    {
        let mut last = None;
        for client in &self.clients {
            let mut s = f(client);
            match s.next().await {
                Some(Err(e)) if is_unreachable(&e) => last = Some(e),
                // An ended stream must not be polled again.
                None => return stream::empty().boxed(),
                Some(first) => return stream::iter([first]).chain(s).boxed(),
            }
        }
        stream::iter(last.map(Err)).boxed()
    }
}

/// Prints a stream item by item; an error ends it (after the items already
/// printed, as Go does). Items are written in runs: whenever the next one
/// is not ready yet, what is printed so far is written, so a slow stream
/// still shows each item as it arrives.
pub(crate) async fn print_stream<T: Serialize>(
    out: &mut Printer<Stdout>,
    kind: Kind,
    items: BoxStream<'_, Result<T, ClientError>>,
) -> Result<()> {
    print_stream_as(out, kind, items, None).await
}

/// [`print_stream`], in text through `typed` when given
/// ([`Printer::stream_item`]).
pub(crate) async fn print_stream_as<T: Serialize>(
    out: &mut Printer<Stdout>,
    kind: Kind,
    mut items: BoxStream<'_, Result<T, ClientError>>,
    typed: Option<fn(&T) -> String>,
) -> Result<()> {
    loop {
        let next = match items.next().now_or_never() {
            Some(next) => next,
            None => {
                out.write_pending()?;
                items.next().await
            }
        };
        match next {
            Some(Ok(item)) => out.stream_item(kind, &item, typed)?,
            Some(Err(e)) => {
                out.write_pending()?;
                return Err(failure(e));
            }
            None => return out.write_pending(),
        }
    }
}

/// Whether the request never reached an API (so the next `--host` may).
fn is_unreachable(e: &ClientError) -> bool {
    matches!(e, ClientError::Transport(_))
}

/// A client error as the failure that decides the exit code: the API's own
/// errors keep their status (exit 2), a passed `--timeout` is a deadline
/// (62), anything else is Go's code-0 error (exit 1).
pub(crate) fn failure(e: ClientError) -> anyhow::Error {
    let f = match e {
        ClientError::Api { code, message } => Failure::Api { code, message },
        e if e.is_timeout() => Failure::Deadline(format!("the request {e} (--timeout)")),
        e => Failure::Api {
            code: 0,
            message: e.to_string(),
        },
    };
    anyhow::Error::new(f)
}

/// The hidden `commands` command: every command path, one a line.
fn list_commands() {
    fn walk(cmd: &clap::Command, prefix: &str) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let name = format!("{prefix} {}", sub.get_name());
            println!("{name}");
            walk(sub, &name);
        }
    }
    walk(&Cli::command(), "ipfs-cluster-ctl");
}

//! Every flag and command of `ipfs-cluster-ctl`, in one place (clap derive).
//!
//! The names, short forms and aliases are Go IPFS Cluster's
//! (`cmd/ipfs-cluster-ctl/main.go`, urfave/cli v1). As there, the global
//! flags come before the command (`ipfs-cluster-ctl --enc json pin ls`):
//! several short forms are reused by commands (`-f` is `--force-http` at the
//! top and `--file` under `health graph`). These are the raw arguments, only
//! checked for syntax; `commands::Ctx` resolves them into a client.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The REST API address used when `--host` is not given.
pub(crate) const DEFAULT_HOST: &str = "/ip4/127.0.0.1/tcp/9094";

/// The version `-v` prints: the Go IPFS Cluster release this tool is
/// compatible with, which is also what the peer's `GET /version` answers, so
/// `ipfs-cluster-ctl -v` and `ipfs-cluster-ctl version` can be compared as
/// with Go's tools.
pub(crate) const VERSION: &str = "1.1.6";

/// `ipfs-cluster-ctl`: the parsed command line.
#[derive(Parser, Debug)]
#[command(
    name = "ipfs-cluster-ctl",
    about = "CLI for IPFS Cluster",
    long_about = LONG_ABOUT,
    version = VERSION,
    disable_version_flag = true,
)]
pub(crate) struct Cli {
    /// API endpoint multiaddresses (comma-separated; the next is tried
    /// when one cannot be reached). `http://host:port` URLs work too.
    #[arg(short = 'l', long, default_value = DEFAULT_HOST, value_name = "MULTIADDR")]
    pub(crate) host: String,
    /// Cluster secret (32-byte pnet key), only for libp2p endpoints, which
    /// this client does not support: accepted for compatibility.
    #[arg(long, hide = true)]
    pub(crate) secret: Option<String>,
    /// Use https to connect to the API.
    #[arg(short = 's', long)]
    pub(crate) https: bool,
    /// Do not verify the server's TLS certificate (only with --https).
    #[arg(long)]
    pub(crate) no_check_certificate: bool,
    /// Output format encoding.
    #[arg(long = "encoding", visible_alias = "enc", value_enum, default_value_t = Encoding::Text)]
    pub(crate) encoding: Encoding,
    /// Number of seconds to wait before timing out a request (0: never).
    #[arg(short = 't', long, default_value_t = 0, value_name = "SECONDS")]
    pub(crate) timeout: u64,
    /// Set debug log level.
    #[arg(short = 'd', long)]
    pub(crate) debug: bool,
    /// <username>[:<password>]: BasicAuth credentials for an API that
    /// requires them. Implies --https, which --force-http disables.
    #[arg(
        long = "basic-auth",
        env = "CLUSTER_CREDENTIALS",
        value_name = "USER[:PASS]"
    )]
    pub(crate) basic_auth: Option<String>,
    /// Force HTTP: only meaningful together with --basic-auth.
    #[arg(short = 'f', long = "force-http")]
    pub(crate) force_http: bool,
    /// Print version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub(crate) version: Option<bool>,
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

const LONG_ABOUT: &str = "\
ipfs-cluster-ctl is a tool to manage IPFS Cluster nodes.

It uses the IPFS Cluster API to perform requests and display responses in a
user-readable format. The location of the IPFS Cluster server is assumed to be
/ip4/127.0.0.1/tcp/9094, but can be configured with the --host option. If
several multiaddresses are given (comma-separated), requests go to the first
one and fail over to the others.

Exit codes: 0 success, 1 client-side error (bad arguments, API unreachable),
2 the API answered with an error, 62 a deadline passed (--timeout,
--wait-timeout).";

/// `--encoding`: how responses are printed.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Lines a person reads (Go's `formatters.go` layouts).
    Text,
    /// The API's JSON, indented, one value after another.
    Json,
}

/// The commands, named and nested as in Go.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Retrieve peer information.
    Id,
    /// List and manage IPFS Cluster peers.
    Peers {
        #[command(subcommand)]
        command: PeersCommand,
    },
    /// Add a file or directory to ipfs and pin it in the cluster.
    Add(AddArgs),
    /// Pin and unpin and list items in IPFS Cluster.
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
    /// Retrieve the status of tracked items.
    #[command(long_about = STATUS_ABOUT)]
    Status(StatusArgs),
    /// Recover tracked items in error state.
    Recover(RecoverArgs),
    /// Retrieve cluster version.
    Version,
    /// Cluster monitoring information.
    Health {
        #[command(subcommand)]
        command: HealthCommand,
    },
    /// Manage IPFS daemon.
    Ipfs {
        #[command(subcommand)]
        command: IpfsCommand,
    },
    /// Read the signed history of the pinset: heads, the delta log, a CAR
    /// export (for `ipfs-cluster-service state verify`); sign a checkpoint.
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    /// List all commands.
    #[command(hide = true)]
    Commands,
}

const STATUS_ABOUT: &str = "\
Retrieve the status of tracked items.

Without arguments, the status of every pin; with one CID, that pin's; with
several, those pins' (in one request).

--local fetches the status from the contacted peer only. --filter keeps the
items where the status of at least one peer matches one of the values (comma
separated): cluster_error, error, pin_error, pin_queued, pinned, pinning,
queued, remote, sharded, unexpectedly_unpinned, undefined, unpin_error,
unpin_queued, unpinned, unpinning.";

/// `peers …`
#[derive(Subcommand, Debug)]
pub(crate) enum PeersCommand {
    /// List the nodes participating in the IPFS Cluster.
    Ls,
    /// Remove a peer from the Cluster.
    Rm {
        /// The peer ID to remove.
        #[arg(value_name = "PEER_ID")]
        peer: String,
    },
}

/// `pin …`
#[derive(Subcommand, Debug)]
pub(crate) enum PinCommand {
    /// Pin an item in the cluster.
    Add(PinAddArgs),
    /// Unpin an item from the cluster.
    Rm(PinRmArgs),
    /// Pin a new item based on an existing one.
    Update(PinUpdateArgs),
    /// List items in the cluster pinset.
    Ls(PinLsArgs),
}

/// The `--wait` family shared by `pin add`, `pin rm` and `pin update`.
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct WaitArgs {
    /// Prevents fetching pin status afterwards (faster, quieter).
    #[arg(long = "no-status", visible_alias = "ns")]
    pub(crate) no_status: bool,
    /// Wait for the pin to reach the minimum replication factor before
    /// returning.
    #[arg(short = 'w', long)]
    pub(crate) wait: bool,
    /// How many peers should reach the desired status to finish waiting
    /// (default: the pin's minimum replication factor; 0: all).
    #[arg(long = "wait-limit", visible_alias = "wl", value_name = "N")]
    pub(crate) wait_limit: Option<usize>,
    /// How long to --wait (a duration such as 30s or 2m; a bare number is
    /// seconds). Default: forever.
    #[arg(long = "wait-timeout", visible_alias = "wt", value_name = "DURATION")]
    pub(crate) wait_timeout: Option<String>,
}

/// `pin add <CID|Path>`
#[derive(Args, Debug)]
pub(crate) struct PinAddArgs {
    /// The CID or IPFS path (/ipfs/…, /ipns/…, /ipld/…) to pin.
    #[arg(value_name = "CID|PATH")]
    pub(crate) target: String,
    /// Sets a custom replication factor (overrides --rmax and --rmin).
    #[arg(short = 'r', long, default_value_t = 0, allow_negative_numbers = true)]
    pub(crate) replication: i32,
    /// Sets the minimum replication factor for this pin.
    #[arg(
        long = "replication-min",
        visible_alias = "rmin",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) replication_min: i32,
    /// Sets the maximum replication factor for this pin.
    #[arg(
        long = "replication-max",
        visible_alias = "rmax",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) replication_max: i32,
    /// Optional comma-separated list of peer IDs.
    #[arg(long, visible_alias = "allocs", value_name = "PEER_IDS")]
    pub(crate) allocations: Option<String>,
    /// Sets a name for this pin.
    #[arg(short = 'n', long, default_value = "")]
    pub(crate) name: String,
    /// Select a way to pin.
    #[arg(long, value_enum, default_value_t = Mode::Recursive)]
    pub(crate) mode: Mode,
    /// Duration after which the pin should be unpinned automatically
    /// (Go syntax: 90s, 1h30m, 2.5h).
    #[arg(long = "expire-in", value_name = "DURATION")]
    pub(crate) expire_in: Option<String>,
    /// Pin metadata: key=value. Can be added multiple times.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) metadata: Vec<String>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `--mode`
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole DAG below the CID.
    Recursive,
    /// Only the block of the CID.
    Direct,
}

/// `pin rm <CID|Path>`
#[derive(Args, Debug)]
pub(crate) struct PinRmArgs {
    /// The CID or IPFS path to unpin.
    #[arg(value_name = "CID|PATH")]
    pub(crate) target: String,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `pin update <existing-CID> <new-CID|Path>`
#[derive(Args, Debug)]
pub(crate) struct PinUpdateArgs {
    /// The pin whose options and allocations are copied.
    #[arg(value_name = "EXISTING_CID")]
    pub(crate) from: String,
    /// The new CID or IPFS path to pin.
    #[arg(value_name = "NEW_CID|PATH")]
    pub(crate) to: String,
    /// Sets a name for this updated pin.
    #[arg(short = 'n', long, default_value = "")]
    pub(crate) name: String,
    /// Duration after which the pin should be unpinned automatically after
    /// updating.
    #[arg(long = "expire-in", value_name = "DURATION")]
    pub(crate) expire_in: Option<String>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

/// `pin ls [CID]`
#[derive(Args, Debug)]
pub(crate) struct PinLsArgs {
    /// Show only this pin.
    #[arg(value_name = "CID")]
    pub(crate) cid: Option<String>,
    /// Comma-separated list of pin types: all, pin, meta-pin,
    /// clusterdag-pin, shard-pin (only when listing all pins).
    #[arg(long, default_value = "all")]
    pub(crate) filter: String,
}

/// `status [CID...]`
#[derive(Args, Debug)]
pub(crate) struct StatusArgs {
    /// CIDs to show (none: all).
    #[arg(value_name = "CID")]
    pub(crate) cids: Vec<String>,
    /// Run the operation only on the contacted peer.
    #[arg(long)]
    pub(crate) local: bool,
    /// Comma-separated list of statuses (see above).
    #[arg(long)]
    pub(crate) filter: Option<String>,
}

/// `recover [CID]`
#[derive(Args, Debug)]
pub(crate) struct RecoverArgs {
    /// The CID to recover (none: every item in error).
    #[arg(value_name = "CID")]
    pub(crate) cid: Option<String>,
    /// Run the operation only on the contacted peer.
    #[arg(long)]
    pub(crate) local: bool,
}

/// `health …`
#[derive(Subcommand, Debug)]
pub(crate) enum HealthCommand {
    /// Create a graph displaying connectivity of cluster peers (DOT).
    Graph {
        /// Sets an output dot-file for the connectivity graph.
        #[arg(short = 'f', long)]
        file: Option<std::path::PathBuf>,
        /// Causes the graph to mark nodes for ipfs peers not directly in the
        /// cluster.
        #[arg(long = "all-ipfs-peers")]
        all_ipfs_peers: bool,
    },
    /// List latest metrics logged by this peer (no name: the metric names).
    Metrics {
        /// The metric, such as freespace or ping.
        #[arg(value_name = "METRIC_NAME")]
        name: Option<String>,
    },
    /// List the latest expired metric alerts.
    Alerts,
    /// Lists bandwidth stats for libp2p protocols.
    Bandwidth,
}

/// `history …` (no Go equivalent: spec/rest-api.md)
#[derive(Subcommand, Debug)]
pub(crate) enum HistoryCommand {
    /// The heads, the state hash, the writers, any fork and the trust
    /// policy in force.
    Heads,
    /// Write the whole applied history as a CAR v1 file (oldest first).
    Export {
        /// The file to write (`-`: standard output). Written whole or not
        /// at all.
        #[arg(value_name = "FILE.car")]
        file: std::path::PathBuf,
    },
    /// Have the peer sign a checkpoint of its current state (the one it
    /// then serves to joining peers and exports from once pruned).
    Checkpoint,
    /// List the signed deltas, newest first.
    Log {
        /// Only the deltas of this writer (a peer ID).
        #[arg(long, value_name = "PEER_ID")]
        writer: Option<String>,
        /// Only deltas signed since this time: RFC 3339, or a duration
        /// ago such as `1h30m`.
        #[arg(long, value_name = "TIME|DURATION")]
        since: Option<String>,
        /// At most this many deltas (0: all).
        #[arg(short = 'n', long, default_value_t = 0)]
        limit: u64,
    },
}

/// `ipfs …`
#[derive(Subcommand, Debug)]
pub(crate) enum IpfsCommand {
    /// Run garbage collection on IPFS repos of cluster peers.
    Gc {
        /// Run the operation only on the contacted peer.
        #[arg(long)]
        local: bool,
    },
}

/// `add <path>...`: every flag Go has (see `commands/add.rs` for how they
/// become the `POST /add` parameters).
#[derive(Args, Debug)]
pub(crate) struct AddArgs {
    /// Files, directories or URLs to add.
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<String>,
    /// Add directory paths recursively.
    #[arg(short = 'r', long)]
    pub(crate) recursive: bool,
    /// Write only hashes to output (one per line).
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Write only final hash to output.
    #[arg(short = 'Q', long)]
    pub(crate) quieter: bool,
    /// Buffer output locally. Produces a valid JSON array with --enc=json.
    #[arg(long = "no-stream")]
    pub(crate) no_stream: bool,
    /// Add to local peer but pin normally.
    #[arg(long)]
    pub(crate) local: bool,
    /// Sets a name for this pin.
    #[arg(short = 'n', long, default_value = "")]
    pub(crate) name: String,
    /// Sets the minimum replication factor for pinning this file.
    #[arg(
        long = "replication-min",
        visible_alias = "rmin",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) replication_min: i32,
    /// Sets the maximum replication factor for pinning this file.
    #[arg(
        long = "replication-max",
        visible_alias = "rmax",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) replication_max: i32,
    /// Duration after which the pin should be unpinned automatically.
    #[arg(long = "expire-in", value_name = "DURATION")]
    pub(crate) expire_in: Option<String>,
    /// Pin metadata: key=value. Can be added multiple times.
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) metadata: Vec<String>,
    /// Optional comma-separated list of peer IDs.
    #[arg(long, visible_alias = "allocs", value_name = "PEER_IDS")]
    pub(crate) allocations: Option<String>,
    /// Do not pin after adding.
    #[arg(long = "no-pin")]
    pub(crate) no_pin: bool,
    /// Wait for the pin to reach the minimum replication factor before
    /// returning.
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long to --wait. Default: forever.
    #[arg(long = "wait-timeout", visible_alias = "wt", value_name = "DURATION")]
    pub(crate) wait_timeout: Option<String>,
    /// Wrap with a directory object (automatic with several paths).
    #[arg(short = 'w', long = "wrap-with-directory")]
    pub(crate) wrap_with_directory: bool,
    /// 'unixfs' (add as unixfs DAG), 'car' (import CAR file).
    #[arg(long, default_value = "unixfs")]
    pub(crate) format: String,
    /// Dag layout to use for dag generation: balanced or trickle.
    #[arg(long, default_value = "")]
    pub(crate) layout: String,
    /// Include files that are hidden. Only takes effect on recursive add.
    #[arg(short = 'H', long)]
    pub(crate) hidden: bool,
    /// 'size-<size>' or 'rabin-<min>-<avg>-<max>'.
    #[arg(short = 's', long, default_value = "size-262144")]
    pub(crate) chunker: String,
    /// Use raw blocks for leaves (experimental).
    #[arg(long = "raw-leaves")]
    pub(crate) raw_leaves: bool,
    /// CID version. Non default implies raw-leaves.
    #[arg(long = "cid-version", default_value_t = 0)]
    pub(crate) cid_version: u32,
    /// Hash function to use. Implies cid-version=1.
    #[arg(long, default_value = "sha2-256")]
    pub(crate) hash: String,
    /// Add the URL using filestore. Implies raw-leaves. (experimental)
    #[arg(long)]
    pub(crate) nocopy: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["ipfs-cluster-ctl"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli,
            Err(e) => panic!("{args:?} did not parse: {e}"),
        }
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_defaults_are_go_defaults() {
        let cli = parse(&["id"]);
        assert_eq!(cli.host, "/ip4/127.0.0.1/tcp/9094");
        assert_eq!(cli.encoding, Encoding::Text);
        assert_eq!(cli.timeout, 0);
        assert!(!cli.debug && !cli.force_http && !cli.https);
        assert!(matches!(cli.command, Command::Id));
    }

    #[test]
    fn global_flags_short_and_long() {
        let cli = parse(&[
            "-l",
            "/ip4/10.0.0.1/tcp/9094",
            "--enc",
            "json",
            "-t",
            "5",
            "-d",
            "-f",
            "--basic-auth",
            "u:p",
            "version",
        ]);
        assert_eq!(cli.host, "/ip4/10.0.0.1/tcp/9094");
        assert_eq!(cli.encoding, Encoding::Json);
        assert_eq!(cli.timeout, 5);
        assert!(cli.debug && cli.force_http);
        assert_eq!(cli.basic_auth.as_deref(), Some("u:p"));
        let cli = parse(&["--encoding=json", "--host", "http://127.0.0.1:1", "id"]);
        assert_eq!(cli.encoding, Encoding::Json);
        assert_eq!(cli.host, "http://127.0.0.1:1");
    }

    #[test]
    fn unknown_encoding_is_rejected() {
        assert!(Cli::try_parse_from(["ipfs-cluster-ctl", "--enc", "yaml", "id"]).is_err());
    }

    #[test]
    fn pin_add_takes_every_go_flag() {
        let cli = parse(&[
            "pin",
            "add",
            "QmFoo",
            "-r",
            "-1",
            "--rmin",
            "2",
            "--replication-max",
            "3",
            "--allocs",
            "a,b",
            "-n",
            "nm",
            "--mode",
            "direct",
            "--expire-in",
            "1h",
            "--metadata",
            "k=v",
            "--metadata",
            "x=y",
            "--ns",
            "-w",
            "--wl",
            "2",
            "--wt",
            "30s",
        ]);
        let Command::Pin {
            command: PinCommand::Add(a),
        } = cli.command
        else {
            panic!("not pin add");
        };
        assert_eq!(a.target, "QmFoo");
        assert_eq!(
            (a.replication, a.replication_min, a.replication_max),
            (-1, 2, 3)
        );
        assert_eq!(a.allocations.as_deref(), Some("a,b"));
        assert_eq!(a.name, "nm");
        assert_eq!(a.mode, Mode::Direct);
        assert_eq!(a.expire_in.as_deref(), Some("1h"));
        assert_eq!(a.metadata, ["k=v", "x=y"]);
        assert!(a.wait.no_status && a.wait.wait);
        assert_eq!(a.wait.wait_limit, Some(2));
        assert_eq!(a.wait.wait_timeout.as_deref(), Some("30s"));
    }

    #[test]
    fn pin_add_long_names() {
        let cli = parse(&[
            "pin",
            "add",
            "--replication",
            "2",
            "--replication-min",
            "1",
            "--rmax",
            "4",
            "--allocations",
            "p",
            "--name",
            "x",
            "--no-status",
            "--wait",
            "--wait-limit",
            "1",
            "--wait-timeout",
            "5",
            "/ipfs/QmFoo/a",
        ]);
        let Command::Pin {
            command: PinCommand::Add(a),
        } = cli.command
        else {
            panic!("not pin add");
        };
        assert_eq!(a.target, "/ipfs/QmFoo/a");
        assert_eq!(
            (a.replication, a.replication_min, a.replication_max),
            (2, 1, 4)
        );
        assert_eq!(a.mode, Mode::Recursive);
    }

    #[test]
    fn pin_rm_update_ls() {
        let cli = parse(&["pin", "rm", "QmA", "--no-status"]);
        assert!(
            matches!(cli.command, Command::Pin { command: PinCommand::Rm(ref r) } if r.target == "QmA" && r.wait.no_status)
        );
        let cli = parse(&[
            "pin",
            "update",
            "QmA",
            "QmB",
            "--name",
            "n",
            "--expire-in",
            "2m",
        ]);
        let Command::Pin {
            command: PinCommand::Update(u),
        } = cli.command
        else {
            panic!("not pin update");
        };
        assert_eq!(
            (u.from.as_str(), u.to.as_str(), u.name.as_str()),
            ("QmA", "QmB", "n")
        );
        let cli = parse(&["pin", "ls"]);
        assert!(
            matches!(cli.command, Command::Pin { command: PinCommand::Ls(ref l) } if l.cid.is_none() && l.filter == "all")
        );
        assert!(Cli::try_parse_from(["ipfs-cluster-ctl", "pin", "update", "QmA"]).is_err());
    }

    #[test]
    fn status_takes_zero_one_or_many_cids() {
        for cids in [&[][..], &["QmA"][..], &["QmA", "QmB", "QmC"][..]] {
            let mut argv = vec!["status", "--local", "--filter", "pinned,error"];
            argv.extend_from_slice(cids);
            let Command::Status(s) = parse(&argv).command else {
                panic!("not status");
            };
            assert_eq!(s.cids, cids);
            assert!(s.local);
            assert_eq!(s.filter.as_deref(), Some("pinned,error"));
        }
    }

    #[test]
    fn health_and_ipfs_commands() {
        let cli = parse(&["health", "graph", "-f", "out.dot", "--all-ipfs-peers"]);
        assert!(matches!(
            cli.command,
            Command::Health { command: HealthCommand::Graph { ref file, all_ipfs_peers: true } }
                if file.as_deref() == Some(std::path::Path::new("out.dot"))
        ));
        let cli = parse(&["health", "metrics", "freespace"]);
        assert!(matches!(
            cli.command,
            Command::Health { command: HealthCommand::Metrics { name: Some(ref n) } } if n == "freespace"
        ));
        assert!(matches!(
            parse(&["ipfs", "gc", "--local"]).command,
            Command::Ipfs {
                command: IpfsCommand::Gc { local: true }
            }
        ));
        assert!(matches!(
            parse(&["recover", "QmA", "--local"]).command,
            Command::Recover(RecoverArgs {
                cid: Some(_),
                local: true
            })
        ));
    }

    #[test]
    fn add_takes_every_go_flag() {
        let cli = parse(&[
            "add",
            "a",
            "b",
            "-r",
            "-q",
            "-Q",
            "--no-stream",
            "--local",
            "-n",
            "x",
            "--rmin",
            "1",
            "--rmax",
            "2",
            "--expire-in",
            "1h",
            "--metadata",
            "a=b",
            "--allocs",
            "p",
            "--no-pin",
            "--wait",
            "--wt",
            "1m",
            "-w",
            "--format",
            "car",
            "--layout",
            "trickle",
            "-H",
            "-s",
            "size-1024",
            "--raw-leaves",
            "--cid-version",
            "1",
            "--hash",
            "blake2b-256",
            "--nocopy",
        ]);
        let Command::Add(a) = cli.command else {
            panic!("not add");
        };
        assert_eq!(a.paths, ["a", "b"]);
        assert!(a.recursive && a.quiet && a.quieter && a.no_stream && a.local && a.no_pin);
        assert!(a.wait && a.wrap_with_directory && a.hidden && a.raw_leaves && a.nocopy);
        assert_eq!((a.format.as_str(), a.layout.as_str()), ("car", "trickle"));
        assert_eq!(
            (a.chunker.as_str(), a.hash.as_str(), a.cid_version),
            ("size-1024", "blake2b-256", 1)
        );
    }
}

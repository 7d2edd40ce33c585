//! `POST /add` parameters (Go's `api.AddParams`, `AddParamsFromQuery` and
//! `ToQueryString`): the pin options plus how the DAG is built.
//!
//! Every Go parameter is read with Go's default. A value that is not valid
//! is a 400 naming the parameter; a valid value this implementation does not
//! do (`shard=true`, `nocopy=true`, content-defined chunkers,
//! hash functions other than sha2-256) is a 501 saying so, before any
//! content is read.

use std::fmt;

use super::{PinOptions, PinQuery};
use crate::ApiError;

/// Go's default chunker (`size-262144`).
pub const DEFAULT_CHUNKER: &str = "size-262144";

/// Go's default chunk size, in bytes.
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

/// The largest chunk boxo accepts: the 2 MiB block limit less 256 bytes of
/// UnixFS framing (`chunker.ChunkSizeLimit`).
pub const MAX_CHUNK_SIZE: usize = 2 * 1024 * 1024 - 256;

/// Go's default hash function.
pub const DEFAULT_HASH: &str = "sha2-256";

/// How a file's leaves are arranged (`layout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddLayout {
    /// `balanced` (or empty): Kubo's default.
    #[default]
    Balanced,
    /// `trickle`.
    Trickle,
}

impl AddLayout {
    /// The query value (`""` for the default, as Go's client sends it).
    pub fn as_str(self) -> &'static str {
        match self {
            AddLayout::Balanced => "",
            AddLayout::Trickle => "trickle",
        }
    }
}

/// What the uploaded files are (`format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AddFormat {
    /// `unixfs` (or empty): files and directories to import.
    #[default]
    Unixfs,
    /// `car`: one CAR file with one root, its blocks imported as they are.
    Car,
}

impl AddFormat {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            AddFormat::Unixfs => "unixfs",
            AddFormat::Car => "car",
        }
    }
}

/// The parameters of `POST /add` (Go's `api.AddParams`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddParams {
    /// How the root is pinned (§1.2 parameters; `pin-update` is ignored, as
    /// in Go).
    pub pin_options: PinOptions,
    /// `local`: Go sends the blocks to the receiving peer's IPFS only.
    pub local: bool,
    /// `recursive`: used by clients when reading directories (the server
    /// imports whatever the upload holds).
    pub recursive: bool,
    /// `hidden`: used by clients (hidden files are in the upload or not).
    pub hidden: bool,
    /// `wrap-with-directory`: the root is a directory holding the upload's
    /// top-level entries.
    pub wrap_with_directory: bool,
    /// `shard` (refused when true: 501).
    pub shard: bool,
    /// `stream-channels` (default true): NDJSON as items are produced;
    /// false buffers and answers one JSON array.
    pub stream_channels: bool,
    /// `format`.
    pub format: AddFormat,
    /// `no-pin`: put the blocks, don't pin the root.
    pub no_pin: bool,
    /// `layout`.
    pub layout: AddLayout,
    /// `chunker` (`size-N`; default `size-262144`).
    pub chunker: String,
    /// `raw-leaves`: true with `cid-version` > 0 unless given explicitly.
    pub raw_leaves: bool,
    /// `progress`: accepted; progress lines are not sent.
    pub progress: bool,
    /// `cid-version` (0 or 1).
    pub cid_version: u8,
    /// `hash` (only `sha2-256`).
    pub hash: String,
    /// `nocopy` (filestore; refused when true: 501).
    pub nocopy: bool,
}

impl Default for AddParams {
    /// Go's `DefaultAddParams()` (with the default pin options).
    fn default() -> Self {
        AddParams {
            pin_options: PinOptions::default(),
            local: false,
            recursive: false,
            hidden: false,
            wrap_with_directory: false,
            shard: false,
            stream_channels: true,
            format: AddFormat::Unixfs,
            no_pin: false,
            layout: AddLayout::Balanced,
            chunker: DEFAULT_CHUNKER.to_string(),
            raw_leaves: false,
            progress: false,
            cid_version: 0,
            hash: DEFAULT_HASH.to_string(),
            nocopy: false,
        }
    }
}

/// The first value of `key`, `""` when absent (Go's `url.Values.Get`).
fn get<'a>(query: &'a [(String, String)], key: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn invalid(param: &str, value: &str, why: impl fmt::Display) -> ApiError {
    ApiError::bad_request(format!("invalid {param} {value:?}: {why}"))
}

fn unsupported(what: impl fmt::Display) -> ApiError {
    ApiError::not_implemented(format!("add: {what} is not supported"))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A boolean parameter: its value, or `default` when absent or empty.
fn bool_param(query: &[(String, String)], name: &str, default: bool) -> Result<bool, ApiError> {
    let v = get(query, name);
    if v.is_empty() {
        return Ok(default);
    }
    parse_go_bool(v).ok_or_else(|| invalid(name, v, "not a boolean"))
}

/// Parses a `chunker` value: the chunk size of `size-N` (`""` and
/// `default` mean Go's default).
///
/// # Errors
/// A 400 naming `chunker` for a malformed value or a size out of range; a
/// 501 for the content-defined chunkers (`rabin...`, `buzhash`).
pub fn parse_chunker(spec: &str) -> Result<usize, ApiError> {
    if spec.is_empty() || spec == "default" {
        return Ok(DEFAULT_CHUNK_SIZE);
    }
    if spec.starts_with("rabin") || spec == "buzhash" {
        return Err(unsupported(format!(
            "chunker {spec:?} (only fixed-size chunkers, size-N)"
        )));
    }
    let Some(n) = spec.strip_prefix("size-") else {
        return Err(invalid(
            "chunker",
            spec,
            "unrecognized chunker option (size-N)",
        ));
    };
    let size: usize = n
        .parse()
        .map_err(|_| invalid("chunker", spec, "the size is not a number"))?;
    if size == 0 {
        return Err(invalid(
            "chunker",
            spec,
            "chunker size must be greater than 0",
        ));
    }
    if size > MAX_CHUNK_SIZE {
        return Err(invalid(
            "chunker",
            spec,
            format!("chunker parameters may not exceed the maximum chunk size of {MAX_CHUNK_SIZE}"),
        ));
    }
    Ok(size)
}

/// Multihash names Go knows that we don't hash with (a 501, not a 400).
const KNOWN_HASHES: &[&str] = &[
    "identity",
    "sha1",
    "sha2-",
    "sha3-",
    "shake-",
    "keccak-",
    "blake2b-",
    "blake2s-",
    "blake3",
    "dbl-sha2-256",
    "murmur3",
    "md5",
    "x11",
    "skein",
    "poseidon",
    "sha256a",
];

fn check_hash(hash: &str) -> Result<(), ApiError> {
    let lower = hash.to_ascii_lowercase();
    if lower == DEFAULT_HASH {
        return Ok(());
    }
    if KNOWN_HASHES.iter().any(|h| lower.starts_with(h)) {
        return Err(unsupported(format!("hash {hash:?} (only sha2-256)")));
    }
    Err(invalid("hash", hash, "hash function name not known"))
}

impl AddParams {
    /// Reads the parameters of `POST /add` from the query, with Go's
    /// defaults (Go's `AddParamsFromQuery`): the pin options
    /// ([`PinOptions::from_query`], `pin-update` dropped), `layout`,
    /// `chunker`, `hash`, `format`, `local`, `recursive`, `hidden`,
    /// `wrap-with-directory`, `shard`, `progress`, `cid-version`,
    /// `raw-leaves` (defaults to true with `cid-version` > 0),
    /// `stream-channels`, `nocopy`, `no-pin`.
    ///
    /// # Errors
    /// A 400 naming the parameter for an invalid value (a pin option, an
    /// unknown layout or format, a malformed chunker, an unknown hash, a
    /// boolean that isn't one of Go's, a CID version other than 0 or 1);
    /// a 501 for what is valid but not done here: `shard=true`, `nocopy=true`, rabin/buzhash chunkers, hashes other
    /// than sha2-256.
    pub fn from_query(query: &[(String, String)]) -> Result<AddParams, ApiError> {
        let mut p = AddParams {
            pin_options: PinOptions::from_query(query)?,
            ..AddParams::default()
        };
        p.pin_options.pin_update = None;

        let layout = get(query, "layout");
        p.layout = match layout {
            "" | "balanced" => AddLayout::Balanced,
            "trickle" => AddLayout::Trickle,
            other => return Err(invalid("layout", other, "balanced or trickle")),
        };

        let chunker = get(query, "chunker");
        if !chunker.is_empty() {
            p.chunker = chunker.to_string();
        }
        let hash = get(query, "hash");
        if !hash.is_empty() {
            p.hash = hash.to_string();
        }
        let format = get(query, "format");
        p.format = match format {
            "" | "unixfs" => AddFormat::Unixfs,
            "car" => AddFormat::Car,
            other => return Err(invalid("format", other, "unixfs or car")),
        };

        p.local = bool_param(query, "local", false)?;
        p.recursive = bool_param(query, "recursive", false)?;
        p.hidden = bool_param(query, "hidden", false)?;
        p.wrap_with_directory = bool_param(query, "wrap-with-directory", false)?;
        p.shard = bool_param(query, "shard", false)?;
        p.progress = bool_param(query, "progress", false)?;

        let version = get(query, "cid-version");
        if !version.is_empty() {
            p.cid_version = match version.parse::<i64>() {
                Ok(0) => 0,
                Ok(1) => 1,
                Ok(_) => return Err(invalid("cid-version", version, "0 or 1")),
                Err(_) => return Err(invalid("cid-version", version, "not an integer")),
            };
        }
        // As go-ipfs: CIDv1 implies raw leaves unless raw-leaves says.
        p.raw_leaves = bool_param(query, "raw-leaves", p.cid_version > 0)?;
        p.stream_channels = bool_param(query, "stream-channels", true)?;
        p.nocopy = bool_param(query, "nocopy", false)?;
        p.no_pin = bool_param(query, "no-pin", false)?;

        // Valid but not done here: said before any content is read.
        parse_chunker(&p.chunker)?;
        check_hash(&p.hash)?;
        if p.shard {
            return Err(unsupported("shard=true (sharded DAGs)"));
        }
        if p.nocopy {
            return Err(unsupported("nocopy=true (the filestore)"));
        }
        Ok(p)
    }

    /// The chunk size of [`AddParams::chunker`].
    ///
    /// # Errors
    /// As [`parse_chunker`].
    pub fn chunk_size(&self) -> Result<usize, ApiError> {
        parse_chunker(&self.chunker)
    }

    /// The parameters as a query (Go's `ToQueryString`): what the client
    /// sends and [`AddParams::from_query`] reads back.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut q = self.pin_options.to_query();
        q.retain(|(k, _)| k != "pin-update");
        let b = |v: bool| v.to_string();
        q.extend([
            ("shard".to_string(), b(self.shard)),
            ("local".to_string(), b(self.local)),
            ("recursive".to_string(), b(self.recursive)),
            ("layout".to_string(), self.layout.as_str().to_string()),
            ("chunker".to_string(), self.chunker.clone()),
            ("raw-leaves".to_string(), b(self.raw_leaves)),
            ("hidden".to_string(), b(self.hidden)),
            (
                "wrap-with-directory".to_string(),
                b(self.wrap_with_directory),
            ),
            ("progress".to_string(), b(self.progress)),
            ("cid-version".to_string(), self.cid_version.to_string()),
            ("hash".to_string(), self.hash.clone()),
            ("stream-channels".to_string(), b(self.stream_channels)),
            ("nocopy".to_string(), b(self.nocopy)),
            ("format".to_string(), self.format.as_str().to_string()),
            ("no-pin".to_string(), b(self.no_pin)),
        ]);
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn empty_query_is_gos_default() {
        let p = AddParams::from_query(&[]).unwrap();
        assert_eq!(p, AddParams::default());
        assert!(p.stream_channels);
        assert_eq!(p.chunk_size().unwrap(), 262_144);
    }

    #[test]
    fn every_parameter_is_read_and_round_trips() {
        let p = AddParams::from_query(&q(&[
            ("name", "n"),
            ("replication-min", "1"),
            ("replication-max", "2"),
            ("meta-a", "b"),
            ("layout", "trickle"),
            ("chunker", "size-1024"),
            ("hash", "SHA2-256"),
            ("format", "unixfs"),
            ("local", "true"),
            ("recursive", "1"),
            ("hidden", "T"),
            ("wrap-with-directory", "True"),
            ("progress", "true"),
            ("cid-version", "1"),
            ("stream-channels", "false"),
            ("no-pin", "true"),
            (
                "pin-update",
                "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
            ),
        ]))
        .unwrap();
        assert_eq!(p.pin_options.name, "n");
        assert_eq!(p.pin_options.pin_update, None, "forced undefined as in Go");
        assert_eq!(p.layout, AddLayout::Trickle);
        assert_eq!(p.chunk_size().unwrap(), 1024);
        assert!(p.local && p.recursive && p.hidden && p.wrap_with_directory && p.progress);
        assert_eq!(p.cid_version, 1);
        assert!(p.raw_leaves, "CIDv1 implies raw leaves");
        assert!(!p.stream_channels);
        assert!(p.no_pin);
        assert_eq!(AddParams::from_query(&p.to_query()).unwrap(), p);
    }

    #[test]
    fn explicit_raw_leaves_wins() {
        let p =
            AddParams::from_query(&q(&[("cid-version", "1"), ("raw-leaves", "false")])).unwrap();
        assert!(!p.raw_leaves);
        let p = AddParams::from_query(&q(&[("raw-leaves", "true")])).unwrap();
        assert!(p.raw_leaves && p.cid_version == 0);
    }

    #[test]
    fn invalid_values_are_400s_naming_the_parameter() {
        for (pairs, needle) in [
            (&[("layout", "sideways")][..], "layout"),
            (&[("format", "zip")][..], "format"),
            (&[("chunker", "size-0")][..], "chunker"),
            (&[("chunker", "size-x")][..], "chunker"),
            (&[("chunker", "size-99999999")][..], "chunker"),
            (&[("chunker", "blocks")][..], "chunker"),
            (&[("hash", "nohash")][..], "hash"),
            (&[("local", "yes")][..], "local"),
            (&[("recursive", "2")][..], "recursive"),
            (&[("hidden", "x")][..], "hidden"),
            (&[("wrap-with-directory", "on")][..], "wrap-with-directory"),
            (&[("shard", "maybe")][..], "shard"),
            (&[("progress", "y")][..], "progress"),
            (&[("cid-version", "2")][..], "cid-version"),
            (&[("cid-version", "one")][..], "cid-version"),
            (&[("raw-leaves", "z")][..], "raw-leaves"),
            (&[("stream-channels", "n")][..], "stream-channels"),
            (&[("nocopy", "no")][..], "nocopy"),
            (&[("no-pin", "nope")][..], "no-pin"),
            (&[("replication-min", "x")][..], "replication-min"),
        ] {
            let e = AddParams::from_query(&q(pairs)).unwrap_err();
            assert_eq!(e.status, 400, "{pairs:?}: {e}");
            assert!(e.message.contains(needle), "{pairs:?}: {}", e.message);
        }
    }

    #[test]
    fn unsupported_values_are_501s() {
        for (pairs, needle) in [
            (&[("shard", "true")][..], "shard"),
            (&[("nocopy", "true")][..], "nocopy"),
            (&[("chunker", "rabin-16-32-64")][..], "rabin"),
            (&[("chunker", "buzhash")][..], "buzhash"),
            (&[("hash", "blake2b-256")][..], "blake2b-256"),
            (&[("hash", "sha2-512")][..], "sha2-512"),
        ] {
            let e = AddParams::from_query(&q(pairs)).unwrap_err();
            assert_eq!(e.status, 501, "{pairs:?}: {e}");
            assert!(e.message.contains(needle), "{pairs:?}: {}", e.message);
            assert!(e.message.contains("not supported"), "{}", e.message);
        }
    }
}

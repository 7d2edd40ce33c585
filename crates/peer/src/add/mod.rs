//! `POST /add` on this peer: the uploaded entries become a UnixFS DAG
//! ([`ipfs_node::unixfs`]) whose blocks go to every destination's IPFS as
//! they are made ([`fanout`]), with Go's `AddedOutput` for each file,
//! then each directory (children first, by name), the root last.
//!
//! Go's naming (`adder/ipfsadd`): an entry's output name is its path in the
//! upload (`dir/sub/a.txt`, `dir`); with `wrap-with-directory` the wrapping
//! root is named `""`. Without wrapping, each top-level entry is imported
//! on its own and the root is the last one (Go's `adderRoot`). A file sent
//! without a name is named by its CID inside a wrapping directory (as Go).
//!
//! Memory: one file chunk at a time plus the blocks it completes, the
//! batches [`fanout`] holds, and the finished entries of the directories
//! still open (their CIDs), never a file.
//!
//! Not done here: pinning (the caller pins the root with [`pin_options`]
//! unless `no_pin`) and allocations (the caller fills them in).

pub(crate) mod car;
pub(crate) mod fanout;

use std::collections::BTreeMap;

use api::ApiError;
use api::service::{AddFile, AddFileKind};
use api::types::{AddFormat, AddLayout, AddParams, AddedOutput, PinOptions};
use bytes::Bytes;
use cid::Cid;
use futures::StreamExt;
use futures::stream::BoxStream;
use ipfs_node::unixfs::{AddOptions, Added, DirBuilder, FileAdder, Layout};
use ipfs_node::{Block, NodeError};

use crate::add::fanout::Fanout;
use tokio::sync::mpsc;

/// The importer options of `params` (chunker `size-N`, layout, CID
/// version, raw leaves, wrapping).
///
/// # Errors
/// A 400 or 501 for a chunker the API would refuse (the server checks
/// first, so only a caller skipping [`AddParams::from_query`] sees it).
pub(crate) fn add_options(params: &AddParams) -> Result<AddOptions, ApiError> {
    Ok(AddOptions {
        chunk_size: params.chunk_size()?,
        cid_version: params.cid_version,
        raw_leaves: Some(params.raw_leaves),
        layout: match params.layout {
            AddLayout::Balanced => Layout::Balanced,
            AddLayout::Trickle => Layout::Trickle,
        },
        wrap_with_directory: params.wrap_with_directory,
        ..AddOptions::default()
    })
}

/// How the added root is pinned: the parameters' pin options (Go's
/// `PinWithOpts(root, params.PinOptions)`), `pin-update` never set.
pub(crate) fn pin_options(params: &AddParams) -> PinOptions {
    let mut opts = params.pin_options.clone();
    opts.pin_update = None;
    opts
}

pub(crate) fn node_error(e: NodeError) -> ApiError {
    match e {
        NodeError::InvalidArgument { .. } | NodeError::TooLarge { .. } => {
            ApiError::bad_request(format!("add: {e}"))
        }
        NodeError::NotImplemented { .. } | NodeError::Unsupported { .. } => {
            ApiError::not_implemented(format!("add: {e}"))
        }
        e => ApiError::internal(format!("add: {e}")),
    }
}

/// Puts one block into IPFS and checks IPFS computed the same CID (the
/// multihash and codec: Kubo answers CIDv1 where ours may be v0).
pub(crate) async fn put<C: ipfs::IpfsConnector>(ipfs: &C, block: Block) -> Result<(), ApiError> {
    let (cid, data) = block.into_parts();
    let got = ipfs
        .block_put(data, cid.codec())
        .await
        .map_err(|e| ApiError::internal(format!("add: putting block {cid} into IPFS: {e}")))?;
    if got.hash() != cid.hash() || got.codec() != cid.codec() {
        return Err(ApiError::internal(format!(
            "add: IPFS stored block {cid} as {got}"
        )));
    }
    Ok(())
}

async fn put_all(dests: &mut Fanout, blocks: &mut Vec<Block>) -> Result<(), ApiError> {
    for block in blocks.drain(..) {
        dests.put(block).await?;
    }
    Ok(())
}

/// Imports one file from its bytes.
async fn add_file(
    dests: &mut Fanout,
    opts: &AddOptions,
    mut data: BoxStream<'static, Result<Bytes, ApiError>>,
) -> Result<Added, ApiError> {
    let mut adder = FileAdder::new(opts).map_err(node_error)?;
    let mut blocks = Vec::new();
    while let Some(chunk) = data.next().await {
        let chunk = chunk?;
        adder
            .push(&chunk, &mut |b| {
                blocks.push(b);
                Ok(())
            })
            .map_err(node_error)?;
        put_all(dests, &mut blocks).await?;
    }
    drop(data);
    let added = adder
        .finish(&mut |b| {
            blocks.push(b);
            Ok(())
        })
        .map_err(node_error)?;
    put_all(dests, &mut blocks).await?;
    Ok(added)
}

/// An entry of a directory being added.
#[derive(Debug)]
enum Entry {
    File(Added),
    Dir(BTreeMap<String, Entry>),
}

/// The directory holding `path`'s last component (parents made as
/// needed), and that component.
fn parent_of<'a, 'p>(
    root: &'a mut BTreeMap<String, Entry>,
    path: &'p str,
) -> Result<(&'a mut BTreeMap<String, Entry>, &'p str), ApiError> {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    let mut dir = root;
    for p in parts {
        let entry = dir
            .entry(p.to_string())
            .or_insert_with(|| Entry::Dir(BTreeMap::new()));
        dir = match entry {
            Entry::Dir(d) => d,
            Entry::File(_) => {
                return Err(ApiError::bad_request(format!(
                    "add: {path:?}: {p:?} is a file, not a directory"
                )));
            }
        };
    }
    Ok((dir, name))
}

/// Writes the directories of `entries` (post-order, by name): their blocks
/// (one, or a HAMT's shards, children first) and outputs in `out`; the
/// directory's own last.
fn write_dirs(
    entries: BTreeMap<String, Entry>,
    path: &str,
    opts: &AddOptions,
    out: &mut Vec<(String, Vec<Block>, Added)>,
) -> Result<Added, ApiError> {
    let mut dir = DirBuilder::new(opts).map_err(node_error)?;
    for (name, entry) in entries {
        let added = match entry {
            Entry::File(a) => a,
            Entry::Dir(sub) => {
                let sub_path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                write_dirs(sub, &sub_path, opts, out)?
            }
        };
        dir.add(&name, added).map_err(node_error)?;
    }
    let mut blocks = Vec::new();
    let added = dir
        .finish(&mut |b| {
            blocks.push(b);
            Ok(())
        })
        .map_err(node_error)?;
    out.push((path.to_string(), blocks, added));
    Ok(added)
}

/// Sends one output; an error when the receiver is gone (the client left).
async fn emit(
    sink: &mpsc::Sender<Result<AddedOutput, ApiError>>,
    name: String,
    added: &Added,
) -> Result<(), ApiError> {
    let out = AddedOutput {
        name,
        cid: added.cid,
        bytes: 0,
        size: added.size,
        allocations: Vec::new(),
    };
    sink.send(Ok(out))
        .await
        .map_err(|_| ApiError::internal("add: the output receiver is gone"))
}

/// Writes and announces the directories under `tree` (a directory named
/// `path`): every block to IPFS, every directory's output.
async fn finish_dir(
    dests: &mut Fanout,
    opts: &AddOptions,
    tree: BTreeMap<String, Entry>,
    path: &str,
    sink: &mpsc::Sender<Result<AddedOutput, ApiError>>,
) -> Result<Added, ApiError> {
    let mut dirs = Vec::new();
    let root = write_dirs(tree, path, opts, &mut dirs)?;
    for (name, mut blocks, added) in dirs {
        put_all(dests, &mut blocks).await?;
        emit(sink, name, &added).await?;
    }
    Ok(root)
}

/// The root of the top-level entry `name` (held alone in `tree`), its
/// directories written and announced.
async fn finish_top(
    dests: &mut Fanout,
    opts: &AddOptions,
    tree: &mut BTreeMap<String, Entry>,
    name: &str,
    sink: &mpsc::Sender<Result<AddedOutput, ApiError>>,
) -> Result<Cid, ApiError> {
    match std::mem::take(tree).remove(name) {
        Some(Entry::File(added)) => Ok(added.cid),
        Some(Entry::Dir(entries)) => Ok(finish_dir(dests, opts, entries, name, sink).await?.cid),
        None => Err(ApiError::internal(format!(
            "add: the top-level entry {name:?} vanished"
        ))),
    }
}

/// The first component of a path.
fn top_of(path: &str) -> &str {
    path.split('/').next().unwrap_or_default()
}

/// Imports `files` as `params` say (Go's `Adder.FromMultipart` with the
/// single DAG service): each block goes to every destination of `dests` as
/// it is made, each [`AddedOutput`] is sent to `sink` as soon as it is
/// known (without allocations). Returns the root (the wrapping directory,
/// or the last top-level entry) once every destination holds every block.
/// Does not pin.
///
/// # Errors
/// An upload error (malformed multipart, a file where a directory is
/// needed: 400s; symlinks: 501s), a destination's IPFS error or CID
/// mismatch, an empty upload (400), or `sink` closed; with `format=car`,
/// those of [`crate::add::car::add_car`]. The error is returned, not sent
/// to `sink`.
pub(crate) async fn add(
    mut dests: Fanout,
    params: &AddParams,
    files: BoxStream<'static, Result<AddFile, ApiError>>,
    sink: mpsc::Sender<Result<AddedOutput, ApiError>>,
) -> Result<Cid, ApiError> {
    let root = if params.format == AddFormat::Car {
        crate::add::car::add_car(&mut dests, params, files, sink).await?
    } else {
        add_unixfs(&mut dests, params, files, sink).await?
    };
    dests.finish().await?;
    Ok(root)
}

/// [`add`] of files (not a CAR).
async fn add_unixfs(
    dests: &mut Fanout,
    params: &AddParams,
    mut files: BoxStream<'static, Result<AddFile, ApiError>>,
    sink: mpsc::Sender<Result<AddedOutput, ApiError>>,
) -> Result<Cid, ApiError> {
    let opts = add_options(params)?;
    let wrap = params.wrap_with_directory;
    // Wrapping: the whole upload. Otherwise: the current top-level entry.
    let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
    let mut current_top: Option<String> = None;
    let mut last_root: Option<Cid> = None;
    while let Some(entry) = files.next().await {
        let AddFile { path, kind } = entry?;
        if !wrap && current_top.as_deref() != Some(top_of(&path)) {
            if let Some(prev) = current_top.take() {
                last_root = Some(finish_top(dests, &opts, &mut tree, &prev, &sink).await?);
            }
            current_top = Some(top_of(&path).to_string());
        }
        match kind {
            AddFileKind::Directory => {
                if path.is_empty() {
                    continue;
                }
                let (dir, name) = parent_of(&mut tree, &path)?;
                match dir.get(name) {
                    Some(Entry::Dir(_)) => {}
                    Some(Entry::File(_)) => {
                        return Err(ApiError::bad_request(format!(
                            "add: {path:?} is both a file and a directory"
                        )));
                    }
                    None => {
                        dir.insert(name.to_string(), Entry::Dir(BTreeMap::new()));
                    }
                }
            }
            AddFileKind::File(data) => {
                let added = add_file(dests, &opts, data).await?;
                emit(&sink, path.clone(), &added).await?;
                // An unnamed file is named by its CID (Go's addNode).
                let key = if path.is_empty() {
                    added.cid.to_string()
                } else {
                    path
                };
                if !wrap && current_top.as_deref() == Some("") {
                    current_top = Some(key.clone());
                }
                let (dir, name) = parent_of(&mut tree, &key)?;
                if matches!(dir.get(name), Some(Entry::Dir(_))) {
                    return Err(ApiError::bad_request(format!(
                        "add: {key:?} is both a directory and a file"
                    )));
                }
                dir.insert(name.to_string(), Entry::File(added));
            }
        }
    }
    drop(files);
    if wrap {
        if tree.is_empty() {
            return Err(ApiError::bad_request("add: the upload holds no files"));
        }
        return Ok(finish_dir(dests, &opts, tree, "", &sink).await?.cid);
    }
    if let Some(prev) = current_top.take() {
        last_root = Some(finish_top(dests, &opts, &mut tree, &prev, &sink).await?);
    }
    last_root.ok_or_else(|| ApiError::bad_request("add: the upload holds no files"))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use futures::stream;
    use ipfs::testing::KuboDaemon;
    use ipfs::{IpfsConnector, KuboConnector};

    use super::*;

    use ipfs::testing::noise;

    /// A file entry whose bytes arrive in pieces of `piece` bytes.
    pub(crate) fn file(path: &str, data: &[u8], piece: usize) -> Result<AddFile, ApiError> {
        let pieces: Vec<Result<Bytes, ApiError>> = data
            .chunks(piece.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Ok(AddFile {
            path: path.to_string(),
            kind: AddFileKind::File(stream::iter(pieces).boxed()),
        })
    }

    pub(crate) fn dir(path: &str) -> Result<AddFile, ApiError> {
        Ok(AddFile {
            path: path.to_string(),
            kind: AddFileKind::Directory,
        })
    }

    pub(crate) fn query(pairs: &[(&str, &str)]) -> AddParams {
        let q: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        AddParams::from_query(&q).unwrap()
    }

    /// Runs an add (a CAR one too: `add` dispatches on `format`), its
    /// outputs drained as it goes.
    pub(crate) async fn run(
        ipfs: &KuboConnector,
        params: &AddParams,
        entries: Vec<Result<AddFile, ApiError>>,
    ) -> (Result<Cid, ApiError>, Vec<AddedOutput>) {
        let dests = Fanout::local(std::sync::Arc::new(ipfs.clone()));
        drained(|tx| add(dests, params, stream::iter(entries).boxed(), tx)).await
    }

    /// Runs an add with its outputs drained while it runs (it waits on a
    /// full channel, as it waits on a slow client): the root and outputs.
    pub(crate) async fn drained<F>(
        add: impl FnOnce(mpsc::Sender<Result<AddedOutput, ApiError>>) -> F,
    ) -> (Result<Cid, ApiError>, Vec<AddedOutput>)
    where
        F: std::future::Future<Output = Result<Cid, ApiError>>,
    {
        let (tx, mut rx) = mpsc::channel::<Result<AddedOutput, ApiError>>(16);
        let collect = tokio::spawn(async move {
            let mut outs = Vec::new();
            while let Some(o) = rx.recv().await {
                outs.push(o.unwrap());
            }
            outs
        });
        let root = add(tx).await;
        (root, collect.await.unwrap())
    }

    fn kubo_hash(kubo: &KuboDaemon, dir: &std::path::Path, args: &[&str]) -> String {
        let mut all = vec!["add", "--only-hash", "-Q"];
        all.extend_from_slice(args);
        let target = dir.to_str().unwrap();
        all.push(target);
        let out = kubo.cli(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn cat(kubo: &KuboDaemon, path: &str) -> Vec<u8> {
        let out = kubo.cli(&["cat", "--offline", path]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The roots equal Kubo's `ipfs add --only-hash` for the same content
    /// and parameters, every block is in Kubo afterwards (`ipfs cat` reads
    /// the input back offline), and the outputs are Go's.
    #[tokio::test(flavor = "multi_thread")]
    async fn roots_match_kubo_and_blocks_land_in_it() {
        let kubo = KuboDaemon::start();
        let ipfs = KuboConnector::new(kubo.config()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let big = noise(700_000, 3);
        let big_path = tmp.path().join("big.bin");
        std::fs::write(&big_path, &big).unwrap();

        // (query parameters, the same as `ipfs add` flags)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (&[], &[]),
            (&[("cid-version", "1")], &["--cid-version=1"]),
            (&[("layout", "trickle")], &["--trickle"]),
            (
                &[("chunker", "size-1000"), ("raw-leaves", "true")],
                &["--chunker=size-1000", "--raw-leaves"],
            ),
        ];
        for (params, flags) in cases {
            let p = query(params);
            let (root, outs) = run(&ipfs, &p, vec![file("big.bin", &big, 10_007)]).await;
            let root = root.unwrap();
            assert_eq!(
                root.to_string(),
                kubo_hash(&kubo, &big_path, flags),
                "{params:?}"
            );
            assert_eq!(outs.len(), 1);
            assert_eq!(outs[0].name, "big.bin");
            assert_eq!(outs[0].cid, root);
            assert!(outs[0].size > big.len() as u64);
            assert_eq!(cat(&kubo, &root.to_string()), big, "{params:?}");
        }

        // A directory tree, as Go's client sends it (the directory part
        // first), and as the JS addDirectory sends it (files only, wrapped).
        let d = tmp.path().join("dir");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a.txt"), b"hello a").unwrap();
        std::fs::write(d.join("sub/b.txt"), b"hello b").unwrap();
        std::fs::create_dir_all(d.join("empty")).unwrap();
        let want = kubo_hash(&kubo, &d, &["-r"]);
        let (root, outs) = run(
            &ipfs,
            &query(&[]),
            vec![
                dir("dir"),
                file("dir/a.txt", b"hello a", 3),
                dir("dir/empty"),
                dir("dir/sub"),
                file("dir/sub/b.txt", b"hello b", 100),
            ],
        )
        .await;
        assert_eq!(root.unwrap().to_string(), want);
        let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["dir/a.txt", "dir/sub/b.txt", "dir/empty", "dir/sub", "dir"]
        );
        assert_eq!(outs.last().unwrap().cid.to_string(), want);
        assert_eq!(cat(&kubo, &format!("{want}/sub/b.txt")), b"hello b");

        let want = kubo_hash(&kubo, &d, &["-r", "-w"]);
        let (root, outs) = run(
            &ipfs,
            &query(&[("wrap-with-directory", "true")]),
            vec![
                file("dir/a.txt", b"hello a", 7),
                dir("dir/empty"),
                file("dir/sub/b.txt", b"hello b", 1),
            ],
        )
        .await;
        assert_eq!(root.unwrap().to_string(), want);
        let names: Vec<&str> = outs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dir/a.txt",
                "dir/sub/b.txt",
                "dir/empty",
                "dir/sub",
                "dir",
                ""
            ]
        );

        // A directory Kubo shards (2000 names of 100 bytes: past 256 KiB of
        // links): the same root, and every shard in Kubo (`refs -r`
        // offline walks the whole DAG).
        let wide = tmp.path().join("wide");
        std::fs::create_dir_all(&wide).unwrap();
        let mut entries = vec![dir("wide")];
        for i in 0..2000 {
            let name = format!("{i:0100}");
            std::fs::write(wide.join(&name), i.to_string()).unwrap();
            entries.push(file(&format!("wide/{name}"), i.to_string().as_bytes(), 1));
        }
        let want = kubo_hash(&kubo, &wide, &["-r"]);
        let (root, outs) = run(&ipfs, &query(&[]), entries).await;
        assert_eq!(root.unwrap().to_string(), want);
        assert_eq!(outs.last().unwrap().name, "wide");
        let refs = kubo.cli(&["refs", "-r", "--offline", "--unique", &want]);
        assert!(
            refs.status.success(),
            "a shard is missing from Kubo: {}",
            String::from_utf8_lossy(&refs.stderr)
        );
        let blocks = String::from_utf8_lossy(&refs.stdout).lines().count();
        assert!(blocks > 2000, "{blocks} blocks below the HAMT");
        assert_eq!(cat(&kubo, &format!("{want}/{:0100}", 1234)), b"1234");

        // Several top-level files without wrapping: the root is the last.
        let (root, outs) = run(
            &ipfs,
            &query(&[]),
            vec![file("x", b"x", 1), file("y", b"yy", 1)],
        )
        .await;
        assert_eq!(root.unwrap(), outs[1].cid);
        assert_eq!(outs.len(), 2);
    }

    /// Upload errors end the add with the error, and the parameters map to
    /// the importer and pin options.
    #[tokio::test(flavor = "multi_thread")]
    async fn errors_and_options() {
        let kubo = KuboDaemon::start();
        let ipfs = KuboConnector::new(kubo.config()).unwrap();
        let (root, _) = run(&ipfs, &query(&[]), vec![]).await;
        assert_eq!(root.unwrap_err().status, 400);
        let (root, _) = run(
            &ipfs,
            &query(&[]),
            vec![file("f", b"1", 1), file("f/g", b"2", 1)],
        )
        .await;
        assert_eq!(root.unwrap_err().status, 400);
        let (root, outs) = run(
            &ipfs,
            &query(&[]),
            vec![
                file("a", b"1", 1),
                Err(ApiError::bad_request("reading the multipart body: cut")),
            ],
        )
        .await;
        assert!(root.unwrap_err().message.contains("cut"));
        assert_eq!(outs.len(), 1);

        let p = query(&[
            ("name", "n"),
            ("replication", "2"),
            ("chunker", "size-4096"),
            ("cid-version", "1"),
            ("layout", "trickle"),
        ]);
        let o = add_options(&p).unwrap();
        assert_eq!(o.chunk_size, 4096);
        assert_eq!(o.cid_version, 1);
        assert_eq!(o.raw_leaves, Some(true));
        assert_eq!(o.layout, Layout::Trickle);
        let pin = pin_options(&p);
        assert_eq!(pin.name, "n");
        assert_eq!(pin.replication_factor_min, 2);

        // A closed sink stops the add.
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let r = tokio::time::timeout(
            Duration::from_secs(30),
            add(
                Fanout::local(std::sync::Arc::new(ipfs.clone())),
                &query(&[]),
                stream::iter(vec![file("a", b"1", 1)]).boxed(),
                tx,
            ),
        )
        .await
        .unwrap();
        assert!(r.is_err());
        assert!(ipfs.id().await.is_ok());
    }
}

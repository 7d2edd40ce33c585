//! `add <path>...`: Go's flags become [`AddParams`] as Go's ctl sets them
//! (`--hash` other than sha2-256 implies CIDv1, CIDv1 and `--nocopy` imply
//! raw leaves, several paths imply `--wrap-with-directory`); the paths are
//! walked as Go's client walks them (a directory's entry before its
//! entries, by name, hidden files only with `--hidden`) and uploaded as a
//! stream; each `AddedOutput` is printed as it arrives (`added <cid>
//! <name>`, `-q` the CID, `-Q` only the last, `--no-stream` all at the end,
//! a JSON array with `--enc json`). `--wait` waits for the last CID to be
//! pinned. On a terminal (standard error), unless `-q`/`-Q`/`--enc json`,
//! a progress bar shows the file being sent, its bytes and blocks, and the
//! files done ([`crate::format::progress`]; Go's ctl has none). `--format car` uploads the (first) file as a CAR to import.
//! What the API doesn't support (`--nocopy`, rabin chunkers, other hashes)
//! comes back as its 501.

use std::io::Stdout;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use api::service::{AddFile, AddFileKind};
use api::types::{AddFormat, AddLayout, AddParams, AddedOutput, PinOptions};
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::stream::{self, BoxStream};
use tokio::io::AsyncReadExt as _;

use super::pin::{Target, wait_for};
use super::{Ctx, failure};
use crate::args::AddArgs;
use crate::format::progress::Progress;
use crate::format::{Kind, Printer};
use crate::parse;

/// Bytes read from a file at a time.
const READ_SIZE: usize = 256 * 1024;

/// One entry of the upload: its path in the upload and on disk, and a
/// file's size (for the progress bar).
#[derive(Debug, Clone)]
struct Entry {
    upload_path: String,
    fs_path: Option<PathBuf>,
    size: Option<u64>,
}

/// Runs `add`.
pub(crate) async fn run(ctx: &mut Ctx, a: AddArgs) -> Result<()> {
    let params = params(&a)?;
    let entries = walk(&a.paths, params.recursive, params.hidden)?;
    let quieter = a.quieter;
    let quiet = a.quiet || quieter;
    let progress = {
        let sizes = entries.iter().filter_map(|e| e.size);
        let chunk = params
            .chunk_size()
            .unwrap_or(api::types::DEFAULT_CHUNK_SIZE);
        Progress::new(
            !quiet && !ctx.out.is_json(),
            sizes.clone().count(),
            sizes.sum(),
            chunk as u64,
        )
    };
    let mut outputs = ctx
        .api
        .stream(|c| c.add(&params, upload(entries.clone(), progress.clone())))
        .await;
    let mut buffered: Vec<AddedOutput> = Vec::new();
    let mut last: Option<AddedOutput> = None;
    while let Some(item) = outputs.next().await {
        let out = match item {
            Ok(out) => out,
            Err(e) => {
                progress.finish();
                return Err(failure(e));
            }
        };
        if a.no_stream {
            buffered.push(out.clone());
        } else if !quieter {
            progress.above(|| print_one(&mut ctx.out, &out, quiet))?;
        }
        last = Some(out);
    }
    progress.finish();
    drop(outputs);
    let Some(last) = last else {
        return Ok(());
    };
    if a.no_stream {
        let shown = if quieter {
            vec![last.clone()]
        } else {
            buffered
        };
        if ctx.out.is_json() {
            ctx.out.list(Kind::Line, &shown)?;
        } else {
            for o in &shown {
                print_one(&mut ctx.out, o, quiet)?;
            }
        }
    } else if quieter {
        print_one(&mut ctx.out, &last, true)?;
    }
    if a.wait {
        // Go waits for the pin's minimum replication (0 or -1: all peers).
        let limit = match ctx.api.call(|c| c.allocation(last.cid)).await {
            Ok(pin) => pin.options.replication_factor_min,
            Err(_) => params.pin_options.replication_factor_min,
        };
        let timeout = match &a.wait_timeout {
            Some(t) => Some(parse::wait_timeout(t).context("parsing wait-timeout")?)
                .filter(|d| !d.is_zero()),
            None => None,
        };
        wait_for(ctx, last.cid, Target::Pinned, timeout, i64::from(limit))
            .await
            .context("waiting for pin status")?;
    }
    Ok(())
}

/// One output line as Go prints it.
fn print_one(p: &mut Printer<Stdout>, out: &AddedOutput, quiet: bool) -> Result<()> {
    if p.is_json() {
        return p.item(Kind::Line, out);
    }
    if quiet {
        p.raw(&format!("{}\n", out.cid))
    } else {
        p.raw(&format!("added {} {}\n", out.cid, out.name))
    }
}

/// The parameters Go's ctl sends for these flags.
fn params(a: &AddArgs) -> Result<AddParams> {
    let mut pin = PinOptions {
        replication_factor_min: a.replication_min,
        replication_factor_max: a.replication_max,
        name: a.name.clone(),
        metadata: parse::metadata(&a.metadata).context("parsing metadata")?,
        ..PinOptions::default()
    };
    if let Some(e) = a.expire_in.as_deref().filter(|e| !e.is_empty()) {
        let d = parse::go_duration(e).context("parsing expire-in")?;
        pin.expire_at = Some(std::time::SystemTime::now() + d);
    }
    if let Some(list) = a.allocations.as_deref().filter(|l| !l.is_empty()) {
        pin.user_allocations = parse::allocations(list).context("decoding allocations")?;
    }
    if let Some(w) = a.wait_timeout.as_deref() {
        parse::wait_timeout(w).context("parsing wait-timeout")?;
    }
    let format = match a.format.as_str() {
        "unixfs" | "" => AddFormat::Unixfs,
        "car" => AddFormat::Car,
        other => bail!("unknown --format {other:?}: unixfs or car"),
    };
    let layout = match a.layout.as_str() {
        "" | "balanced" => AddLayout::Balanced,
        "trickle" => AddLayout::Trickle,
        other => bail!("unknown --layout {other:?}: balanced or trickle"),
    };
    let wrap = a.wrap_with_directory || a.paths.len() > 1;
    if wrap && format == AddFormat::Car {
        bail!("only a single CAR file can be added and wrap-with-directory is not supported");
    }
    let mut cid_version = u8::try_from(a.cid_version).unwrap_or(u8::MAX);
    if a.hash != api::types::DEFAULT_HASH {
        cid_version = 1;
    }
    let raw_leaves = a.raw_leaves || cid_version > 0 || a.nocopy;
    Ok(AddParams {
        pin_options: pin,
        local: a.local,
        recursive: a.recursive,
        hidden: a.hidden,
        wrap_with_directory: wrap,
        shard: false,
        stream_channels: true,
        format,
        no_pin: a.no_pin,
        layout,
        chunker: a.chunker.clone(),
        raw_leaves,
        progress: false,
        cid_version,
        hash: a.hash.clone(),
        nocopy: a.nocopy,
    })
}

/// Whether a name is hidden (Go's `files.isHidden` on Unix).
fn is_hidden(name: &str) -> bool {
    name.starts_with('.') && name != "." && name != ".."
}

/// The entries of the upload, in Go's order, checked before anything is
/// sent (Go's `makeSerialFile`).
fn walk(paths: &[String], recursive: bool, hidden: bool) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for p in paths {
        if p.starts_with("http://") || p.starts_with("https://") {
            bail!("adding {p}: URLs are not supported by this ctl; download the file and add it");
        }
        let fs_path = if p == "." {
            std::env::current_dir().context("getting the working directory")?
        } else {
            PathBuf::from(p)
        };
        let meta = std::fs::symlink_metadata(&fs_path).with_context(|| format!("adding {p}"))?;
        let name = base_name(&fs_path);
        if meta.is_dir() {
            if !recursive {
                bail!("{p} is a directory, but Recursive option is not set");
            }
            walk_dir(&fs_path, &name, hidden, &mut entries)?;
        } else if meta.file_type().is_symlink() {
            bail!("adding {p}: symlinks are not supported");
        } else {
            entries.push(Entry {
                upload_path: name,
                fs_path: Some(fs_path),
                size: Some(meta.len()),
            });
        }
    }
    Ok(entries)
}

/// `path.Base` of a cleaned path.
fn base_name(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    let trimmed = s.trim_end_matches('/');
    match trimmed.rsplit('/').next() {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => "/".to_string(),
    }
}

/// A directory's entry then, depth first and by name, its contents (Go's
/// `SerialFile` walk, as boxo's MultiFileReader sends it).
fn walk_dir(dir: &Path, upload_path: &str, hidden: bool, out: &mut Vec<Entry>) -> Result<()> {
    // A stack instead of recursion: (on disk, upload path, is a directory,
    // size).
    let mut stack = vec![(dir.to_path_buf(), upload_path.to_string(), true, 0)];
    while let Some((path, up, is_dir, size)) = stack.pop() {
        if !is_dir {
            out.push(Entry {
                upload_path: up,
                fs_path: Some(path),
                size: Some(size),
            });
            continue;
        }
        out.push(Entry {
            upload_path: up.clone(),
            fs_path: None,
            size: None,
        });
        let mut children: Vec<(String, PathBuf)> = std::fs::read_dir(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .map(|e| e.map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", path.display()))?;
        children.sort();
        for (name, child) in children.into_iter().rev() {
            if !hidden && is_hidden(&name) {
                continue;
            }
            let meta = std::fs::symlink_metadata(&child)
                .with_context(|| format!("reading {}", child.display()))?;
            if meta.file_type().is_symlink() {
                bail!("adding {}: symlinks are not supported", child.display());
            }
            stack.push((child, format!("{up}/{name}"), meta.is_dir(), meta.len()));
        }
    }
    Ok(())
}

/// The upload: the entries, each file read as it is sent.
fn upload(
    entries: Vec<Entry>,
    progress: Progress,
) -> BoxStream<'static, Result<AddFile, api::ApiError>> {
    stream::iter(entries)
        .map(move |e| {
            let kind = match e.fs_path {
                None => AddFileKind::Directory,
                Some(path) => AddFileKind::File(read_file(
                    path,
                    e.upload_path.clone(),
                    e.size.unwrap_or(0),
                    progress.clone(),
                )),
            };
            Ok(AddFile {
                path: e.upload_path,
                kind,
            })
        })
        .boxed()
}

/// A file's bytes, read as they are asked for, counted on the bar.
fn read_file(
    path: PathBuf,
    name: String,
    size: u64,
    progress: Progress,
) -> BoxStream<'static, Result<Bytes, api::ApiError>> {
    let start = async move {
        tokio::fs::File::open(&path)
            .await
            .map_err(|e| api::ApiError::bad_request(format!("opening {}: {e}", path.display())))
    };
    stream::once(start)
        .flat_map(move |opened| match opened {
            Err(e) => stream::iter([Err(e)]).boxed(),
            Ok(file) => {
                progress.start_file(&name, size);
                let progress = progress.clone();
                stream::unfold(Some(file), move |file| {
                    let progress = progress.clone();
                    async move {
                        let mut file = file?;
                        let mut buf = BytesMut::zeroed(READ_SIZE);
                        match file.read(&mut buf).await {
                            Ok(0) => {
                                progress.end_file();
                                None
                            }
                            Ok(n) => {
                                buf.truncate(n);
                                progress.sent(n as u64);
                                Some((Ok(buf.freeze()), Some(file)))
                            }
                            Err(e) => Some((
                                Err(api::ApiError::bad_request(format!("reading a file: {e}"))),
                                None,
                            )),
                        }
                    }
                })
                .boxed()
            }
        })
        .boxed()
}

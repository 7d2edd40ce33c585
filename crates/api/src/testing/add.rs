//! The fake `POST /add`: reads the upload entry by entry, answers a line
//! per file as soon as it is read, then (optionally) one per directory and
//! the wrapping root, and records the call once the upload is read whole.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use futures::stream::{self, BoxStream};

use super::calls::{Call, Uploaded};
use super::fake::State;
use super::fixtures::content_cid;
use crate::ApiError;
use crate::service::{AddFile, AddFileKind};
use crate::types::{AddParams, AddedOutput};

/// One upload being read.
struct Run {
    files: BoxStream<'static, Result<AddFile, ApiError>>,
    params: AddParams,
    state: Arc<Mutex<State>>,
    /// Reported as the allocation of each file.
    peer: String,
    directory_outputs: bool,
    entries: Vec<Uploaded>,
    dirs: Vec<String>,
    /// Every byte read (and directory name), for the directories' and
    /// root's CIDs.
    all: Vec<u8>,
    sent_one: bool,
    /// Set once the upload ended: what is left to answer.
    tail: Option<VecDeque<Result<AddedOutput, ApiError>>>,
}

/// The outputs of adding `files`. A pin named `fail` fails after the first
/// output, once the whole upload is read.
pub(crate) fn add(
    state: Arc<Mutex<State>>,
    peer: String,
    directory_outputs: bool,
    params: AddParams,
    files: BoxStream<'static, Result<AddFile, ApiError>>,
) -> BoxStream<'static, Result<AddedOutput, ApiError>> {
    let run = Run {
        files,
        params,
        state,
        peer,
        directory_outputs,
        entries: Vec::new(),
        dirs: Vec::new(),
        all: Vec::new(),
        sent_one: false,
        tail: None,
    };
    stream::unfold(run, step).boxed()
}

fn output(name: String, data: &[u8], allocations: Vec<String>) -> AddedOutput {
    AddedOutput {
        name,
        cid: content_cid(data),
        bytes: 0,
        size: data.len() as u64,
        allocations,
    }
}

async fn step(mut run: Run) -> Option<(Result<AddedOutput, ApiError>, Run)> {
    loop {
        if let Some(tail) = &mut run.tail {
            let next = tail.pop_front()?;
            return Some((next, run));
        }
        if run.params.pin_options.name == "fail" && run.sent_one {
            // Read the rest of the upload first, as the old fake did: a
            // server that stops reading mid-body can make the client's
            // write fail (broken pipe) before it reads the streamed error.
            while let Some(file) = run.files.next().await {
                if let Ok(AddFile {
                    kind: AddFileKind::File(mut data),
                    ..
                }) = file
                {
                    while data.next().await.is_some() {}
                }
            }
            run.tail = Some(VecDeque::new());
            return Some((Err(ApiError::internal("boom: add failed")), run));
        }
        match run.files.next().await {
            None => {
                run.finish();
            }
            Some(Err(e)) => {
                run.tail = Some(VecDeque::new());
                return Some((Err(e), run));
            }
            Some(Ok(AddFile { path, kind })) => match kind {
                AddFileKind::Directory => {
                    run.entries.push((path.clone(), None));
                    run.dirs.push(path);
                }
                AddFileKind::File(mut data) => {
                    let mut content = Vec::new();
                    while let Some(chunk) = data.next().await {
                        match chunk {
                            Ok(c) => content.extend_from_slice(&c),
                            Err(e) => {
                                run.tail = Some(VecDeque::new());
                                return Some((Err(e), run));
                            }
                        }
                    }
                    run.all.extend_from_slice(&content);
                    let out = output(path.clone(), &content, vec![run.peer.clone()]);
                    run.entries.push((path, Some(content)));
                    run.sent_one = true;
                    return Some((Ok(out), run));
                }
            },
        }
    }
}

impl Run {
    /// The upload ended: record it, and queue the directories (deepest
    /// last-first, as IPFS answers) and the wrapping root.
    fn finish(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let wrap = self.params.wrap_with_directory && !entries.is_empty();
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .calls
            .push(Call::Add(Box::new(self.params.clone()), entries));
        let mut tail = VecDeque::new();
        if self.directory_outputs {
            for d in std::mem::take(&mut self.dirs).into_iter().rev() {
                self.all.extend_from_slice(d.as_bytes());
                tail.push_back(Ok(output(d, &self.all, vec![])));
            }
        }
        if wrap {
            tail.push_back(Ok(output(String::new(), &self.all, vec![])));
        }
        self.tail = Some(tail);
    }
}

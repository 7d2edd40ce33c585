//! Response bodies: whole (errors, listings, blocks) or streamed from a
//! blocking producer (a file's bytes, a CAR) through a bounded channel, so
//! a large file is never held in memory and a slow client slows the reads.

use std::io;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

/// Every response's body type.
pub(super) type Body = UnsyncBoxBody<Bytes, io::Error>;

/// Pieces buffered between a producer and the connection.
const CHANNEL_PIECES: usize = 8;
/// What [`ChannelWriter`] gathers before sending a piece.
const WRITER_PIECE: usize = 64 << 10;

/// The sending side handed to a producer.
pub(super) type Pieces = mpsc::Sender<io::Result<Bytes>>;

/// A body of these bytes.
pub(super) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// No body (HEAD, redirects, 304).
pub(super) fn empty() -> Body {
    Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// A body fed by `produce`, run on a blocking thread: it sends pieces until
/// done, and stops when a send fails (the client went away). An `Err` piece
/// ends the body with that error, which makes hyper abort the connection:
/// the client sees a truncated response, never a complete-looking one.
pub(super) fn stream(produce: impl FnOnce(&Pieces) + Send + 'static) -> Body {
    let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
    tokio::task::spawn_blocking(move || produce(&tx));
    let pieces = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece.map(Frame::data), rx))
    });
    BodyExt::boxed_unsync(StreamBody::new(pieces))
}

/// Sends `piece`; `false` when the client has gone.
pub(super) fn send(tx: &Pieces, piece: io::Result<Bytes>) -> bool {
    tx.blocking_send(piece).is_ok()
}

/// An [`io::Write`] over a producer's channel, in pieces of
/// [`WRITER_PIECE`] bytes (for the CAR writer). Call [`ChannelWriter::finish`]
/// to send the rest.
#[derive(Debug)]
pub(super) struct ChannelWriter<'a> {
    tx: &'a Pieces,
    buf: Vec<u8>,
}

impl<'a> ChannelWriter<'a> {
    pub(super) fn new(tx: &'a Pieces) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(WRITER_PIECE),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(WRITER_PIECE),
        ));
        if send(self.tx, Ok(piece)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            ))
        }
    }
}

impl io::Write for ChannelWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITER_PIECE {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buf()
    }
}

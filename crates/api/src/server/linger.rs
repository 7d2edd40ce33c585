//! A lingering close for the servers' connections. A connection closed
//! while request bytes are still unread (an upload the server stopped
//! reading: an add that failed midway) makes the kernel answer with a
//! reset, and a reset can discard the answer, with its `X-Stream-Error`
//! trailer, before the client has read it; the client then sees only a
//! broken connection. So a shutdown first closes the write half (the
//! client sees the answer end), then reads and drops what the client still
//! sends until it closes, for at most [`LINGER_TIME`] and
//! [`LINGER_BYTES`].

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Longest wait for the client to close once the answer is out.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes read and dropped meanwhile.
const LINGER_BYTES: u64 = 64 << 20;

/// A connection whose shutdown lingers (module doc).
#[derive(Debug)]
pub(super) struct LingerIo<T> {
    inner: T,
    linger: Option<Linger>,
}

#[derive(Debug)]
struct Linger {
    write_closed: bool,
    deadline: Pin<Box<Sleep>>,
    dropped: u64,
}

impl<T> LingerIo<T> {
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            linger: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LingerIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LingerIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let l = this.linger.get_or_insert_with(|| Linger {
            write_closed: false,
            deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
            dropped: 0,
        });
        if !l.write_closed {
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            l.write_closed = true;
        }
        let mut scratch = [0u8; 8192];
        loop {
            if l.dropped >= LINGER_BYTES || l.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => l.dropped += buf.filled().len() as u64,
                // Reset or gone: nothing left to protect.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// What a client still uploading sees of a server that answers and
    /// closes without reading the upload: the answer it read, whether a
    /// write failed while it read, and whether a write 100 ms after it
    /// read the answer's end failed.
    async fn uploading_client(linger: bool) -> (io::Result<Vec<u8>>, bool, bool) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (mut rd, mut wr) = client.into_split();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let uploading = tokio::spawn(async move {
            while !stopped.load(Ordering::SeqCst) {
                wr.write_all(&[7u8; 16 * 1024]).await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok::<_, io::Error>(wr)
        });
        let served = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if linger {
                let mut s = LingerIo::new(server);
                s.write_all(b"the answer").await?;
                s.shutdown().await
            } else {
                let mut s = server;
                s.write_all(b"the answer").await?;
                s.shutdown().await
            }
        });
        let mut got = Vec::new();
        let read = rd.read_to_end(&mut got).await.map(|_| got);
        stop.store(true, Ordering::SeqCst);
        let (failed_while_reading, late_failed) = match uploading.await.unwrap() {
            Err(_) => (true, true),
            Ok(mut wr) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                (false, wr.write_all(b"late").await.is_err())
            }
        };
        drop(rd);
        served.await.unwrap().unwrap();
        (read, failed_while_reading, late_failed)
    }

    #[tokio::test]
    async fn an_upload_is_read_and_dropped_until_the_client_closes() {
        let (read, failed, late_failed) = uploading_client(true).await;
        assert_eq!(read.unwrap(), b"the answer");
        assert!(!failed && !late_failed, "{failed} {late_failed}");
        // What it prevents: without it the unread upload makes the close
        // a reset, and the client's writes fail (a client like hyper's
        // then drops the connection, the answer unread with it).
        let (_, _, late_failed) = uploading_client(false).await;
        assert!(late_failed, "a plain close resets");
    }
}

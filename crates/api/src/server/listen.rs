//! The listeners the accept loop takes: TCP, and unix sockets (whose file
//! is replaced when stale and removed when the server stops).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// The client address given to connections on a unix socket. They have
/// none, and the failed-login counter keys on an IP: a unix client is on
/// this machine, so all of them count as one local client, as loopback TCP
/// clients all count as 127.0.0.1.
const UNIX_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// What the accept loop ([`super::serve_connections`]) needs of a
/// listener.
pub trait Listener: Send + 'static {
    /// A connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection and its client's address.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, SocketAddr)>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("set_nodelay: {e}");
        }
        Ok((stream, peer))
    }
}

/// A listening unix socket; dropping it removes the socket file.
#[derive(Debug)]
pub(super) struct UnixSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixSocket {
    /// Binds `path`. A socket file there that nothing answers on (left by
    /// a run that did not stop cleanly) is removed first; the folder is
    /// not created.
    ///
    /// # Errors
    /// `AddrInUse` when a server answers on `path`, `AlreadyExists` when
    /// `path` is not a socket, and bind errors (a missing folder: `NotFound`),
    /// each naming the path.
    pub(super) async fn bind(path: PathBuf) -> io::Result<Self> {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(&path).await.is_ok() {
                    return Err(error_at(
                        &path,
                        io::ErrorKind::AddrInUse,
                        "a server already listens on this socket",
                    ));
                }
                tracing::info!(path = %path.display(), "REST API: removing a stale socket");
                std::fs::remove_file(&path).map_err(|e| annotate(&path, e))?;
            }
            Ok(_) => {
                return Err(error_at(
                    &path,
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a socket: not replacing it",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(annotate(&path, e)),
        }
        let listener = UnixListener::bind(&path).map_err(|e| annotate(&path, e))?;
        Ok(Self { listener, path })
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), "removing the REST API socket: {e}");
        }
    }
}

impl Listener for UnixSocket {
    type Io = UnixStream;

    async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, _) = self.listener.accept().await?;
        Ok((stream, UNIX_CLIENT))
    }
}

fn error_at(path: &Path, kind: io::ErrorKind, message: &str) -> io::Error {
    io::Error::new(kind, format!("{}: {message}", path.display()))
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    error_at(path, e.kind(), &e.to_string())
}

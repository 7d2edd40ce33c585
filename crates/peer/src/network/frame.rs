//! Length-prefixed frames on libp2p streams (`cluster_codec::frame`),
//! shared by the bulk sync and RPC protocols, with a deadline on writes.

use futures::io::AsyncWrite;
use std::io;

pub(crate) use cluster_codec::frame::{read_frame, write_frame};

/// Writes one frame within `limit` (a peer that stops reading can't hold
/// an answer open).
pub(crate) async fn write_frame_within<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    limit: std::time::Duration,
) -> io::Result<()> {
    tokio::time::timeout(limit, write_frame(w, bytes))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading"))?
}

//! Inter-peer RPC on libp2p streams: one DAG-CBOR request frame `{method,
//! args}`, then answer frames (several for streaming methods), then an end
//! frame. Each method has a policy: open to anyone, trusted peers only, or
//! local only (never served to the network).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crdt_dag::{TrustPolicy, WriterId};
use futures::StreamExt;
use futures::future::BoxFuture;
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::PeerError;
use crate::network::bandwidth::{DROPPED_RETRIES, Streams};
use crate::network::frame::{read_frame, write_frame, write_frame_within};
use crate::network::slots::Slots;

/// The protocol ID (Go's is `/ipfscluster/1.0/rpc`; ours carries other frames).
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs-cluster-rs/rpc/1.0.0");
/// Largest request or answer frame.
pub const MAX_FRAME: usize = 4 << 20;
/// Requests served at once...
const MAX_CONCURRENT_CALLS: usize = 64;
/// ...for any one peer...
const MAX_CALLS_PER_PEER: usize = 16;
/// ...and for any one address (its peer IDs together).
const MAX_CALLS_PER_IP: usize = 32;
/// How long a call waits for a slot.
const SLOT_WAIT: Duration = Duration::from_secs(10);
/// Time allowed for a call's next frame.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Any peer that can connect.
    Open,
    /// Only peers allowed by `trusted_peers`.
    Trusted,
    /// Never over the network; only this process calls it.
    Local,
}

/// Answers of one call: one or more frames.
pub type Answer = Result<Vec<Vec<u8>>, String>;
/// A method implementation: caller and CBOR args in, answers out.
pub type Handler = Arc<dyn Fn(PeerId, Vec<u8>) -> BoxFuture<'static, Answer> + Send + Sync>;

/// The methods this peer serves, with their policies.
#[derive(Clone, Default)]
pub struct Registry {
    methods: HashMap<&'static str, (Policy, Handler)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.methods.keys()).finish()
    }
}

impl Registry {
    /// Adds a method.
    pub fn register(&mut self, name: &'static str, policy: Policy, handler: Handler) {
        self.methods.insert(name, (policy, handler));
    }

    /// Whether `caller` may call `method` over the network.
    pub fn authorize(
        &self,
        method: &str,
        caller: &PeerId,
        trust: &TrustPolicy,
    ) -> Result<&Handler, PeerError> {
        let (policy, handler) = self.methods.get(method).ok_or_else(|| PeerError::Remote {
            peer: caller.to_string(),
            message: format!("unknown method {method}"),
        })?;
        let allowed = match policy {
            Policy::Open => true,
            Policy::Trusted => {
                WriterId::from_peer_id_bytes(&caller.to_bytes()).is_ok_and(|w| trust.allows(&w))
            }
            Policy::Local => false,
        };
        if allowed {
            Ok(handler)
        } else {
            Err(PeerError::PermissionDenied(method.to_owned()))
        }
    }
}

// Unknown keys are skipped in both frames, so a key added later doesn't
// break a cluster of mixed versions (spec/sync.md §4).
#[derive(Serialize, Deserialize)]
struct Request {
    method: String,
    args: ByteBuf,
}

#[derive(Serialize, Deserialize)]
struct Frame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    err: Option<String>,
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(v).unwrap_or_default()
}

/// Serves calls until cancelled.
pub(crate) async fn serve(
    registry: Arc<Registry>,
    trust: TrustPolicy,
    mut control: Streams,
    cancel: CancellationToken,
) -> Result<(), PeerError> {
    let mut incoming = control
        .accept(PROTOCOL)
        .map_err(|_| PeerError::Network("rpc protocol registered twice".into()))?;
    let slots = Slots::new(MAX_CONCURRENT_CALLS, MAX_CALLS_PER_PEER, MAX_CALLS_PER_IP);
    loop {
        let (peer, mut stream) = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            next = incoming.next() => match next { Some(s) => s, None => return Ok(()) },
        };
        let claim = match slots.claim(peer, control.peer_ip(&peer)) {
            Ok(claim) => claim,
            Err(busy) => {
                debug!(%peer, ?busy, "too many rpc calls; dropping one");
                continue;
            }
        };
        let (registry, trust) = (registry.clone(), trust.clone());
        tokio::spawn(async move {
            let slot = match claim.slot(SLOT_WAIT).await {
                Ok(slot) => slot,
                Err(busy) => {
                    debug!(%peer, ?busy, "no rpc slot in time; dropping a call");
                    return;
                }
            };
            let result = async {
                let req = tokio::time::timeout(CALL_TIMEOUT, read_frame(&mut stream, MAX_FRAME))
                    .await
                    .map_err(|_| "request timed out".to_string())?
                    .map_err(|e| e.to_string())?
                    .ok_or("empty request")?;
                let (method, args) = decode_request(&req)?;
                let answer = match registry.authorize(&method, &peer, &trust) {
                    Ok(handler) => handler(peer, args).await,
                    Err(e) => Err(e.to_string()),
                };
                let frames: Vec<Frame> = match answer {
                    Ok(items) => items
                        .into_iter()
                        .map(|b| Frame {
                            ok: Some(ByteBuf::from(b)),
                            err: None,
                        })
                        .collect(),
                    Err(e) => vec![Frame {
                        ok: None,
                        err: Some(e),
                    }],
                };
                for f in frames {
                    write_frame_within(&mut stream, &encode(&f), CALL_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                write_frame_within(&mut stream, &[], CALL_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?;
                futures::AsyncWriteExt::close(&mut stream)
                    .await
                    .map_err(|e| e.to_string())
            }
            .await;
            if let Err(e) = result {
                debug!(%peer, error = %e, "rpc call failed");
            }
            drop(slot);
        });
    }
}

/// Calls `method` on `peer` and collects its answers.
pub(crate) async fn call(
    control: &mut Streams,
    peer: PeerId,
    method: &str,
    args: Vec<u8>,
) -> Result<Vec<Vec<u8>>, PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    let request = encode(&Request {
        method: method.into(),
        args: ByteBuf::from(args),
    });
    let mut tries = 0;
    let mut stream = loop {
        let mut stream = tokio::time::timeout(CALL_TIMEOUT, control.open_stream(peer, PROTOCOL))
            .await
            .map_err(|_| remote("opening an rpc stream timed out".into()))?
            .map_err(|e| remote(e.to_string()))?;
        // A stream the answerer dropped unread ([`DROPPED_RETRIES`]) fails
        // here; the call never reached the answerer, so it is sent again.
        // A call that fails later is not: calls need not be idempotent.
        match write_frame(&mut stream, &request).await {
            Ok(()) => break stream,
            Err(e) if tries < DROPPED_RETRIES => {
                tries += 1;
                debug!(%peer, method, error = %e, tries, "rpc stream dropped unread; calling again");
                Streams::dropped_pause().await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(CALL_TIMEOUT, read_frame(&mut stream, MAX_FRAME))
            .await
            .map_err(|_| remote(format!("{method} timed out")))??
            .ok_or_else(|| remote(format!("{method}: answer ended early")))?;
        match decode_answer(&frame, peer, method)? {
            Some(item) => out.push(item),
            None => return Ok(out),
        }
    }
}

/// A request frame as [`serve`] reads it: the method and its CBOR args.
/// Public for the fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub fn decode_request(frame: &[u8]) -> Result<(String, Vec<u8>), String> {
    let req: Request = serde_ipld_dagcbor::from_slice(frame).map_err(|e| e.to_string())?;
    Ok((req.method, req.args.into_vec()))
}

/// An answer frame of `method` from `peer` as [`call`] reads it: an item,
/// or `None` for the empty end frame. Public for the fuzz targets only.
#[doc(hidden)]
pub fn decode_answer(
    frame: &[u8],
    peer: PeerId,
    method: &str,
) -> Result<Option<Vec<u8>>, PeerError> {
    let remote = |message: String| PeerError::Remote {
        peer: peer.to_string(),
        message,
    };
    if frame.is_empty() {
        return Ok(None);
    }
    let f: Frame = serde_ipld_dagcbor::from_slice(frame).map_err(|e| remote(e.to_string()))?;
    match (f.ok, f.err) {
        (Some(b), None) => Ok(Some(b.into_vec())),
        (None, Some(e)) if e.starts_with("permission denied") => {
            Err(PeerError::PermissionDenied(method.to_owned()))
        }
        (None, Some(e)) => Err(remote(e)),
        _ => Err(remote("malformed answer frame".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> (PeerId, WriterId) {
        let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
        let w = WriterId::from_public_key(&key.verifying_key());
        (PeerId::from_bytes(&w.to_peer_id_bytes()).unwrap(), w)
    }

    #[test]
    fn policies_are_enforced() {
        let mut reg = Registry::default();
        let h: Handler = Arc::new(|_, _| Box::pin(async { Ok(vec![]) }));
        reg.register("Open", Policy::Open, h.clone());
        reg.register("Trusted", Policy::Trusted, h.clone());
        reg.register("Local", Policy::Local, h);
        let (a, wa) = peer(1);
        let (b, _) = peer(2);
        let trust = TrustPolicy::Only([wa].into());
        assert!(reg.authorize("Open", &b, &trust).is_ok());
        assert!(reg.authorize("Trusted", &a, &trust).is_ok());
        assert!(matches!(
            reg.authorize("Trusted", &b, &trust),
            Err(PeerError::PermissionDenied(_))
        ));
        assert!(reg.authorize("Trusted", &b, &TrustPolicy::All).is_ok());
        assert!(matches!(
            reg.authorize("Local", &a, &trust),
            Err(PeerError::PermissionDenied(_))
        ));
        assert!(matches!(
            reg.authorize("Nope", &a, &trust),
            Err(PeerError::Remote { .. })
        ));
    }

    /// A key a later version adds is skipped, in requests and answers;
    /// what the frames must hold is still checked.
    #[test]
    fn frames_skip_keys_they_do_not_know() {
        #[derive(Serialize)]
        struct LaterRequest<'a> {
            method: &'a str,
            args: ByteBuf,
            deadline: (u64, &'a str),
        }
        #[derive(Serialize)]
        struct LaterFrame {
            #[serde(skip_serializing_if = "Option::is_none")]
            ok: Option<ByteBuf>,
            #[serde(skip_serializing_if = "Option::is_none")]
            err: Option<String>,
            more: bool,
        }
        let req = encode(&LaterRequest {
            method: "Peers",
            args: ByteBuf::from(vec![0xa0]),
            deadline: (5, "s"),
        });
        assert_eq!(
            decode_request(&req).unwrap(),
            ("Peers".to_owned(), vec![0xa0])
        );
        // A map without `method`: still refused.
        let no_method = std::collections::BTreeMap::from([("args", ByteBuf::from(vec![0xa0]))]);
        assert!(decode_request(&encode(&no_method)).is_err());

        let (p, _) = peer(1);
        let ok = encode(&LaterFrame {
            ok: Some(ByteBuf::from(vec![7])),
            err: None,
            more: true,
        });
        assert_eq!(decode_answer(&ok, p, "Peers").unwrap(), Some(vec![7]));
        let both = encode(&LaterFrame {
            ok: Some(ByteBuf::from(vec![7])),
            err: Some("both".into()),
            more: true,
        });
        assert!(decode_answer(&both, p, "Peers").is_err());
    }
}

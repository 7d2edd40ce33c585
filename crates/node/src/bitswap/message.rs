//! The Bitswap wire message: a hand-written protobuf codec with strict
//! bounds, and the varint length-prefixed framing messages travel in.
//!
//! ```text
//! message Message {
//!   Wantlist wantlist = 1;              // entries (1), full (2)
//!   repeated bytes blocks = 2;          // 1.0.0: block bytes, CIDv0 implied
//!   repeated Block payload = 3;         // 1.1.0+: prefix (1), data (2)
//!   repeated BlockPresence blockPresences = 4;  // 1.2.0: cid (1), type (2)
//!   int32 pendingBytes = 5;
//! }
//! Entry { bytes block = 1; int32 priority = 2; bool cancel = 3;
//!         WantType wantType = 4 /* Block 0, Have 1 */; bool sendDontHave = 5; }
//! ```
//!
//! Decoding verifies every block as it goes: a payload block's CID is built
//! from its prefix and the hash of its bytes, so a decoded [`Message`] only
//! holds blocks whose CID matches their bytes. Blocks whose hash function
//! this node can't compute are dropped (counted in
//! [`Message::skipped_blocks`]).

use bytes::Bytes;
use cid::Cid;
use futures::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use multihash::Multihash;
use multihash_codetable::{Code, MultihashDigest};

use crate::{Block, DAG_PB, NodeError, SHA2_256};

/// Largest message read or written (libp2p's `MessageSizeMax`, what Kubo
/// reads with): 4 MiB, not counting the length prefix.
pub const MAX_MESSAGE_SIZE: usize = 4 << 20;
/// Largest block sent or accepted (the spec's 2 MiB; Kubo's chunker and
/// `block put` stay below it).
pub const MAX_BLOCK_SIZE: usize = 2 << 20;
/// Longest CID accepted in a message (identity CIDs included).
pub const MAX_CID_LEN: usize = 256;
/// Bytes budgeted per wantlist entry or presence when packing messages.
pub(crate) const ENTRY_OVERHEAD: usize = MAX_CID_LEN + 16;
/// Bytes budgeted per payload block besides its data.
pub(crate) const BLOCK_OVERHEAD: usize = 64;

/// The Bitswap protocol versions, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `/ipfs/bitswap/1.2.0`: want-have, DONT_HAVE, block presences.
    V1_2,
    /// `/ipfs/bitswap/1.1.0`: CIDv1 and payload blocks with a CID prefix.
    V1_1,
    /// `/ipfs/bitswap/1.0.0` and `/ipfs/bitswap`: CIDv0 blocks only.
    V1_0,
}

/// Want a block, or only to know whether the peer has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WantType {
    /// Send the block.
    Block,
    /// Say HAVE (or DONT_HAVE if asked to).
    Have,
}

/// One wantlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantEntry {
    /// The wanted block.
    pub cid: Cid,
    /// Higher first (Kubo sends descending priorities in request order).
    pub priority: i32,
    /// Revokes an earlier want for `cid`.
    pub cancel: bool,
    /// Block or presence.
    pub want_type: WantType,
    /// Answer DONT_HAVE when the block isn't there.
    pub send_dont_have: bool,
}

impl WantEntry {
    /// A want for `cid`.
    pub fn want(cid: Cid, want_type: WantType, send_dont_have: bool) -> Self {
        Self {
            cid,
            priority: 1,
            cancel: false,
            want_type,
            send_dont_have,
        }
    }

    /// A cancel of any want for `cid`.
    pub fn cancel(cid: Cid) -> Self {
        Self {
            cid,
            priority: 0,
            cancel: true,
            want_type: WantType::Block,
            send_dont_have: false,
        }
    }
}

/// What a block presence says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The sender has the block.
    Have,
    /// The sender doesn't have it.
    DontHave,
}

/// One Bitswap message: wants, blocks and presences in any mix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The entries replace the receiver's whole view of our wantlist.
    pub full: bool,
    /// Wantlist entries, in order.
    pub wants: Vec<WantEntry>,
    /// Blocks (verified against their CIDs when decoded).
    pub blocks: Vec<Block>,
    /// Block presences.
    pub presences: Vec<(Cid, Presence)>,
    /// Bytes the sender still has queued for the receiver.
    pub pending_bytes: i32,
    /// Blocks dropped while decoding: a hash function we can't compute.
    pub skipped_blocks: usize,
}

impl Message {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        !self.full && self.wants.is_empty() && self.blocks.is_empty() && self.presences.is_empty()
    }

    /// An upper bound on the encoded size, for packing messages under
    /// [`MAX_MESSAGE_SIZE`].
    pub fn size_estimate(&self) -> usize {
        16 + (self.wants.len() + self.presences.len()) * ENTRY_OVERHEAD
            + self
                .blocks
                .iter()
                .map(|b| b.data().len() + BLOCK_OVERHEAD)
                .sum::<usize>()
    }

    /// Encodes for a peer speaking `version`. Older versions get what they
    /// understand: 1.1.0 loses presences and turns want-have into want-block
    /// (the peer answers with the block instead of HAVE); 1.0.0 also gets
    /// blocks as bare bytes.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_estimate());
        if !self.wants.is_empty() || self.full {
            let mut wl = Vec::with_capacity(self.wants.len() * 48);
            for e in &self.wants {
                let mut entry = Vec::with_capacity(48);
                put_bytes(&mut entry, 1, &e.cid.to_bytes());
                if e.priority != 0 {
                    // int32: negative values are sign-extended to 64 bits.
                    put_varint_field(&mut entry, 2, i64::from(e.priority) as u64);
                }
                if e.cancel {
                    put_varint_field(&mut entry, 3, 1);
                }
                if version == Version::V1_2 {
                    if e.want_type == WantType::Have {
                        put_varint_field(&mut entry, 4, 1);
                    }
                    if e.send_dont_have {
                        put_varint_field(&mut entry, 5, 1);
                    }
                }
                put_bytes(&mut wl, 1, &entry);
            }
            if self.full {
                put_varint_field(&mut wl, 2, 1);
            }
            put_bytes(&mut out, 1, &wl);
        }
        for b in &self.blocks {
            if version == Version::V1_0 {
                put_bytes(&mut out, 2, b.data());
            } else {
                let mut blk = Vec::with_capacity(b.data().len() + 16);
                put_bytes(&mut blk, 1, &prefix(b.cid()));
                put_bytes(&mut blk, 2, b.data());
                put_bytes(&mut out, 3, &blk);
            }
        }
        if version == Version::V1_2 {
            for (cid, p) in &self.presences {
                let mut bp = Vec::with_capacity(48);
                put_bytes(&mut bp, 1, &cid.to_bytes());
                if *p == Presence::DontHave {
                    put_varint_field(&mut bp, 2, 1);
                }
                put_bytes(&mut out, 4, &bp);
            }
        }
        if self.pending_bytes != 0 {
            put_varint_field(&mut out, 5, i64::from(self.pending_bytes) as u64);
        }
        out
    }

    /// Decodes a message, verifying its blocks.
    ///
    /// # Errors
    /// [`NodeError::TooLarge`] beyond [`MAX_MESSAGE_SIZE`], a block beyond
    /// [`MAX_BLOCK_SIZE`] or a CID beyond [`MAX_CID_LEN`];
    /// [`NodeError::Malformed`] for anything that isn't a Bitswap message.
    pub fn decode(buf: &[u8]) -> Result<Self, NodeError> {
        if buf.len() > MAX_MESSAGE_SIZE {
            return Err(NodeError::TooLarge {
                what: "bitswap message",
                size: buf.len(),
                max: MAX_MESSAGE_SIZE,
            });
        }
        let mut msg = Message::default();
        let mut r = Reader::new(buf);
        while let Some((field, value)) = r.next_field()? {
            match (field, value) {
                (1, Value::Bytes(wl)) => decode_wantlist(wl, &mut msg)?,
                (2, Value::Bytes(data)) => {
                    check_block_size(data.len())?;
                    // 1.0.0: CIDv0 (dag-pb, sha2-256) implied.
                    msg.blocks
                        .push(Block::new(DAG_PB, Bytes::copy_from_slice(data), true));
                }
                (3, Value::Bytes(blk)) => match decode_payload(blk)? {
                    Some(b) => msg.blocks.push(b),
                    None => msg.skipped_blocks += 1,
                },
                (4, Value::Bytes(bp)) => msg.presences.push(decode_presence(bp)?),
                (5, Value::Varint(v)) => msg.pending_bytes = v as i32,
                (1..=5, _) => return Err(malformed("wrong wire type for a message field")),
                _ => {} // unknown fields are skipped, as protobuf says
            }
        }
        Ok(msg)
    }
}

/// A CID's prefix: version, codec, hash function and digest length.
pub fn prefix(cid: &Cid) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    put_varint(&mut out, cid.version() as u64);
    put_varint(&mut out, cid.codec());
    put_varint(&mut out, cid.hash().code());
    put_varint(&mut out, u64::from(cid.hash().size()));
    out
}

fn malformed(reason: &str) -> NodeError {
    NodeError::Malformed {
        what: "bitswap message",
        reason: reason.to_string(),
    }
}

fn check_block_size(len: usize) -> Result<(), NodeError> {
    if len > MAX_BLOCK_SIZE {
        return Err(NodeError::TooLarge {
            what: "bitswap block",
            size: len,
            max: MAX_BLOCK_SIZE,
        });
    }
    Ok(())
}

fn decode_cid(bytes: &[u8]) -> Result<Cid, NodeError> {
    if bytes.len() > MAX_CID_LEN {
        return Err(NodeError::TooLarge {
            what: "CID",
            size: bytes.len(),
            max: MAX_CID_LEN,
        });
    }
    let cid = Cid::try_from(bytes).map_err(|e| NodeError::Malformed {
        what: "bitswap message",
        reason: format!("bad CID: {e}"),
    })?;
    Ok(cid)
}

fn decode_wantlist(buf: &[u8], msg: &mut Message) -> Result<(), NodeError> {
    let mut r = Reader::new(buf);
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(e)) => msg.wants.push(decode_entry(e)?),
            (2, Value::Varint(v)) => msg.full = v != 0,
            (1 | 2, _) => return Err(malformed("wrong wire type in a wantlist")),
            _ => {}
        }
    }
    Ok(())
}

fn decode_entry(buf: &[u8]) -> Result<WantEntry, NodeError> {
    let mut r = Reader::new(buf);
    let mut cid = None;
    let mut e = WantEntry::want(Cid::default(), WantType::Block, false);
    e.priority = 0;
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(c)) => cid = Some(decode_cid(c)?),
            (2, Value::Varint(v)) => e.priority = v as i32,
            (3, Value::Varint(v)) => e.cancel = v != 0,
            (4, Value::Varint(0)) => e.want_type = WantType::Block,
            (4, Value::Varint(1)) => e.want_type = WantType::Have,
            (4, Value::Varint(_)) => return Err(malformed("unknown want type")),
            (5, Value::Varint(v)) => e.send_dont_have = v != 0,
            (1..=5, _) => return Err(malformed("wrong wire type in a wantlist entry")),
            _ => {}
        }
    }
    e.cid = cid.ok_or_else(|| malformed("wantlist entry without a CID"))?;
    Ok(e)
}

fn decode_presence(buf: &[u8]) -> Result<(Cid, Presence), NodeError> {
    let mut r = Reader::new(buf);
    let mut cid = None;
    let mut presence = Presence::Have;
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(c)) => cid = Some(decode_cid(c)?),
            (2, Value::Varint(0)) => presence = Presence::Have,
            (2, Value::Varint(1)) => presence = Presence::DontHave,
            (2, Value::Varint(_)) => return Err(malformed("unknown presence type")),
            (1 | 2, _) => return Err(malformed("wrong wire type in a block presence")),
            _ => {}
        }
    }
    let cid = cid.ok_or_else(|| malformed("block presence without a CID"))?;
    Ok((cid, presence))
}

/// A payload block: its CID from the prefix and its bytes' hash. `None`
/// for a hash function this node can't compute.
fn decode_payload(buf: &[u8]) -> Result<Option<Block>, NodeError> {
    let mut r = Reader::new(buf);
    let mut pre = None;
    let mut data = None;
    while let Some((field, value)) = r.next_field()? {
        match (field, value) {
            (1, Value::Bytes(p)) => pre = Some(p),
            (2, Value::Bytes(d)) => data = Some(d),
            (1 | 2, _) => return Err(malformed("wrong wire type in a payload block")),
            _ => {}
        }
    }
    let pre = pre.ok_or_else(|| malformed("payload block without a prefix"))?;
    let data = data.unwrap_or_default();
    check_block_size(data.len())?;
    let mut p = Reader::new(pre);
    let mut next = || p.varint().map_err(|_| malformed("truncated CID prefix"));
    let (version, codec, mh_code, mh_len) = (next()?, next()?, next()?, next()?);
    let data = Bytes::copy_from_slice(data);
    if mh_code == SHA2_256 && mh_len == 32 {
        return match version {
            0 if codec == DAG_PB => Ok(Some(Block::new(DAG_PB, data, true))),
            0 => Err(malformed("CIDv0 prefix with a codec other than dag-pb")),
            1 => Ok(Some(Block::new(codec, data, false))),
            _ => Err(malformed("unknown CID version in a prefix")),
        };
    }
    if version != 1 {
        return Err(malformed("CIDv0 prefix with a hash other than sha2-256"));
    }
    let Ok(hasher) = Code::try_from(mh_code) else {
        return Ok(None);
    };
    let full = hasher.digest(&data);
    let Ok(len) = usize::try_from(mh_len) else {
        return Err(malformed("digest length out of range"));
    };
    if len > full.digest().len() {
        return Err(malformed("digest length longer than the hash"));
    }
    let mh = Multihash::<64>::wrap(mh_code, &full.digest()[..len])
        .map_err(|e| malformed(&format!("multihash: {e}")))?;
    Ok(Some(Block::verified(Cid::new_v1(codec, mh), data)?))
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// A bounds-checked protobuf field reader.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn varint(&mut self) -> Result<u64, NodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| malformed("truncated varint"))?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NodeError> {
        if n > self.buf.len() {
            return Err(malformed("field runs past the end of the message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Value<'a>)>, NodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(malformed("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| malformed("length out of range"))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(malformed("unsupported protobuf wire type")),
        };
        Ok(Some((field, value)))
    }
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    cluster_codec::varint::encode(v, out);
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes one message: its length as an unsigned varint, then its bytes.
///
/// # Errors
/// I/O errors; [`std::io::ErrorKind::InvalidInput`] beyond
/// [`MAX_MESSAGE_SIZE`].
pub async fn write_message<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.len() > MAX_MESSAGE_SIZE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bitswap message of {} bytes is too large", bytes.len()),
        ));
    }
    cluster_codec::frame::write_frame(w, bytes).await?;
    w.flush().await
}

/// Reads one length-prefixed message of at most [`MAX_MESSAGE_SIZE`] bytes;
/// `Ok(None)` at a clean end of stream between messages.
///
/// # Errors
/// I/O errors, a truncated frame, or [`std::io::ErrorKind::InvalidData`]
/// for a length beyond the limit (nothing of it is read or allocated).
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    cluster_codec::frame::read_frame(r, MAX_MESSAGE_SIZE).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DAG_CBOR, RAW};

    fn sample() -> Message {
        let raw = Block::new(RAW, Bytes::from_static(b"raw block"), false);
        let v0 = Block::new(DAG_PB, Bytes::from_static(b"\x0a\x02\x08\x01"), true);
        let cbor = Block::new(DAG_CBOR, Bytes::from_static(b"\xa0"), false);
        Message {
            full: true,
            wants: vec![
                WantEntry::want(*raw.cid(), WantType::Have, true),
                WantEntry {
                    priority: -5,
                    ..WantEntry::want(*v0.cid(), WantType::Block, false)
                },
                WantEntry::cancel(*cbor.cid()),
            ],
            blocks: vec![raw.clone(), v0.clone(), cbor.clone()],
            presences: vec![
                (*raw.cid(), Presence::Have),
                (*v0.cid(), Presence::DontHave),
            ],
            pending_bytes: 1234,
            skipped_blocks: 0,
        }
    }

    #[test]
    fn messages_round_trip() {
        let m = sample();
        let bytes = m.encode(Version::V1_2);
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        assert!(bytes.len() <= m.size_estimate());
        assert!(Message::decode(&[]).unwrap().is_empty());
    }

    #[test]
    fn older_versions_get_what_they_understand() {
        let m = sample();
        let v11 = Message::decode(&m.encode(Version::V1_1)).unwrap();
        assert!(v11.presences.is_empty());
        assert!(v11.wants.iter().all(|w| w.want_type == WantType::Block));
        assert!(v11.wants.iter().all(|w| !w.send_dont_have));
        assert_eq!(v11.blocks, m.blocks);
        // 1.0.0 carries bare bytes: only the CIDv0 block keeps its CID.
        let v10 = Message::decode(&m.encode(Version::V1_0)).unwrap();
        assert_eq!(v10.blocks.len(), 3);
        assert_eq!(v10.blocks[1], m.blocks[1]);
    }

    #[test]
    fn prefixes_name_blocks() {
        let raw = Block::new(RAW, Bytes::from_static(b"x"), false);
        assert_eq!(prefix(raw.cid()), [1, 0x55, 0x12, 0x20]);
        let v0 = Block::new(DAG_PB, Bytes::from_static(b"x"), true);
        assert_eq!(prefix(v0.cid()), [0, 0x70, 0x12, 0x20]);
    }

    #[test]
    fn malformed_input_is_refused() {
        let good = sample().encode(Version::V1_2);
        // Every truncation is an error or a shorter valid message, never a panic.
        for n in 0..good.len() {
            let _ = Message::decode(&good[..n]);
        }
        for bad in [
            &[0x0a, 0x05, 0x01][..],             // length past the end
            &[0x0b][..],                         // wire type 3 (groups)
            &[0x00, 0x00][..],                   // field 0
            &[0x0a, 0x02, 0x0a, 0x00][..],       // entry without a CID
            &[0x22, 0x02, 0x0a, 0x01][..],       // presence, truncated CID
            &[0x28, 0xff, 0xff, 0xff, 0xff][..], // truncated varint
            &[0x08, 0x01][..],                   // wantlist as a varint
            &[0x1a, 0x02, 0x0a, 0x00][..],       // payload prefix empty
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?} accepted");
        }
        // A CID that isn't one.
        let mut m = Vec::new();
        let mut e = Vec::new();
        put_bytes(&mut e, 1, b"\x01\x55\x12\x20oops");
        let mut wl = Vec::new();
        put_bytes(&mut wl, 1, &e);
        put_bytes(&mut m, 1, &wl);
        assert!(matches!(
            Message::decode(&m),
            Err(NodeError::Malformed { .. })
        ));
        // Unknown fields are skipped.
        let mut m = sample().encode(Version::V1_2);
        put_varint_field(&mut m, 9, 7);
        put_bytes(&mut m, 10, b"future");
        assert_eq!(Message::decode(&m).unwrap(), sample());
    }

    #[test]
    fn sizes_are_bounded() {
        let big = Block::new(RAW, Bytes::from(vec![0u8; MAX_BLOCK_SIZE + 1]), false);
        let m = Message {
            blocks: vec![big],
            ..Message::default()
        };
        assert!(matches!(
            Message::decode(&m.encode(Version::V1_2)),
            Err(NodeError::TooLarge { .. })
        ));
        assert!(matches!(
            Message::decode(&vec![0u8; MAX_MESSAGE_SIZE + 1]),
            Err(NodeError::TooLarge { .. })
        ));
        let mut e = Vec::new();
        put_bytes(&mut e, 1, &[1u8; MAX_CID_LEN + 1]);
        let mut wl = Vec::new();
        put_bytes(&mut wl, 1, &e);
        let mut m = Vec::new();
        put_bytes(&mut m, 1, &wl);
        assert!(matches!(
            Message::decode(&m),
            Err(NodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn frames_are_bounded() {
        futures::executor::block_on(async {
            let mut out = Vec::new();
            write_message(&mut out, b"abc").await.unwrap();
            write_message(&mut out, b"").await.unwrap();
            let mut r = futures::io::Cursor::new(out);
            assert_eq!(read_message(&mut r).await.unwrap().unwrap(), b"abc");
            assert_eq!(read_message(&mut r).await.unwrap().unwrap(), b"");
            assert!(read_message(&mut r).await.unwrap().is_none());

            let mut huge = Vec::new();
            put_varint(&mut huge, MAX_MESSAGE_SIZE as u64 + 1);
            let err = read_message(&mut futures::io::Cursor::new(huge))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            let too_big = vec![0u8; MAX_MESSAGE_SIZE + 1];
            assert!(write_message(&mut Vec::new(), &too_big).await.is_err());
        });
    }
}

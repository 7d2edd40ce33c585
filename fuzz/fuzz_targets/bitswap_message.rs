//! Feeds Bitswap to the embedded node's decoder: an even first byte gives
//! the rest as one message to `Message::decode`, an odd one as a stream of
//! length-prefixed messages read by `read_message`. What decodes must
//! re-encode for every version and decode again (to itself for 1.2.0), and
//! its blocks' links are read as the pinning walk reads them.
#![no_main]

use futures::executor::block_on;
use ipfs_node::bitswap::Version;
use ipfs_node::bitswap::message::{Message, read_message};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    let Ok(msg) = Message::decode(bytes) else {
        return;
    };
    for block in &msg.blocks {
        let _ = ipfs_node::links(block);
    }
    let again = Message::decode(&msg.encode(Version::V1_2)).expect("a decoded message re-encodes");
    assert_eq!(
        again,
        Message {
            skipped_blocks: 0,
            ..msg.clone()
        }
    );
    for v in [Version::V1_1, Version::V1_0] {
        Message::decode(&msg.encode(v)).expect("an older version's encoding decodes");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check(rest);
        return;
    }
    let mut r = futures::io::Cursor::new(rest);
    while let Ok(Some(frame)) = block_on(read_message(&mut r)) {
        check(&frame);
    }
});

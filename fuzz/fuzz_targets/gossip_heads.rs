//! Feeds a heads announcement (the gossip message peers publish on the heads
//! topic) to `HeadsMessage::decode`; what it accepts must re-encode and
//! decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peer::messages::{HeadsMessage, MAX_ANNOUNCED_BLOCKS, MAX_ANNOUNCED_HEADS};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = HeadsMessage::decode(data) else {
        return;
    };
    assert!(!msg.heads.is_empty() && msg.heads.len() <= MAX_ANNOUNCED_HEADS);
    assert!(msg.blocks.len() <= MAX_ANNOUNCED_BLOCKS);
    let again = HeadsMessage::decode(&msg.encode()).expect("a decoded message re-encodes");
    assert_eq!(again, msg);
});

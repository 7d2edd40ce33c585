//! Feeds a CAR file (v1 or v2, as `dag import` and `add --format car` get
//! it) to the embedded node's reader: `ipfs_node::read_car`, every block
//! verified against its CID, then `ipfs_node::links` of each (the dag-pb
//! and dag-cbor decoders the pinning walk uses).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(car) = ipfs_node::read_car(data) else {
        return;
    };
    let _ = car.roots().len();
    for block in car {
        let Ok(block) = block else {
            break;
        };
        let _ = ipfs_node::links(&block);
    }
});

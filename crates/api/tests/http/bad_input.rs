//! Bad input, sent as a hostile or careless client would: CIDs Go refuses
//! (trailing bytes, a multihash shorter than its bytes, base10) on every
//! route that reads one.

use cid::Cid;
use cid::multibase::{self, Base};

use crate::support::{CID, FakeCluster, TestServer, assert_error, cid, request};

/// Text that the `cid` crate reads as some CID and Go refuses.
fn bad_cids() -> Vec<(String, &'static str)> {
    let c = cid();
    let mut trailing = c.to_bytes();
    trailing.extend_from_slice(&[0, 1]);
    // sha2-256 declaring a 16-byte digest, followed by all 32.
    let mut short_mh = vec![0x01, 0x70, 0x12, 16];
    short_mh.extend_from_slice(c.hash().digest());
    let lenient = |t: &str| t.parse::<Cid>().is_ok();
    let cases = vec![
        (
            multibase::encode(Base::Base32Lower, &trailing),
            "trailing bytes",
        ),
        (
            multibase::encode(Base::Base58Btc, &short_mh),
            "trailing bytes",
        ),
        (
            multibase::encode(Base::Base10, c.to_bytes()),
            "encoding not supported",
        ),
    ];
    for (text, _) in &cases {
        assert!(lenient(text), "the cid crate alone reads {text}");
    }
    cases
}

/// Every route that reads a CID from its path or query answers 400 with
/// the problem named, and nothing reaches the service.
#[tokio::test]
async fn cids_go_refuses_are_400s_on_every_route() {
    let s = TestServer::start(FakeCluster::golden()).await;
    for (bad, why) in bad_cids() {
        let cases: Vec<(&str, String)> = vec![
            ("GET", format!("/pins/{bad}")),
            ("POST", format!("/pins/{bad}")),
            ("DELETE", format!("/pins/{bad}")),
            ("POST", format!("/pins/{bad}/recover")),
            ("GET", format!("/allocations/{bad}")),
            ("GET", format!("/pins?cids={CID},{bad}")),
            ("POST", format!("/pins/{CID}?pin-update={bad}")),
            ("POST", format!("/pins/ipfs/{bad}")),
            ("DELETE", format!("/pins/ipfs/{bad}")),
            ("POST", format!("/pins/ipld/{bad}/sub")),
        ];
        for (method, target) in cases {
            let r = request(s.addr, method, &target, &[]).await;
            assert_error(&r, 400, why);
        }
    }
    assert!(s.calls().is_empty(), "{:?}", s.calls());
}

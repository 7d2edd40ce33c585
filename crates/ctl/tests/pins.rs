//! The pinset commands against the fake: what reached the API, what was
//! printed, in text and JSON.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use api::types::{GlobalPinInfo, Pin, PinMode, PinTypeFilter, TrackerStatus, TrackerStatusFilter};

use crate::util::TestServer;
use api::testing::{Call, PEERS, test_cid};

#[test]
fn pin_add_sends_every_option() {
    let server = TestServer::start();
    let cid = test_cid(1);
    let before = SystemTime::now();
    let out = server.ctl().run([
        "pin",
        "add",
        &cid.to_string(),
        "--name",
        "backup",
        "--rmin",
        "2",
        "--rmax",
        "3",
        "--allocations",
        &format!("{}, {}", PEERS[1], PEERS[2]),
        "--mode",
        "direct",
        "--expire-in",
        "1h",
        "--metadata",
        "owner=alice",
        "--metadata",
        "kind=a=b",
        "--no-status",
    ]);
    let text = out.success().to_string();
    let calls = server.fake.calls();
    let [Call::PinPath(path, o)] = &calls[..] else {
        panic!("unexpected calls {calls:?}")
    };
    assert_eq!(path, &format!("/ipfs/{cid}"));
    assert_eq!((o.replication_factor_min, o.replication_factor_max), (2, 3));
    assert_eq!(o.name, "backup");
    assert_eq!(o.mode, PinMode::Direct);
    assert_eq!(o.user_allocations, [PEERS[1], PEERS[2]]);
    let meta: BTreeMap<String, String> = [("owner", "alice"), ("kind", "a=b")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(o.metadata, meta);
    let expire = o.expire_at.expect("expire_at set");
    let in_an_hour = before + Duration::from_secs(3600);
    assert!(
        expire >= in_an_hour - Duration::from_secs(1)
            && expire <= in_an_hour + Duration::from_secs(60),
        "{expire:?}"
    );
    // --no-status prints the pin itself.
    let mut allocs = [PEERS[0], PEERS[1]];
    allocs.sort();
    assert!(
        text.starts_with(&format!(
            "{cid} | backup | PIN-DIRECT | Repl. Factor: 2--3 | Allocations: [{} {}] | Direct | Metadata: yes | Exp: ",
            allocs[0], allocs[1]
        )),
        "{text}"
    );
    assert!(text.ends_with(" | Added: 2026-05-11 10:00:00\n"), "{text}");
}

#[test]
fn pin_add_replication_overrides_min_and_max() {
    let server = TestServer::start();
    server
        .ctl()
        .run([
            "pin",
            "add",
            "-r",
            "-1",
            "--rmin",
            "2",
            "--ns",
            &test_cid(2).to_string(),
        ])
        .success();
    let calls = server.fake.calls();
    let [Call::PinPath(_, o)] = &calls[..] else {
        panic!("unexpected calls {calls:?}")
    };
    assert_eq!(
        (o.replication_factor_min, o.replication_factor_max),
        (-1, -1)
    );
    assert_eq!(o.mode, PinMode::Recursive);
    assert!(o.expire_at.is_none() && o.metadata.is_empty() && o.user_allocations.is_empty());
}

#[test]
fn pin_add_then_status_as_go_does() {
    let server = TestServer::start();
    let cid = test_cid(3);
    let out = server
        .ctl()
        .run(["pin", "add", "--name", "n", &cid.to_string()]);
    let text = out.success().to_string();
    // Go sleeps a second, then prints the global status.
    assert!(out.elapsed >= Duration::from_secs(1), "{:?}", out.elapsed);
    assert!(text.starts_with(&format!("{cid} | n:\n")), "{text}");
    assert!(text.contains("    > peer0                : PINNED | 2026-05-11T10:00:00Z | Attempts: 0 | Priority: false\n"), "{text}");
    assert!(
        text.contains("    > peer2                : REMOTE | "),
        "{text}"
    );
    assert_eq!(server.fake.calls().last(), Some(&Call::Status(cid, false)));
}

#[test]
fn pin_add_rejects_bad_values_before_sending() {
    let server = TestServer::start();
    let cid = test_cid(4).to_string();
    for (args, why) in [
        (
            vec!["pin", "add", &cid, "--metadata", "novalue"],
            "metadata",
        ),
        (vec!["pin", "add", &cid, "--expire-in", "soon"], "expire-in"),
        (
            vec!["pin", "add", &cid, "--allocations", "nobody"],
            "allocations",
        ),
        (vec!["pin", "add", "not-a-cid"], "path"),
        (vec!["pin", "add", &cid, "--mode", "sideways"], "sideways"),
    ] {
        let out = server.ctl().run(args);
        out.expect_code(1);
        assert!(out.stderr.contains(why), "{why}: {}", out.stderr);
    }
    assert!(server.fake.calls().is_empty(), "{:?}", server.fake.calls());
}

#[test]
fn pin_ls_lists_the_pinset_in_text_and_json() {
    let server = TestServer::start();
    let a = server.fake.add_pin(test_cid(10), "alpha");
    let b = server.fake.add_pin(test_cid(11), "beta");
    let text = server.ctl().run(["pin", "ls"]).success().to_string();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains(&format!(
            "{} | alpha | PIN | Repl. Factor: 0--0 | Allocations: [",
            a.cid
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} | beta | PIN |", b.cid)),
        "{text}"
    );
    assert!(
        text.lines().all(
            |l| l.ends_with("| Recursive | Metadata: no | Exp: ∞ | Added: 2026-05-11 10:00:00")
        ),
        "{text}"
    );

    let pins: Vec<Pin> = server
        .ctl()
        .json()
        .run(["pin", "ls", "--filter", "pin,meta-pin"])
        .json_as();
    assert_eq!(pins, server.fake.pins());
    assert_eq!(
        server.fake.calls(),
        [
            Call::Allocations(PinTypeFilter::ALL),
            Call::Allocations(PinTypeFilter::parse("pin,meta-pin").expect("filter"))
        ]
    );

    let one: Vec<Pin> = server
        .ctl()
        .json()
        .run(["pin", "ls", &b.cid.to_string()])
        .json_as();
    assert_eq!(one, [b]);
}

#[test]
fn pin_ls_of_an_empty_pinset_prints_nothing() {
    let server = TestServer::start();
    assert_eq!(server.ctl().run(["pin", "ls"]).success(), "");
    assert_eq!(server.ctl().json().run(["pin", "ls"]).success(), "");
}

#[test]
fn status_with_zero_one_or_many_cids() {
    let server = TestServer::start();
    let (a, b, c) = (test_cid(20), test_cid(21), test_cid(22));
    server.fake.add_pin(a, "a");
    server.fake.add_pin(b, "b");
    server.fake.add_pin(c, "c");

    let all: Vec<GlobalPinInfo> = server.ctl().json().run(["status"]).json_as();
    assert_eq!(all.len(), 3);
    let one = server
        .ctl()
        .run(["status", "--local", &a.to_string()])
        .success()
        .to_string();
    assert_eq!(one.lines().count(), 2, "local: one peer\n{one}");
    assert!(
        one.starts_with(&format!("{a} | a:\n    > peer0                : PINNED | ")),
        "{one}"
    );
    let two: Vec<GlobalPinInfo> = server
        .ctl()
        .json()
        .run(["status", &b.to_string(), &c.to_string()])
        .json_as();
    assert_eq!(two.iter().map(|g| g.cid).collect::<Vec<_>>(), [b, c]);
    assert_eq!(two[0], server.fake.status_of(b, false));
    server
        .ctl()
        .run(["status", "--filter", "pinned,error"])
        .success();

    let filter = TrackerStatusFilter::parse("pinned,error").expect("filter");
    assert_eq!(
        server.fake.calls(),
        [
            Call::StatusAll(TrackerStatusFilter::ALL, false, vec![]),
            Call::Status(a, true),
            Call::StatusAll(TrackerStatusFilter::ALL, false, vec![b, c]),
            Call::StatusAll(filter, false, vec![]),
        ]
    );
    let out = server.ctl().run(["status", "--filter", "bogus"]);
    out.expect_code(1);
    assert!(out.stderr.contains("parsing filter flag"), "{}", out.stderr);
}

#[test]
fn pin_rm_then_status() {
    let server = TestServer::start();
    let cid = test_cid(30);
    server.fake.add_pin(cid, "gone");
    let text = server
        .ctl()
        .run(["pin", "rm", &cid.to_string()])
        .success()
        .to_string();
    assert!(text.starts_with(&format!("{cid}:\n")), "{text}");
    assert_eq!(text.matches(": UNPINNED | ").count(), 3, "{text}");
    assert!(server.fake.pins().is_empty());
    assert_eq!(
        server.fake.calls()[0],
        Call::UnpinPath(format!("/ipfs/{cid}"))
    );
}

#[test]
fn pin_rm_of_an_unknown_pin_is_an_api_error() {
    let server = TestServer::start();
    let out = server
        .ctl()
        .run(["pin", "rm", "--no-status", &test_cid(31).to_string()]);
    out.expect_code(2);
    assert_eq!(
        out.stdout,
        "An error occurred:\n  Code: 404\n  Message: pin is not part of the pinset\n"
    );
}

#[test]
fn pin_update_sends_pin_update() {
    let server = TestServer::start();
    let (from, to) = (test_cid(40), test_cid(41));
    server.fake.add_pin(from, "v1");
    let pins: Vec<Pin> = server
        .ctl()
        .json()
        .run([
            "pin",
            "update",
            &from.to_string(),
            &to.to_string(),
            "--name",
            "v2",
            "--no-status",
        ])
        .json_as();
    assert_eq!(pins[0].cid, to);
    let calls = server.fake.calls();
    let [Call::PinPath(path, o)] = &calls[..] else {
        panic!("unexpected calls {calls:?}")
    };
    assert_eq!(path, &format!("/ipfs/{to}"));
    assert_eq!(o.pin_update, Some(from));
    assert_eq!(o.name, "v2");
}

#[test]
fn recover_one_or_all() {
    let server = TestServer::start();
    let cid = test_cid(50);
    server.fake.add_pin(cid, "r");
    // As Go's, recover all answers only the pins in error.
    server.fake.set_status(TrackerStatus::PinError);
    let text = server
        .ctl()
        .run(["recover", &cid.to_string(), "--local"])
        .success()
        .to_string();
    assert!(text.starts_with(&format!("{cid} | r:\n")), "{text}");
    let all: Vec<GlobalPinInfo> = server.ctl().json().run(["recover"]).json_as();
    assert_eq!(all.len(), 1);
    assert_eq!(
        server.fake.calls(),
        [Call::Recover(cid, true), Call::RecoverAll(false)]
    );
}

#[test]
fn pin_add_wait_returns_once_pinned() {
    let server = TestServer::start();
    let cid = test_cid(60);
    let out = server.ctl().json().run([
        "pin",
        "add",
        "--wait",
        "--wait-timeout",
        "30s",
        &cid.to_string(),
    ]);
    let infos: Vec<GlobalPinInfo> = out.json_as();
    assert_eq!(infos.len(), 1);
    assert!(
        infos[0]
            .peer_map
            .values()
            .all(|p| matches!(p.status, TrackerStatus::Pinned | TrackerStatus::Remote))
    );
    // One poll after a second, and no extra status request after it.
    let statuses = server
        .fake
        .calls()
        .iter()
        .filter(|c| matches!(c, Call::Status(..)))
        .count();
    assert_eq!(statuses, 1);
}

#[test]
fn pin_add_wait_fails_on_a_pin_error() {
    let server = TestServer::start();
    server.fake.set_status(TrackerStatus::PinError);
    let out = server
        .ctl()
        .run(["pin", "add", "--wait", &test_cid(61).to_string()]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("error has occurred while attempting to reach status: pinned"),
        "{}",
        out.stderr
    );
}

#[test]
fn pin_add_wait_timeout_is_a_deadline() {
    let server = TestServer::start();
    server.fake.set_status(TrackerStatus::Pinning);
    let out = server.ctl().run([
        "pin",
        "add",
        "-w",
        "--wt",
        "1500ms",
        &test_cid(62).to_string(),
    ]);
    out.expect_code(62);
    assert!(
        out.stderr.contains("waiting for pin status"),
        "{}",
        out.stderr
    );
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
}

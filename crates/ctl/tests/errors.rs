//! Exit codes and error output: 2 when the API answered an error (its code
//! and message shown as Go shows them), 1 for client-side errors and
//! unreachable hosts, 62 when a deadline passed.

use std::collections::BTreeMap;
use std::time::Duration;

use api::types::{Id, Pin};

use crate::util::{TestServer, ctl, dead_host};
use api::testing::{FakeCluster, PEERS, Plan, test_cid};

fn with_credentials() -> TestServer {
    TestServer::start_with(FakeCluster::default(), |cfg| {
        cfg.basic_auth_credentials = Some(BTreeMap::from([(
            "admin".to_string(),
            "s3cret".to_string(),
        )]));
    })
}

#[test]
fn basic_auth_right_credentials() {
    let server = with_credentials();
    let out = server
        .ctl()
        .global(["--basic-auth", "admin:s3cret", "--force-http"])
        .run(["id"]);
    assert!(out.success().starts_with(PEERS[0]));
    // The environment variable works too.
    let out = server
        .ctl()
        .global(["-f"])
        .env("CLUSTER_CREDENTIALS", "admin:s3cret")
        .run(["version"]);
    out.success();
}

#[test]
fn basic_auth_wrong_or_missing_credentials_exit_2_with_the_401() {
    let server = with_credentials();
    let out = server
        .ctl()
        .global(["--basic-auth", "admin:wrong", "-f"])
        .run(["id"]);
    out.expect_code(2);
    assert_eq!(
        out.stdout,
        "An error occurred:\n  Code: 401\n  Message: unauthorized: access denied\n"
    );
    let out = server.ctl().run(["id"]);
    out.expect_code(2);
    assert!(
        out.stdout.contains("Code: 401\n  Message: unauthorized"),
        "{}",
        out.stdout
    );
    // In JSON, the API's error object.
    let out = server
        .ctl()
        .json()
        .global(["--basic-auth", "admin", "-f"])
        .run(["pin", "ls"]);
    out.expect_code(2);
    let errs = out.json_values();
    assert_eq!(errs[0]["code"], 401);
    assert_eq!(errs[0]["message"], "unauthorized: access denied");
}

#[test]
fn unreachable_host_exits_1() {
    let out = ctl(&dead_host()).run(["id"]);
    out.expect_code(1);
    assert!(
        out.stdout
            .starts_with("An error occurred:\n  Code: 0\n  Message: "),
        "{}",
        out.stdout
    );
    let out = ctl(&dead_host()).json().run(["pin", "ls"]);
    out.expect_code(1);
    assert_eq!(out.json_values()[0]["code"], 0);
}

#[test]
fn the_next_host_is_tried_when_one_is_unreachable() {
    let server = TestServer::start();
    let hosts = format!("{},{}", dead_host(), server.host());
    let ids: Vec<Id> = ctl(&hosts).json().run(["id"]).json_as();
    assert_eq!(ids[0].id, PEERS[0]);
    server.fake.add_pin(test_cid(1), "x");
    let pins: Vec<Pin> = ctl(&hosts).json().run(["pin", "ls"]).json_as();
    assert_eq!(pins.len(), 1);
}

#[test]
fn http_urls_are_accepted_as_host() {
    let server = TestServer::start();
    let out = ctl(&format!("http://{}", server.addr)).run(["version"]);
    out.success();
}

#[test]
fn bad_host_is_a_client_error() {
    let out = ctl("/ip4/127.0.0.1/udp/9094").run(["id"]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("parsing host multiaddress"),
        "{}",
        out.stderr
    );
}

#[test]
fn timeout_is_a_deadline() {
    let fake = FakeCluster::default().with_id_delay(Duration::from_secs(5));
    let server = TestServer::start_with(fake, |_| {});
    let out = server.ctl().global(["--timeout", "1"]).run(["id"]);
    out.expect_code(62);
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
}

#[test]
fn a_stream_error_after_items_prints_them_then_exits_2() {
    let fake =
        FakeCluster::default().with_plan(Plan::FailAfter(1, "the fake's pinset broke".into()));
    let server = TestServer::start_with(fake, |_| {});
    server.fake.add_pin(test_cid(1), "one");
    server.fake.add_pin(test_cid(2), "two");
    let out = server.ctl().run(["pin", "ls"]);
    out.expect_code(2);
    let (first, rest) = out.stdout.split_once('\n').expect("two parts");
    assert!(
        first.starts_with(&test_cid(1).to_string()),
        "{}",
        out.stdout
    );
    assert_eq!(
        rest,
        "An error occurred:\n  Code: 500\n  Message: the fake's pinset broke\n"
    );
}

#[test]
fn unknown_pin_is_a_404() {
    let server = TestServer::start();
    let out = server.ctl().run(["pin", "ls", &test_cid(9).to_string()]);
    out.expect_code(2);
    assert!(out.stdout.contains("Code: 404"), "{}", out.stdout);
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let out = ctl(&dead_host()).run(["pin", "add"]);
    out.expect_code(1);
    assert!(out.stderr.contains("CID|PATH"), "{}", out.stderr);
    ctl(&dead_host()).run(["no-such-command"]).expect_code(1);
    ctl(&dead_host())
        .global(["--enc", "yaml"])
        .run(["id"])
        .expect_code(1);
    let help = ctl(&dead_host()).run(["pin", "add", "--help"]);
    assert!(help.success().contains("--replication-min"));
    let out = crate::util::CtlCommand::new(crate::util::CTL, "x")
        .global(["-v"])
        .run(Vec::<String>::new());
    assert!(
        out.success().starts_with("ipfs-cluster-ctl "),
        "{}",
        out.stdout
    );
}

//! `ipfs-cluster-service` from `init` with the embedded node's HTTP gateway
//! configured: a file added through the REST API's `POST /add` is read
//! back over the gateway, whole and as a byte range.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use futures::StreamExt;
use support::daemon::{Daemon, edit_config, ok, service};

/// A GET over a fresh connection: status line, headers, body.
fn http_get(addr: &str, target: &str, extra: &str) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn a_file_added_over_rest_is_read_back_over_the_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("peer");
    ok(service(&dir).args(["init", "--randomports"]));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("service.json")).unwrap()).unwrap();
    assert_eq!(
        written["ipfs_connector"]["embedded"]["gateway_listen_multiaddress"], "",
        "init leaves the gateway off"
    );
    edit_config(&dir, |cfg| {
        cfg["ipfs_connector"]["embedded"]["gateway_listen_multiaddress"] =
            "/ip4/127.0.0.1/tcp/0".into();
    });

    let daemon = Daemon::start(&dir, &[]);
    let (mut api, mut gateway) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = daemon
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the daemon gets ready within a minute");
        if let Some(m) = line.strip_prefix("REST API listening on ") {
            let parts: Vec<&str> = m.trim().split('/').collect();
            api = Some(format!("{}:{}", parts[2], parts[4]));
        } else if let Some((_, addr)) = line.split_once("IPFS gateway listening on http://") {
            gateway = Some(addr.trim().to_owned());
        } else if line.contains("IPFS Cluster is READY") {
            break;
        }
    }
    let (api, gateway) = (api.unwrap(), gateway.expect("the daemon logs the gateway"));
    assert!(gateway.starts_with("127.0.0.1:"), "{gateway}");

    // Three blocks' worth with the default chunker.
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 + i / 1000) as u8).collect();
    let body = bytes::Bytes::from(data.clone());
    let root = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let client = support::daemon::client(&api);
            let file = api::service::AddFile {
                path: "data.bin".into(),
                kind: api::service::AddFileKind::File(futures::stream::iter([Ok(body)]).boxed()),
            };
            let out: Vec<_> = client
                .add(
                    &api::types::AddParams::default(),
                    futures::stream::iter([Ok(file)]).boxed(),
                )
                .collect()
                .await;
            out.last().unwrap().as_ref().unwrap().cid
        });

    let (status, headers, got) = http_get(&gateway, &format!("/ipfs/{root}"), "");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains(&format!("content-length: {}", data.len())),
        "{headers}"
    );
    assert!(got == data, "the added bytes");
    let (status, headers, got) = http_get(
        &gateway,
        &format!("/ipfs/{root}"),
        "range: bytes=262000-262300\r\n",
    );
    assert!(status.contains(" 206 "), "{status}");
    assert!(
        headers.contains("content-range: bytes 262000-262300/700000"),
        "{headers}"
    );
    assert!(got == data[262_000..=262_300]);
    daemon.stop();
}

//! The Kubo connector against real Kubo daemons (one per test, so that GC
//! and pin listings see only the test's own data).

use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster_types::{Pin, PinOptions};
use crdt_dag::{Replica, ReplicaConfig, Write};
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use ipfs::testing::KuboDaemon;
use ipfs::{
    Cid, IpfsConnector, IpfsError, IpfsPinType, KuboConfig, KuboConnector, MAX_ANSWER_BYTES,
    MAX_LINE_BYTES, PinLsFilter, PinMode, RATE_LIMIT_AFTER_FAILURES,
};
use multihash_codetable::{Code, MultihashDigest};

const RAW: u64 = 0x55;

fn connector(kubo: &KuboDaemon) -> KuboConnector {
    KuboConnector::new(kubo.config()).expect("connector")
}

fn random_bytes() -> Vec<u8> {
    let mut b = vec![0u8; 64];
    rand::Rng::fill(&mut rand::thread_rng(), &mut b[..]);
    b
}

fn raw_cid(data: &[u8]) -> Cid {
    Cid::new_v1(RAW, Code::Sha2_256.digest(data))
}

async fn pins(c: &KuboConnector, filter: PinLsFilter) -> Vec<(Cid, IpfsPinType)> {
    c.pin_ls(filter)
        .map(|r| r.expect("pin ls item"))
        .collect()
        .await
}

/// What Kubo's own CLI lists as pinned (type `all`).
fn cli_pins(kubo: &KuboDaemon) -> String {
    let out = kubo.cli(&["pin", "ls", "--type=all"]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn id_names_the_daemon() {
    let kubo = KuboDaemon::start();
    let id = connector(&kubo).id().await.expect("id");
    let cli = kubo.cli(&["id", "-f", "<id>"]);
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), id.id);
    assert!(id.agent_version.contains("0.42.0"), "{id:?}");
    assert!(!id.addresses.is_empty(), "{id:?}");
    // Loopback only.
    for a in &id.addresses {
        assert!(a.to_string().starts_with("/ip4/127.0.0.1/"), "{a}");
    }
}

#[tokio::test]
async fn blocks_round_trip() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    let data = random_bytes();
    let cid = c
        .block_put(Bytes::from(data.clone()), RAW)
        .await
        .expect("put");
    assert_eq!(cid, raw_cid(&data), "Kubo computes the same CID");
    assert_eq!(c.block_get(cid).await.expect("get"), data);
    let stat = c.block_stat(cid).await.expect("stat");
    assert_eq!((stat.cid, stat.size), (cid, data.len() as u64));

    // A dag-cbor block: the codec is kept.
    let cbor: &[u8] = &[0xa1, 0x61, b'a', 0x01]; // {"a": 1}
    let cid = c
        .block_put(Bytes::from_static(cbor), 0x71)
        .await
        .expect("put");
    assert_eq!(cid, Cid::new_v1(0x71, Code::Sha2_256.digest(cbor)));
    assert_eq!(c.block_get(cid).await.unwrap(), cbor);

    // Kubo's view of the bytes.
    let out = kubo.cli(&["block", "get", &raw_cid(&data).to_string()]);
    assert_eq!(out.stdout, data);

    // A codec Kubo can't name is refused before any request.
    assert!(matches!(
        c.block_put(Bytes::new(), 0xdead).await,
        Err(IpfsError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn pin_ls_unpin() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    // A new repository pins the empty directory.
    let base = pins(&c, PinLsFilter::All).await;
    let direct = c.block_put(random_bytes().into(), RAW).await.unwrap();
    let recursive = c.block_put(random_bytes().into(), RAW).await.unwrap();

    c.pin(direct, PinMode::Direct).await.expect("direct pin");
    c.pin(recursive, PinMode::Recursive)
        .await
        .expect("recursive pin");
    // Again: a no-op.
    c.pin(recursive, PinMode::Recursive)
        .await
        .expect("pin again");
    c.pin(recursive, PinMode::Direct)
        .await
        .expect("direct over recursive");
    c.pin(direct, PinMode::Direct).await.expect("direct again");

    let mut all = pins(&c, PinLsFilter::All).await;
    all.sort_by_key(|(cid, _)| cid.to_bytes());
    let mut expected = base.clone();
    expected.extend([
        (direct, IpfsPinType::Direct),
        (recursive, IpfsPinType::Recursive),
    ]);
    expected.sort_by_key(|(cid, _)| cid.to_bytes());
    assert_eq!(all, expected);
    assert_eq!(
        pins(&c, PinLsFilter::Direct).await,
        [(direct, IpfsPinType::Direct)]
    );
    assert_eq!(
        c.pin_ls_cid(recursive, PinLsFilter::Recursive)
            .await
            .unwrap(),
        Some(IpfsPinType::Recursive)
    );
    assert_eq!(
        c.pin_ls_cid(direct, PinLsFilter::Recursive).await.unwrap(),
        None
    );
    let listed = cli_pins(&kubo);
    assert!(listed.contains(&format!("{direct} direct")), "{listed}");
    assert!(
        listed.contains(&format!("{recursive} recursive")),
        "{listed}"
    );

    c.unpin(direct).await.expect("unpin");
    c.unpin(recursive).await.expect("unpin");
    assert_eq!(pins(&c, PinLsFilter::All).await, base);
    let listed = cli_pins(&kubo);
    assert!(!listed.contains(&direct.to_string()), "{listed}");
    assert!(!listed.contains(&recursive.to_string()), "{listed}");
    // Not pinned: success.
    c.unpin(direct).await.expect("unpin again");
    c.unpin(raw_cid(b"never seen"))
        .await
        .expect("unpin unknown");
}

/// A pinset history in CAR form: after one pin (`first` head) and a second
/// (`car`'s root, linking back to `first`).
fn history() -> (Cid, Cid, Vec<u8>) {
    let replica = Replica::temporary(
        SigningKey::from_bytes(&[7; 32]),
        ReplicaConfig::new("ipfs-test"),
    )
    .expect("replica");
    let pin = |n: &[u8]| Write::Pin(Pin::new(raw_cid(n), PinOptions::default()));
    replica.write(vec![pin(b"one")]).expect("write");
    let first = replica.heads().unwrap()[0];
    replica.write(vec![pin(b"two")]).expect("write");
    let heads = replica.heads().unwrap();
    assert_eq!(heads.len(), 1);
    let mut car = Vec::new();
    assert_eq!(replica.export_car(&mut car).unwrap(), 2);
    (first, heads[0], car)
}

#[tokio::test]
async fn dag_import_and_pin_update() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    let (first, second, car) = history();

    // Import without pinning, then pin the old head and update it.
    let base = pins(&c, PinLsFilter::Recursive).await.len();
    let import = c
        .dag_import(car.clone().into(), false)
        .await
        .expect("import");
    assert_eq!((import.pinned_roots.len(), import.blocks), (0, 2));
    assert_eq!(
        import.bytes as usize,
        c.block_stat(first).await.unwrap().size as usize
            + c.block_stat(second).await.unwrap().size as usize
    );
    assert_eq!(pins(&c, PinLsFilter::Recursive).await.len(), base);

    c.pin(first, PinMode::Recursive).await.unwrap();
    c.pin_update(first, second).await.expect("pin update");
    assert_eq!(
        pins(&c, PinLsFilter::Recursive).await.len(),
        base + 2,
        "both pinned (unpin=false)"
    );
    // `first` is below `second` too.
    assert_eq!(
        c.pin_ls_cid(first, PinLsFilter::All).await.unwrap(),
        Some(IpfsPinType::Recursive)
    );
    c.unpin(first).await.unwrap();
    assert_eq!(
        c.pin_ls_cid(first, PinLsFilter::All).await.unwrap(),
        Some(IpfsPinType::Indirect)
    );

    // Import again, pinning the root this time.
    c.unpin(second).await.unwrap();
    let import = c.dag_import(car.into(), true).await.expect("import");
    assert_eq!(import.pinned_roots, [second]);
    assert_eq!(
        c.pin_ls_cid(second, PinLsFilter::Recursive).await.unwrap(),
        Some(IpfsPinType::Recursive)
    );
    assert!(cli_pins(&kubo).contains(&format!("{second} recursive")));

    // Garbage is not a CAR.
    let err = c.dag_import(Bytes::from_static(b"garbage"), true).await;
    assert!(matches!(err, Err(IpfsError::Ipfs { .. })), "{err:?}");
}

#[tokio::test]
async fn resolve_paths() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    let (_, second, car) = history();
    c.dag_import(car.into(), false).await.unwrap();
    assert_eq!(c.resolve(second.to_string()).await.unwrap(), second);
    assert_eq!(c.resolve(format!("/ipfs/{second}")).await.unwrap(), second);
    // The delta's `prev` link.
    let prev = c
        .resolve(format!("/ipfs/{second}/prev"))
        .await
        .expect("resolve");
    assert_ne!(prev, second);
    assert_eq!(c.block_stat(prev).await.unwrap().cid, prev);
    let err = c.resolve(format!("/ipfs/{second}/nope")).await;
    assert!(matches!(err, Err(IpfsError::Ipfs { .. })), "{err:?}");
}

#[tokio::test]
async fn repo_stat_and_gc() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    let before = c.repo_stat().await.expect("repo stat");
    assert!(before.storage_max > 0);
    let kept = c.block_put(random_bytes().into(), RAW).await.unwrap();
    let garbage = c.block_put(vec![1u8; 100_000].into(), RAW).await.unwrap();
    c.pin(kept, PinMode::Direct).await.unwrap();
    let after = c.repo_stat().await.unwrap();
    assert!(after.repo_size > before.repo_size, "{before:?} {after:?}");

    let removed: Vec<Cid> = c.repo_gc().map(|r| r.expect("gc item")).collect().await;
    assert!(removed.contains(&garbage), "{removed:?}");
    assert!(!removed.contains(&kept));
    assert_eq!(c.block_stat(kept).await.unwrap().cid, kept);
    let out = kubo.cli(&["block", "stat", "--offline", &garbage.to_string()]);
    assert!(!out.status.success(), "the block is gone");
}

#[tokio::test]
async fn pin_without_progress_times_out() {
    let kubo = KuboDaemon::start();
    let c = KuboConnector::new(KuboConfig {
        pin_timeout: Duration::from_secs(2),
        ..kubo.config()
    })
    .unwrap();
    let missing = raw_cid(&random_bytes());
    let started = Instant::now();
    let err = c.pin(missing, PinMode::Recursive).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(err, IpfsError::PinTimeout { cid, progress: 0, .. } if cid == missing),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("no progress") && msg.contains(&missing.to_string()),
        "{msg}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(
        c.pin_ls_cid(missing, PinLsFilter::Recursive).await.unwrap(),
        None
    );
    // The daemon is still fine.
    c.id().await.expect("id after a cancelled pin");
}

#[tokio::test]
async fn unreachable_daemon_and_rate_limit() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = KuboConnector::new(KuboConfig::new(
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
    ))
    .unwrap();
    let started = Instant::now();
    for n in 1..=RATE_LIMIT_AFTER_FAILURES + 1 {
        let err = c.repo_stat().await.unwrap_err();
        assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("unreachable"),
            "{msg}"
        );
        assert_eq!(c.consecutive_failures(), n);
        assert_eq!(c.is_rate_limited(), n > RATE_LIMIT_AFTER_FAILURES);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no limit before"
    );
    // Limited: one request a second...
    let started = Instant::now();
    for _ in 0..3 {
        assert!(c.repo_stat().await.is_err());
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    // ...but `id` (what `GET /id` shows people) fails at once, unqueued.
    let started = Instant::now();
    let err = c.id().await.unwrap_err();
    assert!(
        matches!(err, IpfsError::Unreachable { endpoint: "id", .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(200));
    // Callers answering people ask the same without a request.
    let known = c.known_down("pin/ls").expect("known down while limited");
    assert!(
        matches!(
            known,
            IpfsError::Unreachable {
                endpoint: "pin/ls",
                ..
            }
        ),
        "{known:?}"
    );
    // Errors reach streams too.
    let first = c.pin_ls(PinLsFilter::All).next().await.unwrap();
    assert!(
        matches!(first, Err(IpfsError::Unreachable { .. })),
        "{first:?}"
    );

    // The daemon comes back: the first success ends the limit.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is free again");
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let body = r#"{"RepoSize":1,"StorageMax":2}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(answer.as_bytes()).await.unwrap();
        }
    });
    let stat = c.repo_stat().await.expect("answered");
    assert_eq!((stat.repo_size, stat.storage_max), (1, 2));
    assert_eq!(c.consecutive_failures(), 0);
    assert!(!c.is_rate_limited());
    assert!(c.known_down("pin/ls").is_none());
    let started = Instant::now();
    for _ in 0..3 {
        c.repo_stat().await.unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "no longer limited"
    );
    server.abort();
}

#[tokio::test]
async fn error_answers_are_not_failed_requests() {
    let kubo = KuboDaemon::start();
    let c = connector(&kubo);
    let err = c.resolve("/ipfs/not-a-cid".into()).await.unwrap_err();
    assert!(
        matches!(err, IpfsError::Ipfs { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(c.consecutive_failures(), 0);
}

#[tokio::test]
async fn swarm_connect_then_pin_over_bitswap() {
    let (a, b) = (KuboDaemon::start(), KuboDaemon::start());
    let (ca, cb) = (connector(&a), connector(&b));
    let data = random_bytes();
    let cid = cb.block_put(data.clone().into(), RAW).await.unwrap();

    let b_id = cb.id().await.unwrap();
    let addr = b_id.addresses[0].clone();
    assert!(
        addr.to_string().ends_with(&format!("/p2p/{}", b_id.id)),
        "{addr}"
    );
    ca.swarm_connect(addr).await.expect("swarm connect");
    let peers = a.cli(&["swarm", "peers"]);
    assert!(
        String::from_utf8_lossy(&peers.stdout).contains(&b_id.id),
        "{peers:?}"
    );

    // A fetches the block from B and pins it.
    ca.pin(cid, PinMode::Recursive)
        .await
        .expect("pin over bitswap");
    assert_eq!(ca.block_get(cid).await.unwrap(), data);

    // A bad address is a clear error.
    let err = ca
        .swarm_connect("/ip4/127.0.0.1/tcp/1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IpfsError::Ipfs { .. }), "{err:?}");
}

/// A fake daemon on loopback: each connection's request head (its first
/// read) is handed, with the connection, to `answer`. Its port and task.
async fn fake_daemon<F, Fut>(answer: F) -> (u16, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream, String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            tokio::spawn(answer(conn, request));
        }
    });
    (port, server)
}

/// A daemon answering without end is cut off with a clear error, not read
/// into memory: a whole answer over [`MAX_ANSWER_BYTES`], a streamed line
/// over [`MAX_LINE_BYTES`], an error body (its message truncated).
#[tokio::test]
async fn oversized_answers_are_refused() {
    use tokio::io::AsyncWriteExt;
    let (port, server) = fake_daemon(|mut conn, request| async move {
        let (status, len, fill) = if request.contains("/api/v0/repo/stat") {
            ("200 OK", MAX_ANSWER_BYTES + 1, b' ')
        } else if request.contains("/api/v0/pin/ls") {
            ("200 OK", MAX_LINE_BYTES + 1, b'x')
        } else {
            ("500 Internal Server Error", 1 << 20, b'e')
        };
        let head = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\n\r\n");
        let _ = conn.write_all(head.as_bytes()).await;
        let chunk = vec![fill; 64 << 10];
        let mut left = len;
        while left > 0 {
            let n = left.min(chunk.len());
            if conn.write_all(&chunk[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    })
    .await;
    let c = KuboConnector::new(KuboConfig::new(
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
    ))
    .unwrap();

    let err = c.repo_stat().await.unwrap_err();
    assert!(
        matches!(&err, IpfsError::Protocol { reason, .. } if reason.contains("larger than")),
        "{err:?}"
    );
    let first = c.pin_ls(PinLsFilter::All).next().await.unwrap();
    assert!(
        matches!(&first, Err(IpfsError::Protocol { reason, .. }) if reason.contains("line longer")),
        "{first:?}"
    );
    let err = c.id().await.unwrap_err();
    match err {
        IpfsError::Ipfs {
            status: 500,
            message,
            ..
        } => assert!(message.contains("no error message within"), "{message}"),
        other => panic!("{other:?}"),
    }
    server.abort();
}

/// A daemon that dies in the middle of an answer (the connection cut after
/// part of the body) is unreachable, as one that refuses the connection is,
/// for a whole answer and for a streamed one: not "an unexpected answer".
#[tokio::test]
async fn a_daemon_cut_mid_answer_is_unreachable() {
    use tokio::io::AsyncWriteExt;
    let (port, server) = fake_daemon(|mut conn, _request| async move {
        // Chunked, one line sent, then the daemon is gone.
        let _ = conn
            .write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  10\r\n{\"Keys\":{},\"x\":",
            )
            .await;
    })
    .await;
    let c = KuboConnector::new(KuboConfig::new(
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
    ))
    .unwrap();
    let err = c.repo_stat().await.unwrap_err();
    assert!(matches!(err, IpfsError::Unreachable { .. }), "{err:?}");
    let first = c.pin_ls(PinLsFilter::All).next().await.unwrap();
    assert!(
        matches!(first, Err(IpfsError::Unreachable { .. })),
        "{first:?}"
    );
    server.abort();
}

/// A streamed answer is read line by line whatever its chunks: many lines
/// in one chunk, a line split over several, blank lines, the last line
/// without its newline.
#[tokio::test]
async fn streamed_lines_survive_any_chunking() {
    use tokio::io::AsyncWriteExt;
    let cids: Vec<Cid> = (0..500u32).map(|n| raw_cid(&n.to_be_bytes())).collect();
    let mut body = String::new();
    for (i, cid) in cids.iter().enumerate() {
        if i % 97 == 0 {
            body.push_str("\n  \n");
        }
        body.push_str(&format!("{{\"Cid\":\"{cid}\",\"Type\":\"recursive\"}}\n"));
    }
    body.pop(); // the last line ends the body, not a newline
    let body = std::sync::Arc::new(body.into_bytes());
    let (port, server) = fake_daemon(move |mut conn, _request| {
        let body = std::sync::Arc::clone(&body);
        async move {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            // Chunks of 1, 7, 61 and 4099 bytes in turn, each flushed.
            let mut at = 0;
            for size in [1usize, 7, 61, 4099].into_iter().cycle() {
                if at == body.len() {
                    break;
                }
                let end = (at + size).min(body.len());
                let mut chunk = format!("{:x}\r\n", end - at).into_bytes();
                chunk.extend_from_slice(&body[at..end]);
                chunk.extend_from_slice(b"\r\n");
                if conn.write_all(&chunk).await.is_err() || conn.flush().await.is_err() {
                    return;
                }
                at = end;
            }
            let _ = conn.write_all(b"0\r\n\r\n").await;
        }
    })
    .await;
    let c = KuboConnector::new(KuboConfig::new(
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
    ))
    .unwrap();
    let got = pins(&c, PinLsFilter::Recursive).await;
    let want: Vec<(Cid, IpfsPinType)> = cids.iter().map(|c| (*c, IpfsPinType::Recursive)).collect();
    assert_eq!(got, want);
    server.abort();
}

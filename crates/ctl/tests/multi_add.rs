//! `ipfs-cluster-ctl add` to a 3-peer cluster of Kubos: the receiving peer
//! builds the DAG once and puts every block into each allocated peer's
//! Kubo, none into the others, before the pin is made; a destination that
//! fails ends the add with its error and no pin.

use std::path::Path;

use api::types::{AddedOutput, Pin};
use ipfs::testing::KuboDaemon;
use peer::Peer;

use crate::cluster::{ctl, freespace_metrics, peer_with_api, until};

/// Which Kubo holds every block of `root` without asking the network.
fn holds_all(kubo: &KuboDaemon, root: &str) -> bool {
    kubo.cli(&["refs", "-r", "--offline", "--unique", root])
        .status
        .success()
}

/// Which Kubo holds the root block itself.
fn holds_root(kubo: &KuboDaemon, root: &str) -> bool {
    kubo.cli(&["block", "stat", "--offline", root])
        .status
        .success()
}

/// A directory with a multi-block file, a subdirectory and a directory
/// wide enough to be a HAMT (2000 names of 100 bytes).
fn tree(at: &Path) {
    std::fs::create_dir_all(at.join("sub")).unwrap();
    std::fs::create_dir_all(at.join("wide")).unwrap();
    std::fs::write(at.join("big.bin"), ipfs::testing::noise(3 << 20, 7)).unwrap();
    std::fs::write(at.join("sub/a.txt"), b"in a subdirectory").unwrap();
    for i in 0..2000 {
        std::fs::write(at.join("wide").join(format!("{i:0100}")), i.to_string()).unwrap();
    }
}

/// The last output of a streamed `--enc json` add: the root.
fn root_of(out: &crate::util::cli::CtlOutput) -> AddedOutput {
    out.json_as::<AddedOutput>()
        .pop()
        .unwrap_or_else(|| panic!("no output: {out:?}"))
}

async fn cluster(kubos: &[KuboDaemon; 3]) -> (Vec<Peer>, Vec<String>) {
    let mut peers = Vec::new();
    let mut hosts = Vec::new();
    for k in kubos {
        let (p, h) = peer_with_api(k).await;
        peers.push(p);
        hosts.push(h);
    }
    for p in &peers[1..] {
        p.dial(peers[0].addresses().await.unwrap().remove(0))
            .await
            .unwrap();
    }
    until("all peers alive with metrics", async || {
        let mut ok = true;
        for p in &peers {
            ok &= p.peers().len() == 3 && freespace_metrics(p).await == 3;
        }
        ok
    })
    .await;
    (peers, hosts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_puts_every_block_into_each_allocated_kubo_and_no_other() {
    let mut kubos = [
        KuboDaemon::start(),
        KuboDaemon::start(),
        KuboDaemon::start(),
    ];
    let (peers, hosts) = cluster(&kubos).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tree");
    tree(&dir);
    let path = dir.to_str().unwrap().to_owned();

    // Replication 2 through c, no pin: the blocks are only where the add
    // put them (nothing fetches them), so the allocated Kubos hold the
    // whole DAG and the other holds nothing of it.
    let p = path.clone();
    let out = ctl(&hosts[2], move |c| {
        c.json()
            .run(["add", "-r", "--no-pin", "--rmin", "2", "--rmax", "2", &p])
    })
    .await;
    out.success();
    let root = root_of(&out);
    assert_eq!(root.name, "tree");
    assert_eq!(root.allocations.len(), 2, "{root:?}");
    let cid = root.cid.to_string();
    for (i, p) in peers.iter().enumerate() {
        let allocated = root.allocations.contains(&p.id().to_string());
        if allocated {
            assert!(
                holds_all(&kubos[i], &cid),
                "allocated Kubo {i} lacks blocks"
            );
        } else {
            assert!(!holds_root(&kubos[i], &cid), "Kubo {i} got the root");
            let big = kubos[i].cli(&["block", "stat", "--offline", &format!("{cid}/big.bin")]);
            assert!(!big.status.success(), "Kubo {i} got a file");
        }
    }
    assert!(
        peers[2].handle().get(&root.cid).unwrap().is_none(),
        "--no-pin made a pin"
    );

    // `--local`: the blocks go only into the receiving peer's Kubo, which
    // is among the allocations.
    let one = tmp.path().join("local.bin");
    std::fs::write(&one, ipfs::testing::noise(1 << 20, 3)).unwrap();
    let p = one.to_str().unwrap().to_owned();
    let out = ctl(&hosts[2], move |c| {
        c.json().run([
            "add", "--local", "--no-pin", "--rmin", "2", "--rmax", "2", &p,
        ])
    })
    .await;
    out.success();
    let root = root_of(&out);
    assert!(
        root.allocations.contains(&peers[2].id().to_string()),
        "{root:?}"
    );
    let cid = root.cid.to_string();
    assert!(holds_all(&kubos[2], &cid));
    assert!(!holds_root(&kubos[0], &cid) && !holds_root(&kubos[1], &cid));

    // Pinned to a and b through c: a and b hold everything when ctl
    // returns (the pin is made after the last block is in place), c's
    // Kubo nothing, and the pin carries those allocations.
    std::fs::write(dir.join("sub/b.txt"), b"a second add, a new root").unwrap();
    let mut args = to_a_and_b(&peers, &["add", "-r", "--name", "tree"]);
    args.push(path.clone());
    let out = ctl(&hosts[2], move |c| c.json().run(args)).await;
    out.success();
    let root = root_of(&out);
    let cid = root.cid.to_string();
    assert!(holds_all(&kubos[0], &cid) && holds_all(&kubos[1], &cid));
    assert!(
        !holds_root(&kubos[2], &cid),
        "the receiving peer's Kubo got the root"
    );
    let pin: Pin = peers[2].handle().get(&root.cid).unwrap().expect("pinned");
    let mut want = vec![peers[0].id().to_string(), peers[1].id().to_string()];
    let mut got = pin.allocations.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(pin.options.name, "tree");

    // An allocated Kubo that goes down in the middle of an add: the add
    // fails naming that peer, and no pin claims the content is anywhere.
    let huge = tmp.path().join("huge.bin");
    std::fs::write(&huge, ipfs::testing::noise(96 << 20, 9)).unwrap();
    let mut args = to_a_and_b(&peers, &["add", "-Q"]);
    args.push(huge.to_str().unwrap().to_owned());
    let host = hosts[2].clone();
    let add = tokio::spawn(async move { ctl(&host, move |c| c.run(args)).await });
    let before = local_blocks(&kubos[1]);
    until("blocks of the big file reach b's Kubo", async || {
        local_blocks(&kubos[1]) > before + 20
    })
    .await;
    kubos[1].stop();
    let out = add.await.unwrap();
    assert_ne!(out.code, 0, "the add outran the stop: {out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(&format!("IPFS of peer {}: putting block", peers[1].id()))
            && said.contains("unreachable"),
        "the error names the failed peer and why: {out:?}"
    );
    let pins: Vec<Pin> = peers[2].handle().pins().map(Result::unwrap).collect();
    assert_eq!(pins.len(), 1, "only the earlier pin: {pins:?}");
}

/// `args` then replication 2 allocated to the first two peers.
fn to_a_and_b(peers: &[Peer], args: &[&str]) -> Vec<String> {
    let allocs = format!("{},{}", peers[0].id(), peers[1].id());
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend(["--allocations".into(), allocs]);
    all.extend(["--rmin", "2", "--rmax", "2"].map(String::from));
    all
}

/// How many blocks a Kubo holds.
fn local_blocks(kubo: &KuboDaemon) -> usize {
    let out = kubo.cli(&["refs", "local"]);
    String::from_utf8_lossy(&out.stdout).lines().count()
}

//! CAR v1 against a real Kubo (v0.42.0, `scripts/install-kubo`): Kubo's
//! `dag export` imports and pins here, ours imports into Kubo with
//! `dag import`, multi-root files work both ways, and broken files are
//! refused with clear errors and nothing pinned.

use std::path::Path;
use std::process::Output;

use cid::Cid;
use ipfs::IpfsPinType;
use ipfs::testing::KuboDaemon;
use ipfs_node::{Block, CarWriter, NodeError, Store, export_car, import_car, read_car, write_car};

fn temp_store() -> Store {
    let db = sled::Config::new().temporary(true).open().unwrap();
    Store::open(&db, 10 << 30).unwrap()
}

/// Pseudo-random bytes (xorshift64*), the same for the same seed.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap().trim().to_owned()
}

/// `ipfs add` of `data` (extra flags allowed); returns the root.
fn kubo_add(kubo: &KuboDaemon, dir: &Path, name: &str, data: &[u8], flags: &[&str]) -> Cid {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    let mut args = vec!["add", "-Q"];
    args.extend_from_slice(flags);
    args.push(path.to_str().unwrap());
    text(ok(kubo.cli(&args), "ipfs add")).parse().unwrap()
}

/// Every block of a DAG by Kubo's count (`refs -r --unique`, root added).
fn kubo_refs(kubo: &KuboDaemon, root: &Cid) -> Vec<Cid> {
    let refs = text(ok(
        kubo.cli(&["refs", "-r", "--unique", &root.to_string()]),
        "ipfs refs",
    ));
    let mut v: Vec<Cid> = refs.lines().map(|l| l.parse().unwrap()).collect();
    v.push(*root);
    v
}

fn kubo_export(kubo: &KuboDaemon, root: &Cid) -> Vec<u8> {
    ok(
        kubo.cli(&["dag", "export", &root.to_string()]),
        "ipfs dag export",
    )
}

fn kubo_recursive_pins(kubo: &KuboDaemon) -> String {
    text(ok(
        kubo.cli(&["pin", "ls", "--type=recursive", "-q"]),
        "ipfs pin ls",
    ))
}

/// Kubo's export of a 3 MiB file imports and pins here with every block;
/// our export of it is what Kubo's is, and Kubo imports it, pins it and
/// reads the file back.
#[test]
fn car_round_trip_with_kubo() {
    let dir = tempfile::tempdir().unwrap();
    let kubo = KuboDaemon::start();
    let data = random_bytes(3 << 20, 7);
    let root = kubo_add(&kubo, dir.path(), "file", &data, &[]);
    let kubo_car = kubo_export(&kubo, &root);
    let car_path = dir.path().join("kubo.car");
    std::fs::write(&car_path, &kubo_car).unwrap();

    let store = temp_store();
    let imported = import_car(&store, std::fs::File::open(&car_path).unwrap(), true).unwrap();
    let refs = kubo_refs(&kubo, &root);
    assert_eq!(imported.roots, [root]);
    assert!(imported.pinned);
    assert_eq!(imported.blocks, refs.len() as u64);
    assert_eq!(imported.new_blocks, refs.len() as u64);
    for cid in &refs {
        assert!(store.has(cid).unwrap(), "{cid} missing after import");
    }
    assert_eq!(store.pin_type(&root).unwrap(), Some(IpfsPinType::Recursive));
    assert!(store.pin_recursive(&root).unwrap().already_pinned);
    assert!(store.gc().unwrap().removed.is_empty());
    assert!(store.stat().unwrap().repo_size > 3 << 20);

    let mut ours = Vec::new();
    let exported = export_car(&store, &root, &mut ours).unwrap();
    assert_eq!(exported.blocks, refs.len() as u64);
    assert_eq!(ours, kubo_car, "same DAG, same order, same bytes as Kubo");

    let other = KuboDaemon::start();
    let our_path = dir.path().join("ours.car");
    std::fs::write(&our_path, &ours).unwrap();
    ok(
        other.cli(&["dag", "import", "--pin-roots", our_path.to_str().unwrap()]),
        "ipfs dag import",
    );
    assert!(kubo_recursive_pins(&other).contains(&root.to_string()));
    assert_eq!(ok(other.cli(&["cat", &root.to_string()]), "ipfs cat"), data);
}

/// A CAR with two roots (a CIDv0 DAG and a CIDv1 raw-leaves DAG): we pin
/// both roots on import, and Kubo imports our file with both pinned.
#[test]
fn multi_root_car() {
    let dir = tempfile::tempdir().unwrap();
    let kubo = KuboDaemon::start();
    let a_data = random_bytes(600 << 10, 1);
    let b_data = random_bytes(300 << 10, 2);
    let a = kubo_add(&kubo, dir.path(), "a", &a_data, &[]);
    let b = kubo_add(
        &kubo,
        dir.path(),
        "b",
        &b_data,
        &["--cid-version=1", "--raw-leaves"],
    );
    let blocks: Vec<Block> = [a, b]
        .iter()
        .flat_map(|root| {
            read_car(std::io::Cursor::new(kubo_export(&kubo, root)))
                .unwrap()
                .map(Result::unwrap)
        })
        .collect();
    let mut car = Vec::new();
    assert_eq!(
        write_car(&[a, b], blocks.clone(), &mut car).unwrap(),
        blocks.len() as u64
    );

    let reader = read_car(&car[..]).unwrap();
    assert_eq!(reader.roots(), [a, b]);
    assert_eq!(reader.count(), blocks.len());

    let store = temp_store();
    let imported = import_car(&store, &car[..], true).unwrap();
    assert_eq!(imported.roots, [a, b]);
    assert_eq!(store.pin_type(&a).unwrap(), Some(IpfsPinType::Recursive));
    assert_eq!(store.pin_type(&b).unwrap(), Some(IpfsPinType::Recursive));
    assert!(store.gc().unwrap().removed.is_empty());

    // Without pin_roots the blocks are stored but unpinned.
    let unpinned = temp_store();
    assert!(!import_car(&unpinned, &car[..], false).unwrap().pinned);
    assert_eq!(unpinned.pins().count(), 0);
    assert_eq!(unpinned.gc().unwrap().removed.len(), blocks.len());

    let other = KuboDaemon::start();
    let path = dir.path().join("multi.car");
    std::fs::write(&path, &car).unwrap();
    ok(
        other.cli(&["dag", "import", "--pin-roots", path.to_str().unwrap()]),
        "ipfs dag import",
    );
    let pins = kubo_recursive_pins(&other);
    assert!(pins.contains(&a.to_string()) && pins.contains(&b.to_string()));
    assert_eq!(ok(other.cli(&["cat", &a.to_string()]), "cat a"), a_data);
    assert_eq!(ok(other.cli(&["cat", &b.to_string()]), "cat b"), b_data);
}

/// Truncated, tampered and incomplete CARs are refused with errors that say
/// what is wrong, pin nothing, and leave only unpinned blocks that GC
/// removes. Kubo refuses the tampered file too.
#[test]
fn broken_cars_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kubo = KuboDaemon::start();
    let data = random_bytes(1 << 20, 3);
    let root = kubo_add(&kubo, dir.path(), "file", &data, &[]);
    let car = kubo_export(&kubo, &root);

    let check_nothing_pinned = |store: &Store| {
        assert_eq!(store.pins().count(), 0);
        assert_eq!(store.pin_type(&root).unwrap(), None);
        store.gc().unwrap();
        assert_eq!(store.stat().unwrap().num_objects, 0);
    };

    // Cut inside the last section.
    let store = temp_store();
    let err = import_car(&store, &car[..car.len() - 1000], true).unwrap_err();
    assert!(
        matches!(err, NodeError::Malformed { .. }) && err.to_string().contains("truncated"),
        "{err}"
    );
    check_nothing_pinned(&store);

    // Cut inside the header.
    let err = import_car(&temp_store(), &car[..20], true).unwrap_err();
    assert!(err.to_string().contains("truncated header"), "{err}");

    // One byte of block data flipped: the error names the block.
    let blocks: Vec<Block> = read_car(&car[..]).unwrap().map(Result::unwrap).collect();
    let mut tampered = car.clone();
    let at = car.len() / 2;
    tampered[at] ^= 0x01;
    let store = temp_store();
    let err = import_car(&store, &tampered[..], true).unwrap_err();
    let NodeError::BadBlock { cid } = &err else {
        panic!("{err}")
    };
    assert!(blocks.iter().any(|b| b.cid().to_string() == *cid), "{cid}");
    assert!(
        err.to_string().contains("does not match its bytes"),
        "{err}"
    );
    check_nothing_pinned(&store);
    let path = dir.path().join("tampered.car");
    std::fs::write(&path, &tampered).unwrap();
    let out = other_kubo_import(&kubo, &path);
    assert!(!out.status.success(), "Kubo imported a tampered CAR");

    // Well-formed but one leaf short: the pin fails naming it.
    let missing = *blocks.last().unwrap().cid();
    let mut short = Vec::new();
    let mut w = CarWriter::new(&mut short, &[root]).unwrap();
    for b in blocks.iter().filter(|b| *b.cid() != missing) {
        w.write(b).unwrap();
    }
    w.finish().unwrap();
    let store = temp_store();
    let err = import_car(&store, &short[..], true).unwrap_err();
    assert!(
        matches!(&err, NodeError::MissingBlock { cid, .. } if *cid == missing.to_string()),
        "{err}"
    );
    check_nothing_pinned(&store);

    // Another version, and a section announcing more than the bound.
    let mut v3 = Vec::new();
    CarWriter::new(&mut v3, &[root]).unwrap().finish().unwrap();
    let pos = v3.iter().rposition(|&b| b == 0x01).unwrap();
    v3[pos] = 0x03;
    let err = read_car(&v3[..]).unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
    let mut huge = Vec::new();
    CarWriter::new(&mut huge, &[root])
        .unwrap()
        .finish()
        .unwrap();
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x01]); // 256 MiB
    let err = read_car(&huge[..]).unwrap().next().unwrap().unwrap_err();
    assert!(matches!(err, NodeError::TooLarge { .. }), "{err}");
}

/// `ipfs dag import` of `path` into `kubo` (without pinning).
fn other_kubo_import(kubo: &KuboDaemon, path: &Path) -> Output {
    kubo.cli(&["dag", "import", "--pin-roots=false", path.to_str().unwrap()])
}

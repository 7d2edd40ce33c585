//! The test vectors of spec/vectors/: every file there gives exactly its
//! expected outcome through our decoder, verifier and replica, and the
//! files are what the generator below writes (rewrite them with
//! `CRDT_WRITE_VECTORS=1 cargo test -p crdt-dag --test vectors`).

mod vector_kit;

use std::path::PathBuf;

use cid::Cid;
use crdt_dag::{Delta, MemoryBlockSource, Replica, ReplicaConfig, TrustPolicy};
use multihash_codetable::{Code, MultihashDigest};
use vector_kit::cbor::V;
use vector_kit::json::J;
use vector_kit::*;

/// One block of a vector and what it must give.
#[derive(Clone, Debug)]
struct Step {
    cid: String,
    block: Vec<u8>,
    expect: String,
}

/// A vector: blocks delivered in order to a fresh replica of `CLUSTER`
/// trusting `trusted`; the last is the one the vector is about.
#[derive(Clone, Debug)]
struct Vector {
    name: String,
    about: String,
    trusted: Vec<String>,
    before: Vec<Step>,
    step: Step,
    /// Filled by [`run`].
    state_hash: String,
}

const VALID: &str = "valid";

fn dir() -> PathBuf {
    // At run time first: a test binary reused from a build in another
    // checkout (a shared target folder) must read this checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../spec/vectors")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| e.to_string()))
        .collect()
}

/// Delivers the vector's blocks and checks each outcome; returns the state
/// hash after the last.
fn run(v: &Vector) -> Result<String, String> {
    let trust = TrustPolicy::from_strings(&v.trusted).map_err(|e| e.to_string())?;
    let cfg = ReplicaConfig {
        trust: trust.clone(),
        ..ReplicaConfig::new(CLUSTER)
    };
    let replica = Replica::temporary(key(9), cfg).map_err(|e| e.to_string())?;
    let source = MemoryBlockSource::new();
    for (i, step) in v.before.iter().chain([&v.step]).enumerate() {
        let cid: Cid = step.cid.parse().map_err(|e| format!("block {i}: {e}"))?;
        let got = match Delta::verify(&cid, &step.block, CLUSTER, &trust) {
            Err(reason) => reason.kind().to_string(),
            Ok(delta) => {
                if delta.encode() != step.block {
                    return Err(format!("block {i} re-encodes to other bytes"));
                }
                source.insert(cid, step.block.clone());
                let report = futures::executor::block_on(replica.sync(&[cid], &source))
                    .map_err(|e| e.to_string())?;
                match &report.rejected[..] {
                    [] if report.applied == 1 => VALID.to_string(),
                    [(c, reason)] if *c == cid && report.applied == 0 => reason.kind().to_string(),
                    _ => format!("unexpected sync report {report:?}"),
                }
            }
        };
        if got != step.expect {
            return Err(format!(
                "block {i} ({}): expected {}, got {got}",
                step.cid, step.expect
            ));
        }
    }
    Ok(hex(&replica.state_hash().map_err(|e| e.to_string())?))
}

fn step_json(s: &Step) -> J {
    J::O(vec![
        ("cid".into(), J::S(s.cid.clone())),
        ("block_hex".into(), J::S(hex(&s.block))),
        ("expect".into(), J::S(s.expect.clone())),
    ])
}

fn to_json(v: &Vector) -> J {
    J::O(vec![
        ("name".into(), J::S(v.name.clone())),
        ("about".into(), J::S(v.about.clone())),
        ("cluster".into(), J::S(CLUSTER.into())),
        (
            "trusted".into(),
            J::A(v.trusted.iter().cloned().map(J::S).collect()),
        ),
        (
            "before".into(),
            J::A(v.before.iter().map(step_json).collect()),
        ),
        ("cid".into(), J::S(v.step.cid.clone())),
        ("block_hex".into(), J::S(hex(&v.step.block))),
        ("expect".into(), J::S(v.step.expect.clone())),
        ("state_hash".into(), J::S(v.state_hash.clone())),
    ])
}

fn from_json(j: &J) -> Result<Vector, String> {
    let s = |o: &J, k: &str| -> Result<String, String> {
        o.get(k)
            .and_then(J::str)
            .map(str::to_owned)
            .ok_or(format!("no string {k:?}"))
    };
    let step = |o: &J| -> Result<Step, String> {
        Ok(Step {
            cid: s(o, "cid")?,
            block: unhex(&s(o, "block_hex")?)?,
            expect: s(o, "expect")?,
        })
    };
    if s(j, "cluster")? != CLUSTER {
        return Err("the vectors are all in cluster \"vectors\"".into());
    }
    let list = |k: &str| j.get(k).and_then(J::arr).ok_or(format!("no array {k:?}"));
    Ok(Vector {
        name: s(j, "name")?,
        about: s(j, "about")?,
        trusted: list("trusted")?
            .iter()
            .map(|t| t.str().map(str::to_owned).ok_or("trusted: not a string"))
            .collect::<Result<_, _>>()?,
        before: list("before")?.iter().map(step).collect::<Result<_, _>>()?,
        step: step(j)?,
        state_hash: s(j, "state_hash")?,
    })
}

/// The generated vectors with their state hashes; with
/// `CRDT_WRITE_VECTORS` set, also written to spec/vectors/ (once, before
/// either test reads the files).
fn generated() -> &'static [Vector] {
    static VECTORS: std::sync::OnceLock<Vec<Vector>> = std::sync::OnceLock::new();
    VECTORS.get_or_init(|| {
        let vectors: Vec<Vector> = generate()
            .into_iter()
            .map(|mut v| {
                v.state_hash = run(&v).unwrap_or_else(|e| panic!("{}: {e}", v.name));
                v
            })
            .collect();
        if std::env::var_os("CRDT_WRITE_VECTORS").is_some() {
            std::fs::create_dir_all(dir()).unwrap();
            for p in json_files() {
                std::fs::remove_file(p).unwrap();
            }
            for v in &vectors {
                std::fs::write(dir().join(format!("{}.json", v.name)), to_json(v).write()).unwrap();
            }
        }
        vectors
    })
}

fn json_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

#[test]
fn every_vector_file_gives_its_expected_outcome() {
    generated();
    let files = json_files();
    assert!(files.len() >= 60, "only {} vector files", files.len());
    // The count the docs give is the count there is.
    for doc in ["README.md", "../crdt.md"] {
        let text = std::fs::read_to_string(dir().join(doc)).unwrap();
        let said = format!("{} vectors", files.len());
        assert!(
            text.contains(&said),
            "spec/vectors/{doc} does not say {said:?}"
        );
    }
    let mut kinds = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let checked = J::parse(&text).and_then(|j| from_json(&j)).and_then(|v| {
            let stem = f.file_stem().unwrap().to_string_lossy();
            if v.name != stem {
                return Err(format!("named {:?}", v.name));
            }
            kinds.insert(v.step.expect.clone());
            let hash = run(&v)?;
            if hash != v.state_hash {
                return Err(format!("state hash {hash}, file says {}", v.state_hash));
            }
            Ok(())
        });
        if let Err(e) = checked {
            failures.push(format!("{}: {e}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every reason a block can get has a vector, and so has a valid block.
    let all = [
        VALID,
        "BlockTooLarge",
        "UnsupportedCid",
        "HashMismatch",
        "Malformed",
        "NonCanonical",
        "UnsupportedVersion",
        "WrongCluster",
        "TooMany",
        "InvalidWriter",
        "UntrustedWriter",
        "BadSignature",
        "PriorityMismatch",
        "PrevMismatch",
        "RejectedAncestor",
    ];
    for k in all {
        assert!(kinds.contains(k), "no vector expects {k}");
    }
}

#[test]
fn the_vector_files_are_what_the_generator_writes() {
    let vectors = generated();
    let mut names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), vectors.len(), "two vectors share a name");
    let mut stale: Vec<String> = json_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|stem| !names.contains(&stem.as_str()))
        .collect();
    for v in vectors {
        let path = dir().join(format!("{}.json", v.name));
        if std::fs::read_to_string(&path).ok() != Some(to_json(v).write()) {
            stale.push(v.name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "spec/vectors/ differs from the generator for {stale:?}: if the change is \
         meant, rewrite them with CRDT_WRITE_VECTORS=1 cargo test -p crdt-dag --test vectors"
    );
}

// ---------------------------------------------------------------------
// The generator: fixed keys, timestamps and contents, so every run writes
// the same bytes.

fn step(d: &V, expect: &str) -> Step {
    let (cid, block) = block(d);
    Step {
        cid: cid.to_string(),
        block,
        expect: expect.into(),
    }
}

fn cid_of(d: &V) -> Cid {
    block(d).0
}

struct Gen {
    out: Vec<Vector>,
    trusted: Vec<String>,
}

impl Gen {
    fn add(&mut self, name: &str, about: &str, before: &[&V], d: &V, expect: &str) {
        self.add_step(name, about, before, step(d, expect));
    }

    fn add_step(&mut self, name: &str, about: &str, before: &[&V], s: Step) {
        self.out.push(Vector {
            name: name.into(),
            about: about.into(),
            trusted: self.trusted.clone(),
            before: before.iter().map(|d| step(d, VALID)).collect(),
            step: s,
            state_hash: String::new(),
        });
    }

    /// A root by writer A pinning `content(1)`, tampered by `f` after
    /// building and signed again: one defect, a valid signature.
    fn tampered(&mut self, name: &str, expect: &str, about: &str, f: impl Fn(&mut V)) {
        let mut d = root_a();
        f(&mut d);
        sign(&mut d, &key(1));
        self.add(name, about, &[], &d, expect);
    }

    /// Like [`Gen::tampered`], on the first op's options.
    fn opts(&mut self, name: &str, expect: &str, about: &str, f: impl Fn(&mut V)) {
        self.tampered(name, expect, about, |d| {
            f(d.get_mut("ops").at(0).get_mut("opts"))
        });
    }
}

fn root_a() -> V {
    signed(
        &key(1),
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(1), named("one"), vec![])],
    )
}

fn root_b() -> V {
    signed(
        &key(2),
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(2), named("two"), vec![])],
    )
}

fn every_field() -> V {
    let a = peer_text(&key(1));
    let b = peer_text(&key(2));
    V::map(vec![
        ("ts", V::U(1_700_000_000_000)),
        ("ref", V::B(content(900).to_bytes())),
        ("meta", V::map(vec![("k", V::text("v"))])),
        ("name", V::text("full")),
        ("rmax", V::int(3)),
        ("rmin", V::int(2)),
        ("type", V::U(2)),
        ("depth", V::int(0)),
        ("shard", V::U(1 << 20)),
        ("allocs", V::A(vec![V::text(&a), V::text(&b)])),
        ("expire", V::U(1_800_000_000)),
        ("update", V::B(content(901).to_bytes())),
        ("ualloc", V::A(vec![V::text(&a)])),
        ("origins", V::A(vec![V::text("/ip4/127.0.0.1/tcp/4001")])),
    ])
}

fn generate() -> Vec<Vector> {
    let (ka, kb) = (key(1), key(2));
    let mut g = Gen {
        out: Vec::new(),
        trusted: vec![peer_text(&ka), peer_text(&kb)],
    };
    let (ra, rb) = (root_a(), root_b());
    let (ca, cb) = (cid_of(&ra), cid_of(&rb));

    // --- Valid blocks.
    g.add("valid-root", "A's first delta: seq 1, prev null, no parents, priority 1, one pin with only a name; tombs [] is written even when empty", &[], &ra, VALID);
    let d = signed(
        &ka,
        1,
        None,
        &[],
        1,
        vec![
            pin_op(&content(77), every_field(), vec![]),
            pin_op(&content(5), V::map(vec![]), vec![]),
            unpin_op(&content(6), vec![]),
        ],
    );
    g.add("valid-every-field", "a pin with every PinOptions key (type 2 = meta-pin, depth 0 = direct), a pin with every default ({}), and an unpin of a CID never pinned (valid, changes nothing)", &[], &d, VALID);
    let d = signed(
        &ka,
        2,
        Some(&ca),
        &[ca],
        2,
        vec![pin_op(
            &content(1),
            named("one, renamed"),
            vec![dot(&ca, 0)],
        )],
    );
    g.add("valid-update", "A's second delta replaces its pin: prev and parents name A's root, priority 2, the tomb names the entry it replaces", &[&ra], &d, VALID);
    let d = signed(
        &kb,
        1,
        None,
        &[ca],
        2,
        vec![unpin_op(&content(1), vec![dot(&ca, 0)])],
    );
    g.add(
        "valid-unpin",
        "B unpins A's pin: the tomb removes the only entry, the pinset is empty",
        &[&ra],
        &d,
        VALID,
    );
    let d = signed(
        &ka,
        2,
        Some(&ca),
        &[ca, cb],
        2,
        vec![pin_op(&content(3), named("three"), vec![])],
    );
    g.add(
        "valid-merge",
        "a delta linking two heads (parents sorted by CID bytes), priority 1 + max",
        &[&ra, &rb],
        &d,
        VALID,
    );
    let tomb_a = signed(
        &kb,
        1,
        None,
        &[],
        1,
        vec![unpin_op(&content(1), vec![dot(&ca, 0)])],
    );
    g.add("valid-tomb-of-a-non-ancestor", "B's root tombs A's entry though A's delta is not its ancestor (a writer with more than 256 heads links only 256 but tombs what it applied): the entry goes", &[&ra], &tomb_a, VALID);
    g.add("valid-entry-after-its-tomb", "the same two deltas the other way round: the tomb waits, and A's pin never shows; same state hash as valid-tomb-of-a-non-ancestor", &[&tomb_a], &ra, VALID);
    let d = signed(
        &ka,
        1,
        None,
        &[],
        1,
        vec![
            pin_op(&content(10), named("ten"), vec![dot(&nowhere(2), 5)]),
            unpin_op(
                &content(9),
                vec![dot(&nowhere(1), 0), dot(&nowhere(1), u64::from(u32::MAX))],
            ),
        ],
    );
    g.add("valid-tombs-naming-nothing", "tombs naming deltas no one has (and an index no delta reaches) are valid: receivers check a dot's form only; they wait and remove nothing", &[], &d, VALID);
    let d = signed(
        &ka,
        1,
        None,
        &[],
        1,
        (2..=4)
            .map(|t| {
                pin_op(
                    &content(20 + t),
                    V::map(vec![("type", V::U(t as u64))]),
                    vec![],
                )
            })
            .collect(),
    );
    g.add("valid-type-numbers", "types 2 (meta-pin), 3 (clusterdag-pin) and 4 (shard-pin): Go's protobuf numbers, not its bit flags; 1 (pin) is the default and omitted", &[], &d, VALID);
    let d = signed(
        &ka,
        1,
        None,
        &[],
        1,
        [5, -7, i64::from(i32::MIN)]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                pin_op(
                    &content(30 + i as u32),
                    V::map(vec![("depth", V::int(*n))]),
                    vec![],
                )
            })
            .collect(),
    );
    g.add("valid-depths", "depth 5 (depth-limited), -7 and -2^31 are valid and read as mode recursive; only 0 is direct", &[], &d, VALID);
    let extremes = V::map(vec![
        ("ts", V::U(u64::MAX)),
        ("rmax", V::int(i64::from(i32::MAX))),
        ("rmin", V::int(i64::from(i32::MIN))),
        ("depth", V::int(i64::from(i32::MAX))),
        ("shard", V::U(u64::MAX)),
        ("expire", V::U(i64::MAX as u64)),
    ]);
    let mut d = delta(
        &ka,
        1,
        None,
        &[],
        1,
        vec![pin_op(
            &content(40),
            extremes,
            vec![dot(&nowhere(3), u64::from(u32::MAX))],
        )],
    );
    *d.get_mut("ts") = V::U(u64::MAX);
    sign(&mut d, &ka);
    g.add("valid-integer-extremes", "every integer at the top (or bottom) of its width: ts and opts ts 2^64-1, rmin -2^31, rmax and depth 2^31-1, shard 2^64-1, expire 2^63-1, a dot index 2^32-1", &[], &d, VALID);
    let free = V::map(vec![
        ("meta", V::map(vec![("", V::text(""))])),
        ("name", V::text("n\u{e4}me \u{2713}")),
        (
            "allocs",
            V::A(vec![
                V::text("not a peer id"),
                V::text(""),
                V::text("not a peer id"),
            ]),
        ),
        ("ualloc", V::A(vec![V::text("12D3KooWnope")])),
        ("origins", V::A(vec![V::text("not a multiaddr")])),
    ]);
    let d = signed(
        &ka,
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(41), free, vec![])],
    );
    g.add("valid-free-text", "allocs, ualloc, origins, meta and name are any UTF-8 text: not parsed as peer IDs or multiaddrs, duplicates kept", &[], &d, VALID);
    let v0 = Cid::new_v0(Code::Sha2_256.digest(b"v0")).unwrap();
    let ident = Cid::new_v1(
        0x70,
        cid::multihash::Multihash::wrap(0x00, b"identity").unwrap(),
    );
    let opts = V::map(vec![
        ("ref", V::B(ident.to_bytes())),
        ("update", V::B(v0.to_bytes())),
    ]);
    let d = signed(&ka, 1, None, &[], 1, vec![pin_op(&v0, opts, vec![])]);
    g.add("valid-other-cid-shapes", "a pinned CIDv0, a ref with an identity multihash, an update CIDv0: any CID version, codec and hash is fine outside parents, prev and dots", &[], &d, VALID);
    let fork = signed(
        &ka,
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(50), named("fork"), vec![])],
    );
    g.add(
        "valid-fork",
        "a second seq-1 delta by A: both apply (a fork is evidence, recorded, not a rejection)",
        &[&ra],
        &fork,
        VALID,
    );

    // --- Checks 1-2: what the block is served as.
    // The name's length sets the size; its text head is 5 bytes from 64 KiB
    // up, so one correction lands on the target.
    let target = crdt_dag::limits::MAX_BLOCK_SIZE + 1;
    let mut big = root_a();
    let mut len = big.encode().len();
    for _ in 0..3 {
        let V::T(name) = big.get_mut("ops").at(0).get_mut("opts").get_mut("name") else {
            unreachable!()
        };
        *name = "x".repeat((name.len() + target).saturating_sub(len));
        sign(&mut big, &ka);
        len = big.encode().len();
    }
    assert_eq!(len, target);
    g.add(
        "invalid-block-too-large",
        "a valid delta of 1 MiB + 1 byte (a long name): refused before hashing",
        &[],
        &big,
        "BlockTooLarge",
    );
    let raw = Cid::new_v1(0x55, Code::Sha2_256.digest(&ra.encode()));
    g.add_step(
        "invalid-cid-not-dag-cbor",
        "a valid block served under a CIDv1 raw (0x55) of its bytes",
        &[],
        Step {
            cid: raw.to_string(),
            block: ra.encode(),
            expect: "UnsupportedCid".into(),
        },
    );
    g.add_step(
        "invalid-hash-mismatch",
        "A's valid root served under B's root's CID",
        &[],
        Step {
            cid: cb.to_string(),
            block: ra.encode(),
            expect: "HashMismatch".into(),
        },
    );

    // --- Check 3.1: not DAG-CBOR.
    let d = V::Raw([ra.encode(), vec![0x00]].concat());
    g.add(
        "malformed-trailing-bytes",
        "A's valid root and one byte after it",
        &[],
        &d,
        "Malformed",
    );
    g.tampered(
        "malformed-duplicate-key",
        "Malformed",
        "the delta map holds `ts` twice, same value",
        |d| {
            let V::M(m) = d else { unreachable!() };
            m.insert(1, ("ts".into(), V::U(1_700_000_000_000)));
        },
    );
    g.opts(
        "malformed-duplicate-meta-key",
        "Malformed",
        "a meta map with the key `k` twice, same value",
        |o| {
            o.set(
                "meta",
                V::M(vec![("k".into(), V::text("v")), ("k".into(), V::text("v"))]),
            );
        },
    );
    g.tampered(
        "malformed-float",
        "Malformed",
        "ts as a 64-bit float (1.7e12): no delta field is a float",
        |d| {
            *d.get_mut("ts") = V::F64(1.7e12);
        },
    );
    g.tampered(
        "malformed-tag-2",
        "Malformed",
        "ts as a bignum (tag 2): only tag 42 is DAG-CBOR",
        |d| {
            *d.get_mut("ts") = V::Tag(2, Box::new(V::B(vec![0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00])));
        },
    );
    g.tampered(
        "malformed-tag-43-link",
        "Malformed",
        "a parent as tag 43 over 0x00 || CID instead of tag 42",
        |d| {
            let mut b = vec![0];
            b.extend(nowhere(1).to_bytes());
            *d.get_mut("parents") = V::A(vec![V::Tag(43, Box::new(V::B(b)))]);
            *d.get_mut("priority") = V::U(2);
        },
    );
    g.tampered(
        "malformed-undefined",
        "Malformed",
        "prev as undefined (0xf7) instead of null",
        |d| {
            *d.get_mut("prev") = V::Undefined;
        },
    );
    g.tampered(
        "malformed-invalid-utf8",
        "Malformed",
        "the cluster name is a text string of bytes ff fe",
        |d| {
            *d.get_mut("cluster") = V::Raw(vec![0x62, 0xff, 0xfe]);
        },
    );

    // --- Check 3.2: version.
    g.tampered(
        "unsupported-version-2",
        "UnsupportedVersion",
        "v 2, otherwise a v1 delta",
        |d| {
            *d.get_mut("v") = V::U(2);
        },
    );
    g.tampered(
        "unsupported-version-2-new-key",
        "UnsupportedVersion",
        "v 2 with a key v1 does not know: still UnsupportedVersion, not Malformed",
        |d| {
            *d.get_mut("v") = V::U(2);
            d.set("novel", V::U(1));
        },
    );

    // --- Check 3.3: the schema.
    let d = V::A(vec![]);
    g.add(
        "malformed-not-a-map",
        "an empty array",
        &[],
        &d,
        "Malformed",
    );
    g.tampered(
        "malformed-missing-tombs",
        "Malformed",
        "an op without `tombs`: the key is required, [] when empty",
        |d| {
            d.get_mut("ops").at(0).remove("tombs");
        },
    );
    g.tampered(
        "malformed-missing-prev",
        "Malformed",
        "seq 1 without the `prev` key: required, null when seq is 1",
        |d| {
            d.remove("prev");
        },
    );
    g.tampered("malformed-missing-sig", "Malformed", "no `sig` key", |d| {
        d.remove("sig")
    });
    g.tampered(
        "malformed-unknown-key",
        "Malformed",
        "a key v1 does not know in the delta map",
        |d| {
            d.set("extra", V::U(1));
        },
    );
    g.opts(
        "malformed-unknown-opts-key",
        "Malformed",
        "`mode` in PinOptions: the mode is derived from depth, never written",
        |o| {
            o.set("mode", V::text("direct"));
        },
    );
    g.tampered(
        "malformed-parent-as-bytes",
        "Malformed",
        "a parent CID in a byte string, not a link",
        |d| {
            *d.get_mut("parents") = V::A(vec![V::B(nowhere(1).to_bytes())]);
            *d.get_mut("priority") = V::U(2);
        },
    );
    g.tampered("malformed-pinned-cid-as-link", "Malformed", "the op's cid as a link: pinned CIDs are byte strings, so the history DAG never links the content", |d| {
        *d.get_mut("ops").at(0).get_mut("cid") = V::link(&content(1));
    });
    g.tampered(
        "malformed-writer-not-bytes",
        "Malformed",
        "writer as the peer ID text",
        |d| {
            *d.get_mut("writer") = V::text(&peer_text(&key(1)));
        },
    );
    g.tampered("malformed-negative-seq", "Malformed", "seq -1", |d| {
        *d.get_mut("seq") = V::int(-1)
    });
    g.opts(
        "malformed-type-above-u8",
        "Malformed",
        "type 256: out of the u8 range",
        |o| o.set("type", V::U(256)),
    );
    g.opts(
        "malformed-rmin-above-i32",
        "Malformed",
        "rmin 2^31: out of the i32 range",
        |o| o.set("rmin", V::U(1 << 31)),
    );
    g.tampered(
        "malformed-dot-index-above-u32",
        "Malformed",
        "a dot index of 2^32",
        |d| {
            *d.get_mut("ops").at(0).get_mut("tombs") = V::A(vec![dot(&nowhere(1), 1 << 32)]);
        },
    );
    g.opts(
        "malformed-ref-not-a-cid",
        "Malformed",
        "ref holds bytes that are no CID",
        |o| o.set("ref", V::B(vec![1, 2, 3])),
    );
    g.opts(
        "malformed-ref-trailing-bytes",
        "Malformed",
        "ref holds a CID and one byte after it",
        |o| {
            o.set("ref", V::B([content(2).to_bytes(), vec![0]].concat()));
        },
    );

    // --- Check 3.4: spelled non-canonically.
    g.tampered(
        "noncanonical-non-minimal-int",
        "NonCanonical",
        "v 1 as the two bytes 18 01",
        |d| {
            *d.get_mut("v") = V::Raw(vec![0x18, 0x01]);
        },
    );
    g.tampered(
        "noncanonical-keys-unsorted",
        "NonCanonical",
        "the delta map's keys in alphabetical order, not length first",
        |d| {
            let V::M(m) = d else { unreachable!() };
            m.sort_by(|a, b| a.0.cmp(&b.0));
        },
    );
    g.tampered(
        "noncanonical-indefinite-length",
        "NonCanonical",
        "ops as an indefinite-length array",
        |d| {
            let op = d.get_mut("ops").at(0).clone();
            *d.get_mut("ops") = V::Raw([vec![0x9f], op.encode(), vec![0xff]].concat());
        },
    );
    g.opts(
        "noncanonical-explicit-type-1",
        "NonCanonical",
        "type 1 written: it is the default, omitted",
        |o| o.set("type", V::U(1)),
    );
    g.opts(
        "noncanonical-explicit-depth",
        "NonCanonical",
        "depth -1 written: it is the default, omitted",
        |o| o.set("depth", V::int(-1)),
    );
    g.opts(
        "noncanonical-empty-meta",
        "NonCanonical",
        "meta {} written: it is the default, omitted",
        |o| o.set("meta", V::map(vec![])),
    );

    // --- Check 3.5: field values.
    let mut d = root_a();
    let V::B(sig) = d.get_mut("sig") else {
        unreachable!()
    };
    sig.pop();
    g.add(
        "malformed-sig-63-bytes",
        "A's root with the last byte of sig cut",
        &[],
        &d,
        "Malformed",
    );
    g.opts(
        "malformed-type-0",
        "Malformed",
        "type 0 (Go's protobuf BadType)",
        |o| o.set("type", V::U(0)),
    );
    g.opts(
        "malformed-type-go-shard-flag",
        "Malformed",
        "type 16: Go's in-memory ShardType bit flag; the wire's shard-pin is 4",
        |o| o.set("type", V::U(16)),
    );
    g.opts(
        "malformed-depth-above-i32",
        "Malformed",
        "depth 2^31: read as any integer, must fit i32",
        |o| o.set("depth", V::U(1 << 31)),
    );
    g.opts(
        "malformed-expire-above-2-63",
        "Malformed",
        "expire 2^63 seconds",
        |o| o.set("expire", V::U(1 << 63)),
    );
    g.tampered(
        "malformed-cid-trailing-bytes",
        "Malformed",
        "the pinned cid with one byte after it",
        |d| {
            *d.get_mut("ops").at(0).get_mut("cid") =
                V::B([content(1).to_bytes(), vec![0]].concat());
        },
    );
    g.tampered(
        "malformed-pin-without-opts",
        "Malformed",
        "a pin op without opts",
        |d| d.get_mut("ops").at(0).remove("opts"),
    );
    g.tampered(
        "malformed-unpin-with-opts",
        "Malformed",
        "an unpin op with opts",
        |d| {
            *d.get_mut("ops").at(0).get_mut("op") = V::text("unpin");
        },
    );
    g.tampered("malformed-unknown-op", "Malformed", "op \"update\"", |d| {
        *d.get_mut("ops").at(0).get_mut("op") = V::text("update");
    });

    // --- Check 3.6: the writer.
    g.tampered(
        "invalid-writer-37-bytes",
        "InvalidWriter",
        "writer one byte short",
        |d| {
            let V::B(w) = d.get_mut("writer") else {
                unreachable!()
            };
            w.pop();
        },
    );
    g.tampered(
        "invalid-writer-not-ed25519",
        "InvalidWriter",
        "writer with key type 2 (secp256k1) in the protobuf prefix",
        |d| {
            let V::B(w) = d.get_mut("writer") else {
                unreachable!()
            };
            w[3] = 0x02;
        },
    );
    let not_a_point = (2u8..)
        .map(|n| {
            let mut y = [0u8; 32];
            y[0] = n;
            y
        })
        .find(|y| ed25519_dalek::VerifyingKey::from_bytes(y).is_err())
        .unwrap();
    g.tampered(
        "invalid-writer-not-a-point",
        "InvalidWriter",
        "a writer key that is no curve point",
        |d| {
            *d.get_mut("writer") = V::B(peer_id(&not_a_point));
        },
    );

    // --- Check 4: the cluster.
    g.tampered(
        "wrong-cluster",
        "WrongCluster",
        "a delta of cluster \"other\"",
        |d| {
            *d.get_mut("cluster") = V::text("other");
        },
    );

    // --- Check 5: structure.
    let mut many: Vec<Cid> = (0..257).map(nowhere).collect();
    many.sort_by_key(|c| c.to_bytes());
    g.tampered("toomany-parents", "TooMany", "257 parents", |d| {
        *d.get_mut("parents") = V::A(many.iter().map(V::link).collect());
        *d.get_mut("priority") = V::U(2);
    });
    let mut tombs: Vec<Cid> = (0..1025).map(nowhere).collect();
    tombs.sort_by_key(|c| c.to_bytes());
    g.tampered("toomany-tombs", "TooMany", "an op with 1025 tombs", |d| {
        *d.get_mut("ops").at(0).get_mut("tombs") = V::A(tombs.iter().map(|c| dot(c, 0)).collect());
    });
    g.tampered("malformed-no-ops", "Malformed", "ops []", |d| {
        *d.get_mut("ops") = V::A(vec![])
    });
    let mut pair = [nowhere(1), nowhere(2)];
    pair.sort_by_key(|c| c.to_bytes());
    let [p1, p2] = pair;
    g.tampered(
        "malformed-parents-unsorted",
        "Malformed",
        "two parents, the greater CID first",
        |d| {
            *d.get_mut("parents") = V::A(vec![V::link(&p2), V::link(&p1)]);
            *d.get_mut("priority") = V::U(2);
        },
    );
    g.tampered(
        "malformed-parents-duplicate",
        "Malformed",
        "the same parent twice",
        |d| {
            *d.get_mut("parents") = V::A(vec![V::link(&p1), V::link(&p1)]);
            *d.get_mut("priority") = V::U(2);
        },
    );
    g.tampered(
        "malformed-parent-not-dag-cbor",
        "Malformed",
        "a parent link to a CIDv1 raw: not a delta CID (Malformed, not UnsupportedCid)",
        |d| {
            *d.get_mut("parents") = V::A(vec![V::link(&content(1))]);
            *d.get_mut("priority") = V::U(2);
        },
    );
    g.tampered(
        "malformed-prev-not-dag-cbor",
        "Malformed",
        "seq 2 whose prev links a CIDv1 dag-pb",
        |d| {
            *d.get_mut("seq") = V::U(2);
            *d.get_mut("prev") = V::link(&Cid::new_v1(0x70, Code::Sha2_256.digest(b"pb")));
        },
    );
    g.tampered("malformed-seq-0", "Malformed", "seq 0", |d| {
        *d.get_mut("seq") = V::U(0)
    });
    g.tampered(
        "malformed-prev-at-seq-1",
        "Malformed",
        "seq 1 with a prev",
        |d| *d.get_mut("prev") = V::link(&nowhere(1)),
    );
    g.tampered(
        "malformed-seq-2-without-prev",
        "Malformed",
        "seq 2 with prev null",
        |d| *d.get_mut("seq") = V::U(2),
    );
    g.tampered(
        "malformed-root-priority-2",
        "Malformed",
        "no parents and priority 2",
        |d| *d.get_mut("priority") = V::U(2),
    );
    g.tampered(
        "malformed-parents-priority-1",
        "Malformed",
        "a parent and priority 1",
        |d| {
            *d.get_mut("parents") = V::A(vec![V::link(&nowhere(1))]);
        },
    );
    g.tampered(
        "malformed-two-ops-one-cid",
        "Malformed",
        "two ops on one CID",
        |d| {
            let V::A(ops) = d.get_mut("ops") else {
                unreachable!()
            };
            ops.push(unpin_op(&content(1), vec![]));
        },
    );
    g.tampered(
        "malformed-dot-not-a-delta-cid",
        "Malformed",
        "a dot naming a CIDv1 raw",
        |d| {
            *d.get_mut("ops").at(0).get_mut("tombs") = V::A(vec![dot(&content(7), 0)]);
        },
    );
    g.tampered(
        "malformed-tombs-unsorted",
        "Malformed",
        "two dots of one delta, index 1 before 0",
        |d| {
            *d.get_mut("ops").at(0).get_mut("tombs") =
                V::A(vec![dot(&nowhere(1), 1), dot(&nowhere(1), 0)]);
        },
    );

    // --- Checks 6-7: trust and signature.
    let d = signed(
        &key(3),
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(1), named("one"), vec![])],
    );
    g.add(
        "untrusted-writer",
        "a valid delta by a writer not in `trusted`",
        &[],
        &d,
        "UntrustedWriter",
    );
    let mut d = root_a();
    let V::B(sig) = d.get_mut("sig") else {
        unreachable!()
    };
    sig[10] ^= 1;
    g.add(
        "bad-signature",
        "A's root with one bit of sig flipped",
        &[],
        &d,
        "BadSignature",
    );
    let mut d = root_a();
    let V::B(sig) = d.get_mut("sig") else {
        unreachable!()
    };
    add_l(&mut sig[32..]);
    g.add(
        "bad-signature-malleated",
        "A's root with s + L for s: accepted by lax ed25519, not by verify_strict",
        &[],
        &d,
        "BadSignature",
    );
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut d = root_a();
    *d.get_mut("writer") = V::B(peer_id(&identity));
    g.trusted = vec!["*".into()];
    g.add("bad-signature-small-order-key", "a writer key of small order (the identity point, a valid point) under trust *: verify_strict refuses it", &[], &d, "BadSignature");
    g.trusted = vec![peer_text(&ka), peer_text(&kb)];

    // --- Two defects: the first check in the spec's order decides.
    g.tampered("order-noncanonical-and-unknown-key", "Malformed", "a non-minimal v and an unknown key: the schema (3.3) is judged on what the bytes mean, before their spelling (3.4)", |d| {
        *d.get_mut("v") = V::Raw(vec![0x18, 0x01]);
        d.set("extra", V::U(1));
    });
    g.opts(
        "order-explicit-default-and-bad-type",
        "NonCanonical",
        "an explicit depth -1 (3.4) and type 16 (3.5)",
        |o| {
            o.set("depth", V::int(-1));
            o.set("type", V::U(16));
        },
    );
    g.tampered(
        "order-short-writer-and-wrong-cluster",
        "InvalidWriter",
        "a 37-byte writer (3.6) in a delta of another cluster (4)",
        |d| {
            *d.get_mut("writer") = V::B(vec![0; 37]);
            *d.get_mut("cluster") = V::text("other");
        },
    );
    g.tampered(
        "order-wrong-cluster-and-too-many-parents",
        "WrongCluster",
        "another cluster (4) and 257 parents (5)",
        |d| {
            *d.get_mut("cluster") = V::text("other");
            *d.get_mut("parents") = V::A(many.iter().map(V::link).collect());
            *d.get_mut("priority") = V::U(2);
        },
    );
    let mut d = signed(
        &key(3),
        1,
        None,
        &[],
        1,
        vec![pin_op(&content(1), named("one"), vec![])],
    );
    *d.get_mut("ops") = V::A(vec![]);
    g.add(
        "order-no-ops-and-untrusted",
        "no ops (5) by an untrusted writer (6), signed over other ops (7)",
        &[],
        &d,
        "Malformed",
    );

    // --- Checks 8-9 and rejected ancestors, once the parents are applied.
    let liar = signed(
        &ka,
        2,
        Some(&ca),
        &[ca],
        3,
        vec![pin_op(&content(60), named("liar"), vec![])],
    );
    g.add(
        "priority-mismatch",
        "A's second delta claims priority 3 over a parent of priority 1",
        &[&ra],
        &liar,
        "PriorityMismatch",
    );
    let d = signed(
        &ka,
        2,
        Some(&cb),
        &[cb],
        2,
        vec![pin_op(&content(61), named("x"), vec![])],
    );
    g.add(
        "prev-mismatch-other-writer",
        "A's seq 2 with prev naming B's delta",
        &[&rb],
        &d,
        "PrevMismatch",
    );
    let d = signed(
        &ka,
        3,
        Some(&ca),
        &[ca],
        2,
        vec![pin_op(&content(62), named("x"), vec![])],
    );
    g.add(
        "prev-mismatch-skipped-seq",
        "A's seq 3 with prev naming A's seq 1",
        &[&ra],
        &d,
        "PrevMismatch",
    );
    let child = signed(
        &kb,
        1,
        None,
        &[cid_of(&liar)],
        4,
        vec![pin_op(&content(63), named("child"), vec![])],
    );
    g.out.push(Vector {
        name: "rejected-ancestor".into(),
        about:
            "B's root building on the priority-mismatch delta (itself rejected, second in `before`)"
                .into(),
        trusted: g.trusted.clone(),
        before: vec![step(&ra, VALID), step(&liar, "PriorityMismatch")],
        step: step(&child, "RejectedAncestor"),
        state_hash: String::new(),
    });
    g.out
}

/// Adds L, the order of the ed25519 group, to the little-endian scalar.
fn add_l(s: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for (b, l) in s.iter_mut().zip(L) {
        let sum = u16::from(*b) + u16::from(l) + carry;
        *b = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L overflowed 32 bytes");
}

//! `ipfs-cluster-ctl add` against the fake: Go's flags become the
//! parameters the API receives, directories are walked as Go's client
//! walks them, and the output is Go's (`added <cid> <name>`, `-q`, `-Q`,
//! `--no-stream`, `--enc json`).

use api::types::{AddLayout, AddParams};

use crate::util::TestServer;
use api::testing::{Call, PEERS, content_cid};

/// A temporary tree: `root/dir/{a.txt, .hidden, sub/b.txt, z.txt}` and
/// `root/one.txt`.
fn tree(tag: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("ctl-add-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("dir/sub")).expect("dirs");
    std::fs::write(root.join("dir/a.txt"), "aaa").expect("file");
    std::fs::write(root.join("dir/.hidden"), "h").expect("file");
    std::fs::write(root.join("dir/sub/b.txt"), "bb").expect("file");
    std::fs::write(root.join("dir/z.txt"), "z").expect("file");
    std::fs::write(root.join("one.txt"), "hello").expect("file");
    root
}

fn add_params(server: &TestServer) -> AddParams {
    server
        .fake
        .calls()
        .into_iter()
        .rev()
        .find_map(|c| match c {
            Call::Add(p, _) => Some(*p),
            _ => None,
        })
        .expect("an add call")
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One file: Go's text line; the flags reach the API as Go's ctl sets them.
#[test]
fn a_file_with_every_flag() {
    let server = TestServer::start();
    let root = tree("flags");
    let file = root.join("one.txt");
    let out = server.ctl().run([
        "add",
        "--name",
        "n",
        "--rmin",
        "1",
        "--rmax",
        "2",
        "--metadata",
        "k=v",
        "--allocations",
        PEERS[1],
        "--expire-in",
        "1h",
        "--local",
        "--no-pin",
        "--layout",
        "trickle",
        "--chunker",
        "size-1024",
        "--cid-version",
        "1",
        s(&file),
    ]);
    assert_eq!(
        out.success(),
        format!("added {} one.txt\n", content_cid(b"hello"))
    );
    let p = add_params(&server);
    assert_eq!(p.pin_options.name, "n");
    assert_eq!(
        (
            p.pin_options.replication_factor_min,
            p.pin_options.replication_factor_max
        ),
        (1, 2)
    );
    assert_eq!(p.pin_options.metadata["k"], "v");
    assert_eq!(p.pin_options.user_allocations, vec![PEERS[1].to_string()]);
    assert!(p.pin_options.expire_at.is_some());
    assert!(p.local && p.no_pin && !p.wrap_with_directory);
    assert_eq!(p.layout, AddLayout::Trickle);
    assert_eq!(p.chunker, "size-1024");
    assert_eq!(p.cid_version, 1);
    assert!(p.raw_leaves, "cid-version 1 implies raw leaves");
    assert!(p.stream_channels);
    assert_eq!(
        server.fake.uploaded(),
        vec![("one.txt".to_string(), Some(b"hello".to_vec()))]
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `-r`: the directory entry, then its entries by name (hidden ones only
/// with `-H`); several paths wrap; `-q` and `-Q`.
#[test]
fn directories_wrapping_and_quiet_output() {
    let server = TestServer::start();
    let root = tree("dirs");
    let dir = root.join("dir");
    let out = server.ctl().run(["add", "-r", s(&dir)]);
    let text = out.success().to_string();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.splitn(3, ' ').nth(2).expect("added <cid> <name>"))
        .collect();
    assert_eq!(
        names,
        ["dir/a.txt", "dir/sub/b.txt", "dir/z.txt", "dir/sub", "dir"]
    );
    let paths: Vec<String> = server.fake.uploaded().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["dir", "dir/a.txt", "dir/sub", "dir/sub/b.txt", "dir/z.txt"]
    );

    server.ctl().run(["add", "-r", "-H", s(&dir)]).success();
    let paths: Vec<String> = server.fake.uploaded().into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths[1], "dir/.hidden");

    // Two paths: wrapped; -q prints CIDs only.
    let out = server
        .ctl()
        .run(["add", "-q", "-r", s(&dir), s(&root.join("one.txt"))]);
    let text = out.success().to_string();
    assert_eq!(text.lines().count(), 7, "{text}");
    assert!(text.lines().all(|l| !l.contains(' ')), "{text}");
    assert!(add_params(&server).wrap_with_directory);
    // -Q: only the root.
    let out = server
        .ctl()
        .run(["add", "-Q", "-w", s(&root.join("one.txt"))]);
    let text = out.success().to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(add_params(&server).wrap_with_directory);

    // A directory without -r: Go's error, nothing sent.
    let before = server.fake.calls().len();
    let out = server.ctl().run(["add", s(&dir)]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("Recursive option is not set"),
        "{}",
        out.stderr
    );
    assert_eq!(server.fake.calls().len(), before);
    let _ = std::fs::remove_dir_all(&root);
}

/// `--enc json`: one indented object per output, or one array with
/// `--no-stream`; `--hash` other than sha2-256 implies CIDv1.
#[test]
fn json_output_streamed_and_buffered() {
    let server = TestServer::start();
    let root = tree("json");
    let file = root.join("one.txt");
    let out = server.ctl().json().run(["add", s(&file)]);
    let values = out.json_values();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0]["name"], "one.txt");
    assert_eq!(values[0]["cid"], content_cid(b"hello").to_string());
    assert_eq!(values[0]["size"], 5);
    assert!(
        out.stdout.contains("\n    \"name\""),
        "indented: {}",
        out.stdout
    );

    let out = server
        .ctl()
        .json()
        .run(["add", "--no-stream", "-r", s(&root.join("dir"))]);
    let values = out.json_values();
    assert_eq!(values.len(), 1, "one array");
    assert_eq!(values[0].as_array().expect("an array").len(), 5);

    // Text --no-stream prints the same lines at the end.
    let out = server.ctl().run(["add", "--no-stream", s(&file)]);
    assert!(out.success().starts_with("added "));

    // What the API refuses comes back as its error (exit 2).
    let out = server.ctl().run(["add", "--hash", "blake2b-256", s(&file)]);
    out.expect_code(2);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("hash \"blake2b-256\" (only sha2-256) is not supported"),
        "{said}"
    );
    let out = server.ctl().run(["add", "--nocopy", s(&file)]);
    out.expect_code(2);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("Code: 501") && said.contains("nocopy"),
        "{said}"
    );
    // A failure half-way: the lines so far, then the error.
    let out = server
        .ctl()
        .run(["add", "-r", "--name", "fail", s(&root.join("dir"))]);
    assert!(out.stdout.starts_with("added "), "{}", out.stdout);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("boom"), "{said}");
    assert_ne!(out.code, 0);
    // Go's own checks come first.
    let out = server
        .ctl()
        .run(["add", "--format", "car", s(&file), s(&file)]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("wrap-with-directory is not supported"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// On a terminal, a progress bar on standard error: the file, its bytes and
/// blocks, 100% at the end, the bar cleared before the output lines; for a
/// directory, the files done. On a pipe, nothing but the output.
#[test]
fn a_progress_bar_on_a_terminal_only() {
    let server = TestServer::start();
    let root = tree("progress");
    let big = root.join("dir/big.bin");
    std::fs::write(&big, vec![7u8; 3 << 20]).expect("file");
    // `script` runs the command on a pseudo-terminal; what it prints comes
    // back on script's standard output.
    let on_tty = |args: &str| {
        let cmd = format!("'{}' --host {} {args}", crate::util::CTL, server.host());
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("script (util-linux) runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = on_tty(&format!("add {}", s(&big)));
    assert!(text.contains("big.bin [#"), "{text:?}");
    assert!(
        text.contains("100% 3.1 MB / 3.1 MB 12/12 blocks"),
        "{text:?}"
    );
    assert!(
        text.contains("\r\x1b[2Kadded "),
        "the bar is cleared first: {text:?}"
    );
    let text = on_tty(&format!("add -r {}", s(&root.join("dir"))));
    assert!(text.contains("/4 files,"), "{text:?}");
    assert!(text.contains("4/4 files, 3.1 MB / 3.1 MB"), "{text:?}");
    // -q: no bar.
    let text = on_tty(&format!("add -q {}", s(&big)));
    assert!(!text.contains("blocks"), "{text:?}");

    let out = server.ctl().run(["add", s(&big)]);
    out.success();
    assert!(
        !out.stderr.contains("blocks") && !out.stderr.contains('\r'),
        "{out:?}"
    );
}

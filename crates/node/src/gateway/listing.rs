//! A directory's HTML page: its entries sorted by name, each linked by
//! name (relative to the directory's `/`-ended URL) and by CID, with its
//! size (the link's cumulative DAG size, as Kubo shows), names escaped.

use std::fmt::Write as _;

use cid::Cid;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use crate::unixfs::DirEntry;

/// Bytes escaped in a path segment of a link (RFC 3986 `pchar` aside).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// `name` as a URL path segment.
pub(super) fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// `text` safe in HTML text and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A size in bytes, the way people read them.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The page of the directory `cid` at `content_path` (`/ipfs/<root>/...`,
/// decoded), with a `..` link when it isn't the root.
pub(super) fn page(
    content_path: &str,
    cid: &Cid,
    mut entries: Vec<DirEntry>,
    parent: bool,
) -> String {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let title = escape(&format!("{content_path}/"));
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n</head>\n<body>\n\
         <h1>Index of {title}</h1>\n<p>CID: <code>{cid}</code>, {} entries</p>\n<table>\n\
         <tr><th>Name</th><th>CID</th><th>Size</th></tr>\n",
        entries.len()
    );
    if parent {
        html.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for e in &entries {
        let _ = writeln!(
            html,
            "<tr><td><a href=\"./{}\">{}</a></td><td><a href=\"/ipfs/{}?filename={}\"><code>{}</code></a></td>\
             <td title=\"{} bytes\">{}</td></tr>",
            escape(&encode_segment(&e.name)),
            escape(&e.name),
            e.cid,
            escape(&form_urlencoded::byte_serialize(e.name.as_bytes()).collect::<String>()),
            e.cid,
            e.size,
            human(e.size),
        );
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_linked() {
        let cid: Cid = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
            .parse()
            .unwrap();
        let entries = vec![
            DirEntry {
                name: "z<script>&\"'.txt".into(),
                cid,
                size: 5,
            },
            DirEntry {
                name: "a b#?.txt".into(),
                cid,
                size: 3 << 20,
            },
        ];
        let html = page("/ipfs/x/sub", &cid, entries, true);
        assert!(html.contains("<title>/ipfs/x/sub/</title>"), "{html}");
        assert!(
            html.contains("href=\"./a%20b%23%3F.txt\">a b#?.txt</a>"),
            "{html}"
        );
        assert!(
            html.contains("z&lt;script&gt;&amp;&quot;&#39;.txt"),
            "{html}"
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("3.0 MiB") && html.contains(">5 B<"), "{html}");
        assert!(
            html.find("a b#").unwrap() < html.find("z&lt;").unwrap(),
            "sorted"
        );
        assert!(html.contains("href=\"../\""));
    }
}

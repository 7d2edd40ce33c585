//! A file's `Content-Type`: from its name's extension when known, else
//! sniffed from its first bytes (a small subset of the WHATWG sniffing
//! rules Go's `http.DetectContentType`, and so Kubo, follows).

/// Bytes looked at to sniff a type.
pub(super) const SNIFF_LEN: u64 = 512;

/// The type of a file named `name` (if it has one) starting with `head`.
pub(super) fn content_type(name: Option<&str>, head: &[u8]) -> &'static str {
    name.and_then(by_extension).unwrap_or_else(|| sniff(head))
}

/// Whether `name`'s extension decides its type (no sniffing needed).
pub(super) fn known_extension(name: Option<&str>) -> bool {
    name.and_then(by_extension).is_some()
}

fn by_extension(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/vnd.microsoft.icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "car" => "application/vnd.ipld.car",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

/// Sniffs `head`: well-known signatures, else text when no byte is a
/// binary control character, else `application/octet-stream`.
fn sniff(head: &[u8]) -> &'static str {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b\x08", "application/x-gzip"),
        (b"\x00asm", "application/wasm"),
        (b"OggS\x00", "application/ogg"),
    ];
    if let Some((_, t)) = SIGNATURES.iter().find(|(sig, _)| head.starts_with(sig)) {
        return t;
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    let text = head.trim_ascii_start();
    const HTML: &[&[u8]] = &[
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<body",
        b"<script",
        b"<title",
        b"<p",
        b"<div",
        b"<h1",
        b"<!--",
    ];
    let starts_with_ci = |prefix: &[u8]| {
        text.len() > prefix.len()
            && text[..prefix.len()].eq_ignore_ascii_case(prefix)
            && (prefix == b"<!--" || matches!(text[prefix.len()], b' ' | b'>'))
    };
    if HTML.iter().any(|p| starts_with_ci(p)) {
        return "text/html; charset=utf-8";
    }
    if text.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    // Go's rule: these bytes make data binary.
    let binary = |b: &u8| matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F);
    if head.iter().any(binary) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_decide_then_bytes() {
        assert_eq!(content_type(Some("a.PNG"), b"text"), "image/png");
        assert_eq!(
            content_type(Some("index.html"), b""),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Some("noext"), b"hello\n"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(None, b"  <!DOCTYPE HTML><p>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(None, b"\x89PNG\r\n\x1a\nxx"), "image/png");
        assert_eq!(
            content_type(None, b"\x00\x01\x02"),
            "application/octet-stream"
        );
        assert_eq!(content_type(None, b""), "text/plain; charset=utf-8");
        assert!(known_extension(Some("x.css")) && !known_extension(Some("x.unknown")));
    }
}

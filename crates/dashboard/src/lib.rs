//! The operator dashboard (spec/dashboard.md): plain HTML, CSS and JS
//! modules under `assets/`, built into the binary so the page works offline
//! and needs no CDN. The assets carry no data: the page reads everything
//! from the public REST API of the origin that served it.

/// Every asset: its path under `/ui/`, its bytes and its media type.
const ASSETS: &[(&str, &[u8], &str)] = &[
    ("index.html", include_bytes!("../assets/index.html"), HTML),
    ("style.css", include_bytes!("../assets/style.css"), CSS),
    ("app.js", include_bytes!("../assets/app.js"), JS),
    ("api.js", include_bytes!("../assets/api.js"), JS),
    ("dom.js", include_bytes!("../assets/dom.js"), JS),
    ("chart.js", include_bytes!("../assets/chart.js"), JS),
    ("peers.js", include_bytes!("../assets/peers.js"), JS),
    ("pins.js", include_bytes!("../assets/pins.js"), JS),
    ("history.js", include_bytes!("../assets/history.js"), JS),
    ("add.js", include_bytes!("../assets/add.js"), JS),
    ("sync.js", include_bytes!("../assets/sync.js"), JS),
    ("metrics.js", include_bytes!("../assets/metrics.js"), JS),
    ("favicon.svg", include_bytes!("../assets/favicon.svg"), SVG),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// The asset at `path` (relative to `/ui/`; empty is `index.html`) and its
/// media type, or `None` when there is no such asset.
pub fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS
        .iter()
        .find(|(name, _, _)| *name == path)
        .map(|(_, bytes, kind)| (*bytes, *kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_path_is_the_index() {
        let (bytes, kind) = asset("").unwrap();
        assert_eq!(kind, HTML);
        assert!(bytes.starts_with(b"<!doctype html>"));
    }

    #[test]
    fn unknown_paths_and_traversals_are_none() {
        assert!(asset("nope.js").is_none());
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset("/index.html").is_none());
    }

    /// Every module the page imports is served: a missing one would
    /// break the page only in a browser.
    #[test]
    fn every_imported_module_is_an_asset() {
        for (name, bytes, _) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            for part in text.split("from \"./").skip(1) {
                let module = part.split('"').next().unwrap();
                assert!(asset(module).is_some(), "{name} imports {module}");
            }
        }
    }
}

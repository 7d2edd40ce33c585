//! The implementations measured, and where their binaries are: ours next
//! to this executable (or given), Go's and Kubo from the repository's
//! install scripts, which build them on demand and print where they are.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Which implementation a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Ours,
    Go,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Ours => "ours",
            Kind::Go => "Go",
        })
    }
}

/// An implementation's two binaries.
#[derive(Debug, Clone)]
pub(crate) struct Implementation {
    pub(crate) kind: Kind,
    pub(crate) service: PathBuf,
    pub(crate) ctl: PathBuf,
}

/// The folder this executable is in (`target/release` under cargo).
fn own_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let dir = exe.parent().context("this executable has no folder")?;
    // `cargo test` runs from `deps/`; the binaries are one level up.
    Ok(if dir.ends_with("deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

fn executable(path: PathBuf, what: &str, hint: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        bail!("{what} not found at {}; {hint}", path.display())
    }
}

/// Our binaries: the given paths, else `ipfs-cluster-service` and
/// `ipfs-cluster-ctl` beside this executable.
pub(crate) fn ours(service: Option<PathBuf>, ctl: Option<PathBuf>) -> Result<Implementation> {
    let dir = own_dir()?;
    let hint = "build them with `cargo build --release -p peer -p ctl -p bench` \
                or pass --service/--ctl";
    Ok(Implementation {
        kind: Kind::Ours,
        service: executable(
            service.unwrap_or_else(|| dir.join("ipfs-cluster-service")),
            "our ipfs-cluster-service",
            hint,
        )?,
        ctl: executable(
            ctl.unwrap_or_else(|| dir.join("ipfs-cluster-ctl")),
            "our ipfs-cluster-ctl",
            hint,
        )?,
    })
}

/// Go IPFS Cluster v1.1.6: from `dir`, else built (once) by
/// `scripts/install-go-cluster`.
pub(crate) fn go(dir: Option<PathBuf>) -> Result<Implementation> {
    let dir = match dir {
        Some(d) => d,
        None => run_install_script("install-go-cluster")?,
    };
    let hint = "run scripts/install-go-cluster or pass --go-dir";
    Ok(Implementation {
        kind: Kind::Go,
        service: executable(
            dir.join("ipfs-cluster-service"),
            "Go's ipfs-cluster-service",
            hint,
        )?,
        ctl: executable(dir.join("ipfs-cluster-ctl"), "Go's ipfs-cluster-ctl", hint)?,
    })
}

/// Kubo's `ipfs`: `path`, else built (once) by `scripts/install-kubo`.
pub(crate) fn kubo(path: Option<PathBuf>) -> Result<PathBuf> {
    let path = match path {
        Some(p) => p,
        None => run_install_script("install-kubo")?,
    };
    executable(path, "Kubo", "run scripts/install-kubo or pass --kubo")
}

/// The repository's `scripts/` folder: where this crate was built from,
/// else `./scripts`.
fn scripts_dir() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    if built.is_dir() {
        built
    } else {
        PathBuf::from("scripts")
    }
}

/// Runs `scripts/<name>` (its progress goes to our stderr) and answers the
/// path it prints last. Without `CARGO_TARGET_DIR` the script is told the
/// target folder this executable lives in, so its cache sits beside ours.
fn run_install_script(name: &str) -> Result<PathBuf> {
    let script = scripts_dir().join(name);
    let mut cmd = Command::new(&script);
    if std::env::var_os("CARGO_TARGET_DIR").is_none()
        && let Some(target) = own_dir()?.parent()
    {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .with_context(|| format!("{} printed nothing", script.display()))?;
    Ok(PathBuf::from(last.trim()))
}

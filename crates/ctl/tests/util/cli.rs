//! [`CtlCommand`]: runs an `ipfs-cluster-ctl` binary as a user does and
//! captures its output and exit code ([`CtlOutput`]). It depends on nothing
//! but std and serde_json, so tests elsewhere (a real multi-peer cluster)
//! can include this file with `#[path]` and point it at the binary.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

/// One `ipfs-cluster-ctl` invocation being built.
#[derive(Debug, Clone)]
pub(crate) struct CtlCommand {
    binary: PathBuf,
    global: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl CtlCommand {
    /// An invocation of `binary` against the API at `host` (a multiaddress
    /// or `http://` URL).
    pub(crate) fn new(binary: impl AsRef<Path>, host: &str) -> Self {
        Self {
            binary: binary.as_ref().to_path_buf(),
            global: vec!["--host".into(), host.into()],
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds global flags (they go before the command, as Go requires).
    pub(crate) fn global<I, S>(mut self, flags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.global.extend(flags.into_iter().map(Into::into));
        self
    }

    /// `--enc json`.
    pub(crate) fn json(self) -> Self {
        self.global(["--enc", "json"])
    }

    /// Sets an environment variable for the run.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the command with `args` and waits for it.
    pub(crate) fn run<I, S>(mut self, args: I) -> CtlOutput
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.global)
            .args(&self.args)
            .env_remove("CLUSTER_CREDENTIALS")
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => panic!("running {}: {e}", self.binary.display()),
        };
        CtlOutput {
            argv: self.global.iter().chain(&self.args).cloned().collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

/// What one run printed and how it exited.
#[derive(Debug, Clone)]
pub(crate) struct CtlOutput {
    /// The arguments it ran with.
    pub(crate) argv: Vec<String>,
    /// The exit code (-1 when killed by a signal).
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
    /// How long it ran.
    pub(crate) elapsed: Duration,
}

impl CtlOutput {
    /// Panics, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "ipfs-cluster-ctl {:?} exited with {} (wanted {code})\n--- stdout\n{}--- stderr\n{}",
            self.argv, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run succeeded; returns standard output.
    #[track_caller]
    pub(crate) fn success(&self) -> &str {
        self.expect_code(0);
        &self.stdout
    }

    /// Standard output read as JSON values one after another (Go prints
    /// stream items as consecutive indented objects).
    #[track_caller]
    pub(crate) fn json_values(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON values: {e}\n{}", self.stdout))
    }

    /// Standard output parsed as values of `T`.
    #[track_caller]
    pub(crate) fn json_as<T: serde::de::DeserializeOwned>(&self) -> Vec<T> {
        self.json_values()
            .into_iter()
            .map(|v| {
                serde_json::from_value(v)
                    .unwrap_or_else(|e| panic!("unexpected JSON shape: {e}\n{}", self.stdout))
            })
            .collect()
    }
}

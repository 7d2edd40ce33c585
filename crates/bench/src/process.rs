//! Processes the tool starts: long-running daemons that are killed when
//! their guard is dropped (the end of a run, an error, Ctrl-C, a panic),
//! short commands bounded in time, and a process's memory and CPU time from
//! `/proc`.

use std::fs::File;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::process::{Child, Command};

/// A daemon the tool started; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub(crate) struct Daemon {
    name: String,
    child: Child,
    pid: u32,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut cmd: Command, name: &str, log: &Path) -> Result<Daemon> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let pid = child.id().context("a started process has a pid")?;
        Ok(Daemon {
            name: name.to_string(),
            child,
            pid,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How it ended, if it has.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills it and waits until it is gone.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// Its memory now (zeros once it has ended).
    pub(crate) fn memory(&self) -> Memory {
        Memory::of(self.pid)
    }

    /// The CPU time it has used so far ([`cpu_time`]).
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.pid)
    }
}

/// `/proc/<pid>/stat` counts CPU time in USER_HZ, 100 on Linux.
const TICKS_PER_S: u64 = 100;

/// User plus system CPU time of process `pid` so far, threads that ended
/// included (10 ms resolution); `None` once it has ended.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces and
    // parentheses), from the 3rd; utime and stime are the 14th and 15th.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let mut next = || fields.next()?.parse::<u64>().ok();
    let ticks = next()? + next()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_S))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // `kill_on_drop` does the same; being explicit costs nothing.
        let _ = self.child.start_kill();
    }
}

/// A process's resident memory, MiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_mib: f64,
    /// `VmHWM`: the most it was resident at once.
    pub(crate) hwm_mib: f64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        Memory {
            rss_mib: field("VmRSS:"),
            hwm_mib: field("VmHWM:"),
        }
    }
}

/// Runs `cmd` to its end, killed after `limit`; its output.
pub(crate) async fn run_bounded(mut cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(out) => out.with_context(|| format!("running {what}")),
        Err(_) => bail!("{what} still running after {limit:?}: killed"),
    }
}

/// Like [`run_bounded`], and the command must succeed.
pub(crate) async fn run_ok(cmd: Command, what: &str, limit: Duration) -> Result<Output> {
    let out = run_bounded(cmd, what, limit).await?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// Bytes allocated on disk under `path` (as `du`).
pub(crate) fn disk_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for e in entries.flatten() {
            total += disk_bytes(&e.path());
        }
    }
    total
}

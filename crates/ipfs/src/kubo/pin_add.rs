//! `pin/add` with progress: the pin is cancelled when its progress stops
//! growing for `pin_timeout`, as Go's connector does.

use cid::Cid;
use tokio::time::{Instant, timeout};

use crate::IpfsError;
use crate::connector::PinMode;

use super::KuboConnector;
use super::lines::Lines;
use super::wire::PinAddOut;

impl KuboConnector {
    /// `pin/add?progress=true`, cancelled when the count stops growing for
    /// `pin_timeout`.
    pub(super) async fn pin_add(&self, cid: Cid, mode: PinMode) -> Result<(), IpfsError> {
        const EP: &str = "pin/add";
        let no_progress = self.inner.config.pin_timeout;
        let arg = cid.to_string();
        let recursive = mode.is_recursive().to_string();
        let query = [
            ("arg", arg.as_str()),
            ("recursive", recursive.as_str()),
            ("progress", "true"),
        ];
        let timed_out = |progress| IpfsError::PinTimeout {
            cid,
            timeout: no_progress,
            progress,
        };
        let resp = timeout(no_progress, self.inner.post(EP, &query, None, no_progress))
            .await
            .map_err(|_| timed_out(0))?
            .map_err(|e| match e {
                IpfsError::Timeout { .. } => timed_out(0),
                e => e,
            })?;
        let mut lines = Lines::new(resp.into_body(), &self.inner.base, EP);
        let mut progress = 0;
        lines.deadline = Some((Instant::now() + no_progress, no_progress));
        loop {
            let line = match lines.next_line().await {
                None => {
                    return Err(IpfsError::Protocol {
                        endpoint: EP,
                        reason: format!("the answer ended before {cid} was pinned"),
                    });
                }
                Some(Err(IpfsError::Timeout { .. })) => return Err(timed_out(progress)),
                Some(line) => line?,
            };
            let out: PinAddOut =
                serde_json::from_slice(&line).map_err(|e| IpfsError::Protocol {
                    endpoint: EP,
                    reason: format!("{e}: {}", String::from_utf8_lossy(&line)),
                })?;
            if out.pins.is_some() {
                tracing::debug!(%cid, progress, "pinned");
                return Ok(());
            }
            if let Some(n) = out.progress
                && n > progress
            {
                progress = n;
                lines.deadline = Some((Instant::now() + no_progress, no_progress));
            }
        }
    }
}

//! Stage: inbound authentication. Removes `Authentication-Results` headers that
//! claim our authserv-id (both directions: nobody may present a result in our
//! name), then, for inbound mail, verifies SPF, DKIM, ARC, iprev and DMARC against
//! DNS and keeps the report for the DMARC decision and the rules.

use std::sync::Arc;
use std::time::Instant;

use super::BuildError;
use super::state::State;
use crate::auth::{self, Envelope, Verifier};
use crate::config::Config;
use crate::direction::Direction;

pub(super) struct InboundAuth {
    pub verifier: Arc<Verifier>,
}

impl InboundAuth {
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        Ok(InboundAuth {
            verifier: Arc::new(
                Verifier::new(&config.dns, &config.inbound).map_err(BuildError::Dns)?,
            ),
        })
    }

    pub async fn run(&self, s: &mut State<'_>) {
        let tx = s.tx;
        s.edits = auth::remove_forged(tx, self.verifier.authserv_id());
        let Direction::Inbound(ip) = s.direction else {
            return;
        };
        let envelope = Envelope {
            ip,
            helo: tx.client.helo.as_deref().unwrap_or(&tx.client.hostname),
            mail_from: tx.sender.address(),
            message: s.message(),
            // RFC 5322 §4.5's obsolete syntax allows space before the colon.
            from: tx
                .headers
                .iter()
                .filter(|h| h.name.trim_end().eq_ignore_ascii_case("From"))
                .map(|h| &h.value[..])
                .collect(),
            body_len: tx.body_size,
            body_complete: !tx.body_truncated(),
        };
        let started = Instant::now();
        let report = self.verifier.verify(&envelope).await;
        s.timings.dns = Some(started.elapsed());
        s.reason = format!("{}: {}", s.reason, report.summary());
        s.auth = Some(report);
    }
}

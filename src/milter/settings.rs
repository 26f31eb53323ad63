//! Limits and time-outs of one milter session. Every wait in a session is bounded by
//! one of these; the configuration fills them from `[server]`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// From accepting the connection to the MTA's option negotiation.
    pub negotiate_timeout: Duration,
    /// How long the MTA may stay silent between two commands.
    pub idle_timeout: Duration,
    /// How long one write of our responses may take.
    pub write_timeout: Duration,
    /// The whole end-of-message decision; below Postfix's 300 s content timeout.
    pub eom_timeout: Duration,
    /// How often to tell the MTA we are still working during a long decision.
    pub progress_interval: Duration,
    /// Largest packet accepted from the MTA.
    pub max_packet: usize,
    /// Largest body kept in memory for the filter; the rest is counted, not kept.
    pub max_body: usize,
    /// Header fields kept per message, and their bytes in all; beyond either the
    /// rest is counted, not kept (the filter refuses such a message).
    pub max_headers: usize,
    pub max_header_bytes: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            negotiate_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(1800),
            write_timeout: Duration::from_secs(10),
            eom_timeout: Duration::from_secs(250),
            progress_interval: Duration::from_secs(10),
            max_packet: super::codec::DEFAULT_MAX_PACKET,
            max_body: 64 * 1024 * 1024,
            max_headers: 1000,
            max_header_bytes: 1024 * 1024,
        }
    }
}

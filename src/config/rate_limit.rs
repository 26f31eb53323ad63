//! What a `[[rate_limit]]` is once checked: a name, what it counts by, and the
//! rate. The buckets that count live in the policy engine.

use std::time::Duration;

/// What a limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey {
    ClientIp,
    Sender,
    SenderDomain,
    AuthUser,
    Recipient,
}

impl LimitKey {
    pub const ALL: [(&'static str, LimitKey); 5] = [
        ("client_ip", LimitKey::ClientIp),
        ("sender", LimitKey::Sender),
        ("sender_domain", LimitKey::SenderDomain),
        ("auth_user", LimitKey::AuthUser),
        ("recipient", LimitKey::Recipient),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    pub name: String,
    pub key: LimitKey,
    /// Messages allowed per `per`.
    pub count: u32,
    pub per: Duration,
    /// Bucket size: how many may come at once.
    pub burst: u32,
}

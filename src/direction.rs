//! Which way a message travels: inbound mail from the outside world gets verified;
//! mail from our own users (authenticated, from a trusted network, or submitted
//! locally) does not, and is the only mail that may ever be signed. The decision and
//! its reason are logged for every message, because "why was this (not) checked?"
//! is the question admins ask most.

use std::fmt;
use std::net::IpAddr;

use crate::config::InboundConfig;
use crate::transaction::Transaction;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    Inbound(IpAddr),
    Outbound(Origin),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// SMTP AUTH succeeded (the `{auth_authen}` macro).
    Authenticated(String),
    /// The client address is in `trusted_networks`.
    TrustedNetwork(IpAddr),
    /// Postfix's sendmail/pickup path (`non_smtpd_milters`): no client address, or
    /// the pseudo-connection Postfix makes for it (client and daemon port 0).
    Local,
}

impl Direction {
    pub fn of(tx: &Transaction, inbound: &InboundConfig) -> Direction {
        if inbound.skip_authenticated
            && let Some(user) = tx.macros.text("auth_authen").filter(|u| !u.is_empty())
        {
            return Direction::Outbound(Origin::Authenticated(user));
        }
        if is_local_submission(tx) {
            return Direction::Outbound(Origin::Local);
        }
        match tx.client.ip {
            None => Direction::Outbound(Origin::Local),
            Some(ip) if inbound.trusted_networks.iter().any(|n| n.contains(&ip)) => {
                Direction::Outbound(Origin::TrustedNetwork(ip))
            }
            Some(ip) => Direction::Inbound(ip),
        }
    }
}

/// Postfix's cleanup reports mail from sendmail/pickup as a connection from
/// `localhost` with client port 0 and `{daemon_port}` 0; no SMTP client can have
/// port 0, so this cannot be forged from outside.
fn is_local_submission(tx: &Transaction) -> bool {
    tx.client.port == Some(0) && tx.macros.get("daemon_port").is_some_and(|p| &p[..] == b"0")
}

/// A SASL login as logs and replies may show it: no control characters, at most
/// 128 characters (it comes from the client).
pub fn shown_login(user: &str) -> String {
    user.chars().filter(|c| !c.is_control()).take(128).collect()
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Direction::Inbound(ip) => write!(f, "inbound from {ip}"),
            Direction::Outbound(Origin::Authenticated(user)) => {
                write!(f, "outbound: authenticated as {}", shown_login(user))
            }
            Direction::Outbound(Origin::TrustedNetwork(ip)) => {
                write!(f, "outbound: {ip} is in trusted_networks")
            }
            Direction::Outbound(Origin::Local) => write!(f, "outbound: local submission"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;
    use crate::transaction::{Client, Macros};

    fn tx(ip: Option<&str>, auth: Option<&str>) -> Transaction {
        let mut macros = BTreeMap::new();
        if let Some(a) = auth {
            macros.insert("auth_authen".to_owned(), Bytes::from(a.to_owned()));
        }
        Transaction {
            client: Client {
                ip: ip.map(|i| i.parse().unwrap()),
                ..Default::default()
            },
            macros: Macros::new(macros),
            ..Default::default()
        }
    }

    #[test]
    fn classifies_by_auth_then_network() {
        let mut cfg = crate::config::built_in().inbound;
        cfg.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            Direction::of(&tx(Some("192.0.2.1"), None), &cfg),
            Direction::Inbound("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            Direction::of(&tx(Some("10.1.2.3"), None), &cfg).to_string(),
            "outbound: 10.1.2.3 is in trusted_networks"
        );
        assert_eq!(
            Direction::of(&tx(Some("192.0.2.1"), Some("alice")), &cfg).to_string(),
            "outbound: authenticated as alice"
        );
        assert_eq!(
            Direction::of(&tx(None, None), &cfg),
            Direction::Outbound(Origin::Local)
        );
        // Postfix's pseudo-connection for sendmail/pickup mail.
        let mut local = tx(Some("127.0.0.1"), None);
        local.client.port = Some(0);
        let mut macros = BTreeMap::new();
        macros.insert("daemon_port".to_owned(), Bytes::from_static(b"0"));
        local.macros = Macros::new(macros);
        cfg.trusted_networks.clear();
        assert_eq!(
            Direction::of(&local, &cfg),
            Direction::Outbound(Origin::Local)
        );
        local.client.port = Some(25000);
        assert!(matches!(Direction::of(&local, &cfg), Direction::Inbound(_)));
        cfg.trusted_networks = vec!["10.0.0.0/8".parse().unwrap()];
        // An empty {auth_authen} is no authentication.
        assert!(matches!(
            Direction::of(&tx(Some("192.0.2.1"), Some("")), &cfg),
            Direction::Inbound(_)
        ));
        cfg.skip_authenticated = false;
        assert!(matches!(
            Direction::of(&tx(Some("192.0.2.1"), Some("alice")), &cfg),
            Direction::Inbound(_)
        ));
    }
}

//! An in-memory zone for unit tests of the checks that ask the DNS through
//! [`Dns`]: SPF's evaluator and DMARC's tree walk.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::lookup::{Answer, Dns, Failure};

/// name → records, written as "TXT v=spf1 -all", "A 1.2.3.4", "AAAA ::1",
/// "MX mail.example.com", "PTR host.example.com" (owner is the IP), or "TIMEOUT".
#[derive(Default)]
pub(crate) struct Zone(HashMap<String, Vec<String>>);

impl Zone {
    pub(crate) fn new(records: &[(&str, &str)]) -> Zone {
        let mut zone = Zone::default();
        for (name, record) in records {
            zone.0
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push((*record).to_owned());
        }
        zone
    }

    fn answer<T>(&self, name: &str, kind: &str, parse: impl Fn(&str) -> T) -> Answer<T> {
        let Some(records) = self.0.get(&name.to_ascii_lowercase()) else {
            return Err(Failure::Void);
        };
        let found: Vec<T> = records
            .iter()
            .filter_map(|r| r.strip_prefix(kind)?.strip_prefix(' ').map(&parse))
            .collect();
        if found.is_empty() && records.iter().any(|r| r == "TIMEOUT") {
            return Err(Failure::Error("timed out".into()));
        }
        Ok(found.into())
    }
}

impl Dns for Zone {
    async fn txt(&self, name: &str) -> Answer<Vec<u8>> {
        self.answer(name, "TXT", |t| t.as_bytes().to_vec())
    }
    async fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.answer(name, "A", |t| t.parse().expect("A"))
    }
    async fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.answer(name, "AAAA", |t| t.parse().expect("AAAA"))
    }
    async fn mx(&self, name: &str) -> Answer<String> {
        self.answer(name, "MX", str::to_owned)
    }
    async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        self.answer(&ip.to_string(), "PTR", str::to_owned)
    }
    /// RFC 8020: a name exists when it, or a name under it, has records.
    async fn exists(&self, name: &str) -> Result<bool, String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self
            .0
            .get(&name)
            .is_some_and(|r| r.iter().any(|r| r == "TIMEOUT"))
        {
            return Err("timed out".into());
        }
        let below = format!(".{name}");
        Ok(self.0.keys().any(|k| *k == name || k.ends_with(&below)))
    }
}

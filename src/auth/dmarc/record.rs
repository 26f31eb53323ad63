//! The DMARC policy record (RFC 9989 §4.7 and §4.8): a tag list whose first tag is
//! `v=DMARC1`. Unknown tags are ignored; a bad value falls back to its default,
//! except that a bad `p`, `sp` or `np` makes the record `p=none` when it names a
//! valid `rua` and no record at all otherwise (§4.10.1). `pct` is read for the
//! RFC 7489 discovery (`dmarc.discovery = "psl"`); RFC 9989 has `t` instead.

use super::Policy;

/// The `psd` tag: whether the record is published by a public suffix operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Psd {
    Yes,
    No,
    /// `psd=u` or no tag.
    Unknown,
}

impl Psd {
    pub fn as_str(self) -> &'static str {
        match self {
            Psd::Yes => "y",
            Psd::No => "n",
            Psd::Unknown => "u",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub p: Policy,
    pub sp: Option<Policy>,
    pub np: Option<Policy>,
    pub psd: Psd,
    /// `t=y`: the owner is testing; the policy is not applied as published.
    pub testing: bool,
    /// RFC 7489's sampling rate, used only by the PSL discovery.
    pub pct: u8,
    pub adkim_strict: bool,
    pub aspf_strict: bool,
    /// Aggregate and failure report destinations, as `mailto:` addresses with
    /// their optional `!size` limit (other URI schemes are dropped, §4.7).
    pub rua: Vec<Destination>,
    pub ruf: Vec<Destination>,
    /// Failure reporting options, as published (`0` by default).
    pub fo: String,
}

/// One `mailto:` report destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub address: String,
    /// The `!size` suffix in bytes, when given.
    pub max_size: Option<u64>,
}

impl Record {
    /// The published policy as `tag=value` pairs, `;`-separated, in the order
    /// RFC 9989 lists them (`sp` and `np` only when published): what a report's
    /// `policy_published` is written from.
    pub fn tags(&self) -> String {
        let mut out = format!("p={}", self.p.as_str());
        if let Some(sp) = self.sp {
            out.push_str(&format!(";sp={}", sp.as_str()));
        }
        if let Some(np) = self.np {
            out.push_str(&format!(";np={}", np.as_str()));
        }
        out.push_str(&format!(
            ";adkim={};aspf={};psd={};t={};fo={}",
            if self.adkim_strict { "s" } else { "r" },
            if self.aspf_strict { "s" } else { "r" },
            self.psd.as_str(),
            if self.testing { "y" } else { "n" },
            self.fo
        ));
        out
    }
}

/// Whether a TXT record is a DMARC record at all: its first tag is `v=DMARC1`
/// (the others at a name are not DMARC's, §4.4 step 2).
pub fn is_dmarc(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text);
    let mut first = text.split(';').next().unwrap_or_default().split('=');
    first.next().map(str::trim) == Some("v") && first.next().map(str::trim) == Some("DMARC1")
}

/// Parses a DMARC TXT record. `Err` means "not a usable DMARC record", which
/// RFC 9989 treats like no record at all.
pub fn parse(txt: &str) -> Result<Record, String> {
    let mut tags = txt.split(';').map(str::trim);
    match tags.next().and_then(|t| t.split_once('=')) {
        // The version is case-sensitive (§4.8: %s"DMARC1").
        Some((v, value)) if v.trim() == "v" && value.trim() == "DMARC1" => {}
        _ => return Err("does not start with v=DMARC1".into()),
    }
    let mut record = Record {
        p: Policy::None,
        sp: None,
        np: None,
        psd: Psd::Unknown,
        testing: false,
        pct: 100,
        adkim_strict: false,
        aspf_strict: false,
        rua: Vec::new(),
        ruf: Vec::new(),
        fo: "0".into(),
    };
    let mut bad_policy: Option<String> = None;
    let mut has_p = false;
    for tag in tags.filter(|t| !t.is_empty()) {
        let Some((name, value)) = tag.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let mut policy = |slot: &mut Option<Policy>| match Policy::parse(value) {
            Some(p) => *slot = Some(p),
            None => bad_policy = Some(format!("{name}={value} is not a policy")),
        };
        match name.as_str() {
            "p" => {
                let mut p = None;
                policy(&mut p);
                if let Some(p) = p {
                    record.p = p;
                    has_p = true;
                }
            }
            "sp" => policy(&mut record.sp),
            "np" => policy(&mut record.np),
            "psd" => {
                record.psd = match value {
                    "y" => Psd::Yes,
                    "n" => Psd::No,
                    _ => Psd::Unknown,
                }
            }
            "t" => record.testing = value == "y",
            "pct" => {
                record.pct = value
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .unwrap_or(100)
            }
            "adkim" => record.adkim_strict = value == "s",
            "aspf" => record.aspf_strict = value == "s",
            "rua" => record.rua = destinations(value),
            "ruf" => record.ruf = destinations(value),
            "fo" if fo_valid(value) => record.fo = value.to_owned(),
            _ => {}
        }
    }
    if !has_p && bad_policy.is_none() {
        bad_policy = Some("has no p= tag".into());
    }
    if let Some(why) = bad_policy {
        // §4.10.1: with a valid rua= the record is p=none, else no record.
        if record.rua.is_empty() {
            return Err(why);
        }
        record.p = Policy::None;
        record.sp = None;
        record.np = None;
    }
    Ok(record)
}

/// The `mailto:` URIs of a `dmarc-urilist`; others are ignored (§4.7).
fn destinations(value: &str) -> Vec<Destination> {
    value
        .split(',')
        .filter_map(|uri| {
            let uri = uri.trim();
            let (scheme, rest) = uri.split_once(':')?;
            if !scheme.eq_ignore_ascii_case("mailto") {
                return None;
            }
            let (address, size) = match rest.rsplit_once('!') {
                Some((a, s)) => (a, Some(s)),
                None => (rest, None),
            };
            let address = percent_decode(address)?;
            let (local, domain) = address.rsplit_once('@')?;
            if local.is_empty() || !crate::auth::spf::valid_domain(domain) {
                return None;
            }
            Some(Destination {
                address,
                max_size: size.and_then(size_limit),
            })
        })
        .collect()
}

/// `10m`, `50k`, `1g`, `512` (bytes) as RFC 7489 §6.2 writes sizes.
fn size_limit(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let n: u64 = digits.parse().ok()?;
    let unit = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(|c| c.is_control() || c.is_whitespace())).then_some(text)
}

fn fo_valid(value: &str) -> bool {
    !value.is_empty()
        && value
            .split(':')
            .all(|o| matches!(o.trim(), "0" | "1" | "d" | "s"))
}

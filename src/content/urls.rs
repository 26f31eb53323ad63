//! Links in a message's text and HTML: each URL's host, whether the host is a bare
//! IP address, and, for an HTML link, the host its visible text shows, because a
//! link that reads `paypal.com` and goes elsewhere is the classic phishing tell.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Lower case, without port, user info or trailing dot.
    pub host: String,
    /// The host is an IP address (dotted, bracketed IPv6, or one decimal number).
    pub ip_literal: bool,
    /// For an `<a href>`: the host named by the link's visible text, when the text
    /// looks like a URL or a domain.
    pub text_host: Option<String>,
}

impl Link {
    /// The visible text names another site than the one the link goes to (compared
    /// by registrable domain, so `www.example.com` and `example.com` agree).
    pub fn text_mismatch(&self) -> bool {
        self.text_host
            .as_deref()
            .is_some_and(|t| registrable(t) != registrable(&self.host))
    }
}

static PLAIN_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\bhttps?://[^\s<>"'()\[\]]+"#).unwrap_or_else(|e| unreachable!("{e}"))
});
static ANCHOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?is)<a\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>(.*?)</a\s*>"#)
        .unwrap_or_else(|e| unreachable!("{e}"))
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<[^>]*>").unwrap_or_else(|e| unreachable!("{e}")));
static DOMAINISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:https?://)?(?:www\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[/:?#].*)?$")
        .unwrap_or_else(|e| unreachable!("{e}"))
});

/// Every link in `text` (plain text) and `html`, in order, without duplicates.
pub fn links(text: &str, html: &str) -> Vec<Link> {
    let mut out: Vec<Link> = Vec::new();
    let mut push = |link: Link| {
        if !out.contains(&link) {
            out.push(link);
        }
    };
    for m in PLAIN_URL.find_iter(text) {
        if let Some(host) = host_of(m.as_str()) {
            push(link(host, None));
        }
    }
    for c in ANCHOR.captures_iter(html) {
        let href = c
            .get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map_or("", |m| m.as_str());
        let Some(host) = host_of(&decode_entities(href)) else {
            continue;
        };
        let visible = decode_entities(&TAG.replace_all(c.get(4).map_or("", |m| m.as_str()), ""));
        let text_host = DOMAINISH
            .captures(visible.trim())
            .and_then(|d| d.get(1))
            .map(|d| d.as_str().to_ascii_lowercase());
        push(link(host, text_host));
    }
    // Bare URLs in HTML text outside anchors count too.
    let html_text = TAG.replace_all(html, " ");
    for m in PLAIN_URL.find_iter(&html_text) {
        if let Some(host) = host_of(m.as_str()) {
            push(link(host, None));
        }
    }
    out
}

fn link(host: String, text_host: Option<String>) -> Link {
    Link {
        ip_literal: is_ip_literal(&host),
        host,
        text_host,
    }
}

/// The host of an absolute http(s) URL.
pub fn host_of(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#', '\\']).next()?;
    // user:password@host — the part before @ is what the reader sees first.
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?.to_owned()
    } else {
        hostport.split(':').next()?.to_owned()
    };
    let host = host.trim_end_matches('.').to_owned();
    (!host.is_empty()).then_some(host)
}

fn is_ip_literal(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
        // http://3232235777/ is 192.168.1.1 to a browser.
        || (host.bytes().all(|b| b.is_ascii_digit()) && host.parse::<u32>().map(Ipv4Addr::from).is_ok())
        || (host.starts_with("0x") && u32::from_str_radix(&host[2..], 16).is_ok())
}

fn registrable(host: &str) -> String {
    let host = host.trim_start_matches("www.");
    psl::domain_str(host).unwrap_or(host).to_owned()
}

fn decode_entities(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#46;", ".")
        .replace("&#x2e;", ".")
        .replace("&quot;", "\"")
        .replace("&#58;", ":")
        .replace("&#47;", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            host_of("https://Example.COM./x").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host_of("http://user:pw@evil.test:8080/").as_deref(),
            Some("evil.test")
        );
        assert_eq!(
            host_of("http://[2001:db8::1]/a").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(host_of("ftp://x.test/"), None);
    }

    #[test]
    fn finds_links_ip_literals_and_lying_anchors() {
        let text = "Pay now at https://pay.partner.example/invoice?id=1 or http://192.0.2.7/login.";
        let html = r#"<p>Log in at <a class="btn" href="https://evil.test/paypal">www.paypal.com</a>,
            <a href='https://www.shop.example/a'>shop.example</a>,
            <a href=http://3232235777/x>click here</a>, see http://plain.example/ too.</p>"#;
        let links = links(text, html);
        let hosts: Vec<&str> = links.iter().map(|l| l.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "pay.partner.example",
                "192.0.2.7",
                "evil.test",
                "www.shop.example",
                "3232235777",
                "plain.example"
            ]
        );
        let ip: Vec<bool> = links.iter().map(|l| l.ip_literal).collect();
        assert_eq!(ip, [false, true, false, false, true, false]);
        let mismatch: Vec<bool> = links.iter().map(Link::text_mismatch).collect();
        assert_eq!(mismatch, [false, false, true, false, false, false]);
        assert_eq!(links[2].text_host.as_deref(), Some("paypal.com"));
    }
}

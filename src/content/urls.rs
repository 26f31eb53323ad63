//! Links in a message's text and HTML: each URL's host, whether the host is a bare
//! IP address, and, for an HTML link, the host its visible text shows, because a
//! link that reads `paypal.com` and goes elsewhere is the classic phishing tell.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

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

/// At most this many distinct links are kept per message.
const MAX_LINKS: usize = 1000;

/// Every link in `text` (plain text) and `html`, in order, without duplicates.
pub fn links(text: &str, html: &str) -> Vec<Link> {
    let mut seen = HashSet::new();
    let mut hosts = HashSet::new();
    let mut out: Vec<Link> = Vec::new();
    // `new_host_only`: add a link without visible text only for a host not seen yet.
    let mut push = |host: String, text_host: Option<String>, new_host_only: bool| {
        if out.len() >= MAX_LINKS || (new_host_only && hosts.contains(&host)) {
            return;
        }
        if seen.insert((host.clone(), text_host.clone())) {
            hosts.insert(host.clone());
            out.push(link(host, text_host));
        }
    };
    let mut urls_seen = HashSet::new();
    for url in plain_urls(text) {
        if urls_seen.insert(url)
            && let Some(host) = host_of(url)
        {
            push(host, None, false);
        }
    }
    for (href, visible) in anchors(html) {
        let Some(host) = host_of(&decode_entities(href)) else {
            continue;
        };
        let visible = decode_entities(&strip_tags(visible));
        push(host, domain_shown(visible.trim()), false);
    }
    // URLs written out in the HTML (the hrefs themselves come again; they dedupe).
    for url in plain_urls(html) {
        if urls_seen.insert(url)
            && let Some(host) = host_of(url)
        {
            push(host, None, true);
        }
    }
    out
}

/// Every `http://` or `https://` URL written out in `text`, up to the first
/// character that cannot be part of one.
fn plain_urls(text: &str) -> Vec<&str> {
    let lower = text.to_ascii_lowercase();
    let mut out = Vec::new();
    for start in memchr::memmem::find_iter(lower.as_bytes(), "http") {
        let rest = &lower[start..];
        let scheme = if rest.starts_with("https://") {
            8
        } else if rest.starts_with("http://") {
            7
        } else {
            continue;
        };
        // Not the tail of a longer word ("xhttp://").
        if lower[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            continue;
        }
        let len = rest[scheme..]
            .find(|c: char| c.is_whitespace() || "<>\"'()[]".contains(c))
            .map_or(rest.len(), |e| scheme + e);
        if len > scheme {
            out.push(&text[start..start + len]);
        }
        if out.len() >= MAX_LINKS {
            break;
        }
    }
    out
}

/// The domain a link's visible text shows ("www.PayPal.com", "https://x.example/y"),
/// or `None` when the text does not look like one ("click here").
fn domain_shown(visible: &str) -> Option<String> {
    let lower = visible.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let domain = rest.split(['/', ':', '?', '#']).next().unwrap_or("");
    let labels_ok = domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    labels_ok.then(|| domain.to_owned())
}

/// (href, inner HTML) of each `<a ... href=...>...</a>`, found by a plain scan.
fn anchors(html: &str) -> Vec<(&str, &str)> {
    let lower = html.to_ascii_lowercase();
    let finder = memchr::memmem::Finder::new("<a");
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = finder.find(&lower.as_bytes()[pos..]) {
        let start = pos + i;
        pos = start + 2;
        if !matches!(
            lower.as_bytes().get(pos),
            Some(b' ' | b'\t' | b'\r' | b'\n')
        ) {
            continue;
        }
        let Some(open_end) = lower[start..].find('>').map(|e| start + e) else {
            break;
        };
        let Some(href) = attribute(&html[start..open_end], &lower[start..open_end], "href") else {
            pos = open_end;
            continue;
        };
        let close = lower[open_end..]
            .find("</a")
            .map_or(lower.len(), |c| open_end + c);
        out.push((href, &html[open_end + 1..close.max(open_end + 1)]));
        pos = close.max(open_end);
        if out.len() >= MAX_LINKS {
            break;
        }
    }
    out
}

/// The value of attribute `name` in an opening tag (`lower` is the same tag in
/// lower case), quoted or not.
fn attribute<'t>(tag: &'t str, lower: &str, name: &str) -> Option<&'t str> {
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = lower[..at].ends_with(|c: char| c.is_ascii_whitespace());
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_start = lower.len() - rest[1..].trim_start().len();
        let value = &tag[value_start..];
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        });
    }
    None
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
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
    let url = url.trim();
    let scheme = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let rest = if scheme.starts_with("http://") {
        &url[7..]
    } else if scheme.starts_with("https://") {
        &url[8..]
    } else {
        return None;
    };
    let authority = rest
        .split(['/', '?', '#', '\\'])
        .next()?
        .to_ascii_lowercase();
    // user:password@host — the part before @ is what the reader sees first.
    let hostport = authority
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
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
    if !s.contains('&') {
        return s.to_owned();
    }
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

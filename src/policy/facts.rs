//! Everything the rules can look at for one message, gathered once: the SMTP
//! session, the envelope, the headers, the inbound checks, the virus scan and (when
//! some rule needs them) the decoded subject, From, text and attachments.

use std::net::IpAddr;

use mail_parser::{MimeHeaders, PartType};

use crate::content::urls::Link;
use crate::content::{self, archive};

use crate::auth::AuthReport;
use crate::direction::Direction;
use crate::scan::Outcome;
use crate::transaction::Transaction;

#[derive(Debug, Clone, Default)]
pub struct Attachment {
    pub name: String,
    /// Lower case, without the dot; empty when the name has none.
    pub ext: String,
    /// The declared type, `type/subtype`, lower case (empty inside archives).
    pub mime: String,
    /// The type its first bytes show, when they are a well-known format.
    pub detected: Option<String>,
    /// The archive it was found in (names only: nothing is unpacked).
    pub inside: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub client_ip: Option<IpAddr>,
    pub reverse_name: String,
    pub helo: String,
    pub auth_user: Option<String>,
    pub inbound: bool,
    pub sender: String,
    pub recipients: Vec<String>,
    /// (name, value) with folding removed, value as (lossy) text.
    pub headers: Vec<(String, String)>,
    pub size: u64,
    /// Method → results (DKIM has one per signature); empty when not inbound.
    pub auth: Vec<(&'static str, String)>,
    pub dmarc_policy: Option<String>,
    /// `None`: not scanned; `Some(vec![])`: clean.
    pub viruses: Option<Vec<String>>,
    /// Filled when a rule needs the parsed message.
    pub subject: String,
    pub from_name: Vec<String>,
    pub from_address: Vec<String>,
    pub body: String,
    pub attachments: Vec<Attachment>,
    /// Links in the text and HTML parts.
    pub links: Vec<Link>,
}

/// The whole message (see [`Transaction::message`]), for the facts read from its
/// content, and how deep into archives inside archives to read member names.
#[derive(Clone, Copy)]
pub struct Content<'a> {
    pub message: &'a [u8],
    pub archive_depth: u32,
}

impl Facts {
    /// Gathers the facts; with `content` also the parsed ones (MIME, RFC 2047,
    /// attachment and archive member names).
    pub fn gather(
        tx: &Transaction,
        direction: &Direction,
        auth: Option<&AuthReport>,
        scan: Option<&Outcome>,
        content: Option<Content<'_>>,
    ) -> Facts {
        let mut f = Facts {
            client_ip: tx.client.ip,
            reverse_name: tx.client.hostname.clone(),
            helo: tx.client.helo.clone().unwrap_or_default(),
            auth_user: tx.macros.text("auth_authen").filter(|u| !u.is_empty()),
            inbound: matches!(direction, Direction::Inbound(_)),
            sender: tx.sender.address().to_owned(),
            recipients: tx
                .recipients
                .iter()
                .map(|r| r.address().to_owned())
                .collect(),
            headers: tx
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(&h.value)
                        .replace(['\r', '\n'], "")
                        .trim()
                        .to_owned();
                    (h.name.clone(), value)
                })
                .collect(),
            size: tx.header_block().len() as u64 + tx.body_size,
            ..Facts::default()
        };
        if let Some(report) = auth {
            f.auth = report
                .methods()
                .map(|m| (m.method, m.result.as_str().to_owned()))
                .collect();
            f.dmarc_policy = report
                .disposition
                .as_ref()
                .map(|d| d.requested.as_str().to_owned());
        }
        f.viruses = match scan {
            Some(Outcome::Clean) => Some(Vec::new()),
            Some(Outcome::Infected(found)) => {
                Some(found.iter().map(|v| v.signature.clone()).collect())
            }
            _ => None,
        };
        if let Some(content) = content {
            f.read_content(content.message, content.archive_depth);
        }
        f
    }

    fn read_content(&mut self, raw: &[u8], archive_depth: u32) {
        let Some(message) = content::parse(raw) else {
            return;
        };
        self.subject = message.subject().unwrap_or_default().to_owned();
        if let Some(from) = message.from() {
            for addr in from.iter() {
                self.from_name
                    .push(addr.name().unwrap_or_default().to_owned());
                self.from_address
                    .push(addr.address().unwrap_or_default().to_owned());
            }
        }
        let (mut text, mut html) = (String::new(), String::new());
        for part in &message.parts {
            match &part.body {
                PartType::Text(t) => {
                    text.push_str(t);
                    text.push('\n');
                }
                PartType::Html(h) => {
                    html.push_str(h);
                    html.push('\n');
                }
                _ => {}
            }
        }
        self.links = crate::content::urls::links(&text, &html);
        text.push_str(&html);
        self.body = text;
        for part in message.attachments() {
            let name = part.attachment_name().unwrap_or_default().to_owned();
            let declared = content::declared_type(part)
                .unwrap_or_default()
                .to_ascii_lowercase();
            let data = part.contents();
            let detected = archive::sniff(data).map(str::to_owned);
            for member in archive::zip_names(data, archive_depth) {
                self.attachments.push(Attachment {
                    ext: content::extension(&member),
                    name: member,
                    inside: Some(name.clone()),
                    ..Attachment::default()
                });
            }
            self.attachments.push(Attachment {
                ext: content::extension(&name),
                name,
                mime: declared,
                detected,
                inside: None,
            });
        }
    }

    pub fn sender_domain(&self) -> &str {
        domain_of(&self.sender)
    }
}

/// The part after the last `@`, or empty.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

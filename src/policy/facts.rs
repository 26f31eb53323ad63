//! Everything the rules can look at for one message, gathered once: the SMTP
//! session, the envelope, the headers, the inbound checks, the virus scan and (when
//! some rule needs them) the decoded subject, From, text and attachments.

use std::net::IpAddr;

use mail_parser::MimeHeaders;

use crate::auth::AuthReport;
use crate::direction::Direction;
use crate::scan::Outcome;
use crate::transaction::Transaction;

#[derive(Debug, Clone, Default)]
pub struct Attachment {
    pub name: String,
    /// Lower case, without the dot; empty when the name has none.
    pub ext: String,
    /// The declared type, `type/subtype`, lower case.
    pub mime: String,
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
}

impl Facts {
    /// Gathers the facts; `content` also parses the message (MIME, RFC 2047).
    pub fn gather(
        tx: &Transaction,
        direction: &Direction,
        auth: Option<&AuthReport>,
        scan: Option<&Outcome>,
        content: bool,
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
        if content {
            f.read_content(tx);
        }
        f
    }

    fn read_content(&mut self, tx: &Transaction) {
        let mut raw = tx.header_block();
        raw.extend_from_slice(&tx.body);
        let Some(message) = crate::content::parse(&raw) else {
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
        let mut body = String::new();
        for i in 0..message.text_body_count() {
            if let Some(t) = message.body_text(i) {
                body.push_str(&t);
                body.push('\n');
            }
        }
        for i in 0..message.html_body_count() {
            if let Some(t) = message.body_html(i) {
                body.push_str(&t);
                body.push('\n');
            }
        }
        self.body = body;
        for part in message.attachments() {
            let name = part.attachment_name().unwrap_or_default().to_owned();
            let ext = name
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            let mime = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{sub}", ct.c_type),
                    None => ct.c_type.to_string(),
                })
                .unwrap_or_default()
                .to_ascii_lowercase();
            self.attachments.push(Attachment { name, ext, mime });
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

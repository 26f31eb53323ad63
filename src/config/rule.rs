//! What a rule is once its configuration has been checked: conditions with their
//! patterns compiled, actions with their replies built. Nothing here reads a file
//! or a socket.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;

use crate::reply::SmtpReply;

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub when: Condition,
    pub then: Vec<Action>,
    /// Ends evaluation when the rule matches (default: when it has a final action).
    pub stop: bool,
    /// Log and count what the rule would do; change nothing.
    pub monitor: bool,
    /// Verdicts of these checks that the rule's final action may lift (`skip =
    /// ["antivirus"]`). Without it a rule adds to a refusal or hold by DMARC or the
    /// antivirus step, never takes one away.
    pub skip: Vec<Enforcer>,
}

/// A check whose verdict stands unless a rule names it in `skip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcer {
    Dmarc,
    Antivirus,
    /// The content checks, for a message past `server.max_mime_parts`.
    Content,
}

impl Enforcer {
    pub const ALL: [(&'static str, Enforcer); 3] = [
        ("dmarc", Enforcer::Dmarc),
        ("antivirus", Enforcer::Antivirus),
        ("content", Enforcer::Content),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Enforcer::Dmarc => "dmarc",
            Enforcer::Antivirus => "antivirus",
            Enforcer::Content => "content",
        }
    }
}

/// One way a text value can match.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Equal, ignoring ASCII case.
    Exact(String),
    /// A regular expression (globs are compiled to one, case-insensitive).
    Regex(Regex),
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Pattern::Exact(a), Pattern::Exact(b)) => a == b,
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Pattern {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(want) => want.eq_ignore_ascii_case(value),
            Pattern::Regex(re) => re.is_match(value),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Pattern::Exact(s) => format!("{s:?}"),
            Pattern::Regex(re) => format!("/{}/", re.as_str()),
        }
    }
}

/// Matches when any of its patterns matches any of the values looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
    /// Where the patterns came from, for explanations ("list file lists/x.txt").
    pub source: Option<String>,
}

impl Matcher {
    /// The first (value, pattern) that matches.
    pub fn first_match<'v>(&self, values: &[&'v str]) -> Option<(&'v str, &Pattern)> {
        values
            .iter()
            .find_map(|v| self.patterns.iter().find(|p| p.matches(v)).map(|p| (*v, p)))
    }

    pub fn describe(&self) -> String {
        if let Some(source) = &self.source {
            return format!("{} entries of {source}", self.patterns.len());
        }
        let shown: Vec<String> = self
            .patterns
            .iter()
            .take(5)
            .map(Pattern::describe)
            .collect();
        let more = self.patterns.len().saturating_sub(5);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }
}

/// A text fact a condition can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    ReverseName,
    Helo,
    AuthUser,
    Sender,
    SenderDomain,
    Recipient,
    RecipientDomain,
    Subject,
    FromName,
    FromAddress,
    Body,
    VirusName,
    AttachmentName,
    AttachmentExt,
    AttachmentType,
    UrlHost,
}

impl TextField {
    pub const ALL: [(&'static str, TextField); 16] = [
        ("reverse_name", TextField::ReverseName),
        ("helo", TextField::Helo),
        ("auth_user", TextField::AuthUser),
        ("sender", TextField::Sender),
        ("sender_domain", TextField::SenderDomain),
        ("recipient", TextField::Recipient),
        ("recipient_domain", TextField::RecipientDomain),
        ("subject", TextField::Subject),
        ("from_name", TextField::FromName),
        ("from_address", TextField::FromAddress),
        ("body", TextField::Body),
        ("virus_name", TextField::VirusName),
        ("attachment_name", TextField::AttachmentName),
        ("attachment_ext", TextField::AttachmentExt),
        ("attachment_type", TextField::AttachmentType),
        ("url_host", TextField::UrlHost),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// Facts that need the message parsed (MIME, decoded text).
    pub fn needs_content(self) -> bool {
        matches!(
            self,
            TextField::Subject
                | TextField::FromName
                | TextField::FromAddress
                | TextField::Body
                | TextField::AttachmentName
                | TextField::AttachmentExt
                | TextField::AttachmentType
                | TextField::UrlHost
        )
    }
}

/// An authentication method whose result a condition can test.
pub const AUTH_METHODS: [&str; 5] = ["spf", "dkim", "dmarc", "arc", "iprev"];

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every one holds (a `when` table).
    All(Vec<Condition>),
    /// At least one holds (`any = [...]`).
    Any(Vec<Condition>),
    /// It does not hold (`not = {...}`).
    Not(Box<Condition>),
    Text(TextField, Matcher),
    /// `header = { name = "X-Mailer", ... }`: any field of that name.
    Header(String, Matcher),
    ClientIp(Vec<IpNet>),
    /// `direction = "inbound"` (true) or `"outbound"`.
    Inbound(bool),
    SizeOver(u64),
    SizeUnder(u64),
    /// `spf = ["fail", "softfail"]`: the method's result is one of these.
    AuthResult(&'static str, Vec<String>),
    /// The sender domain's published DMARC policy (`none`, `quarantine`, `reject`).
    DmarcPolicy(Vec<String>),
    /// `virus = true`: clamd found something.
    Virus(bool),
    /// `rate_limit = "name"`: the message is over that limit (it takes a token).
    RateLimit(usize, String),
    /// `url_ip_literal = true`: a link goes to a bare IP address.
    UrlIpLiteral(bool),
    /// `url_text_mismatch = true`: a link's visible text names another site.
    UrlTextMismatch(bool),
    /// The envelope sender's or From's domain (or a parent of it) is in this list
    /// of throwaway-address domains.
    DisposableSender(DomainList),
    /// An outside sender whose From display name claims a protected name, or names
    /// one of our domains.
    Impersonates(Impersonation),
}

/// Lower-case domains, with where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainList {
    pub domains: Vec<String>,
    pub source: String,
}

impl DomainList {
    /// The entry `domain` is, or is under.
    pub fn find(&self, domain: &str) -> Option<&str> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domains
            .iter()
            .find(|d| {
                domain == **d
                    || domain
                        .strip_suffix(d.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            })
            .map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Impersonation {
    /// Protected display names, normalized (see [`normalize_name`]).
    pub names: Vec<String>,
    /// Our own domains: From addresses there are not impersonation, and a display
    /// name that mentions one from elsewhere is.
    pub domains: DomainList,
}

/// Lower case letters and digits only, so "Jane  Doe", "jane.doe" and "JANE-DOE"
/// compare equal.
pub fn normalize_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Condition {
    pub fn needs_content(&self) -> bool {
        match self {
            Condition::All(c) | Condition::Any(c) => c.iter().any(Condition::needs_content),
            Condition::Not(c) => c.needs_content(),
            Condition::Text(f, _) => f.needs_content(),
            Condition::UrlIpLiteral(_)
            | Condition::UrlTextMismatch(_)
            | Condition::DisposableSender(_)
            | Condition::Impersonates(_) => true,
            _ => false,
        }
    }
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Accept,
    Reject(SmtpReply),
    Tempfail(SmtpReply),
    Discard,
    Quarantine(String),
    AddHeader(String, String),
    SetHeader(String, String),
    RemoveHeader(String),
    PrefixSubject(String),
    AddRecipient(String),
    /// Remove the attachments these select (all of them when none is given).
    StripAttachments(StripSpec),
    /// Only a tag in the decision log line.
    Log(String),
}

/// Which attachments `strip_attachments` removes: any that one of the given
/// matchers selects; every attachment when none is given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StripSpec {
    pub ext: Option<Matcher>,
    pub name: Option<Matcher>,
    /// Declared or detected type.
    pub mime: Option<Matcher>,
}

impl StripSpec {
    pub fn selects(&self, name: &str, ext: &str, types: &[&str]) -> bool {
        if self.ext.is_none() && self.name.is_none() && self.mime.is_none() {
            return true;
        }
        self.ext
            .as_ref()
            .is_some_and(|m| m.first_match(&[ext]).is_some())
            || self
                .name
                .as_ref()
                .is_some_and(|m| m.first_match(&[name]).is_some())
            || self
                .mime
                .as_ref()
                .is_some_and(|m| m.first_match(types).is_some())
    }
}

impl Action {
    /// Final actions decide the message; the others change or tag it.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Accept
                | Action::Reject(_)
                | Action::Tempfail(_)
                | Action::Discard
                | Action::Quarantine(_)
        )
    }

    pub fn describe(&self) -> String {
        match self {
            Action::Accept => "accept".into(),
            Action::Reject(r) => format!("reject {r}"),
            Action::Tempfail(r) => format!("tempfail {r}"),
            Action::Discard => "discard".into(),
            Action::Quarantine(why) => format!("quarantine ({why})"),
            Action::AddHeader(n, v) => format!("add_header {n}: {v}"),
            Action::SetHeader(n, v) => format!("set_header {n}: {v}"),
            Action::RemoveHeader(n) => format!("remove_header {n}"),
            Action::PrefixSubject(p) => format!("prefix_subject {p:?}"),
            Action::AddRecipient(a) => format!("add_recipient {a}"),
            Action::StripAttachments(spec) => {
                let mut what = Vec::new();
                for (label, m) in [
                    ("ext", &spec.ext),
                    ("name", &spec.name),
                    ("type", &spec.mime),
                ] {
                    if let Some(m) = m {
                        what.push(format!("{label} {}", m.describe()));
                    }
                }
                if what.is_empty() {
                    "strip_attachments (all)".into()
                } else {
                    format!("strip_attachments ({})", what.join("; "))
                }
            }
            Action::Log(tag) => format!("log {tag:?}"),
        }
    }
}

/// Is `ip` in any of `nets`?
pub fn in_networks(nets: &[IpNet], ip: IpAddr) -> Option<&IpNet> {
    nets.iter().find(|n| n.contains(&ip))
}

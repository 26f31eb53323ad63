//! Custom SMTP replies (sent as `SMFIR_REPLYCODE`): a 4xx/5xx code, an enhanced status code
//! of the same class, and one or more lines of text. Construction enforces what
//! Postfix checks (`milter8_valid_smtp_reply`) and libmilter's limits, so a reply we
//! build can never make Postfix declare the milter broken.

use std::fmt;

use thiserror::Error;

/// libmilter's limits for `smfi_setmlreply`.
pub const MAX_REPLY_LINES: usize = 32;
pub const MAX_REPLY_LINE: usize = 980;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    code: u16,
    status: EnhancedStatus,
    lines: Vec<String>,
}

/// RFC 3463 `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl std::str::FromStr for EnhancedStatus {
    type Err = ReplyError;
    fn from_str(s: &str) -> Result<Self, ReplyError> {
        let bad = || ReplyError::BadStatus(s.to_owned());
        let mut parts = s.split('.');
        let (Some(class), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let class: u8 = class.parse().map_err(|_| bad())?;
        if !(class == 4 || class == 5) || subject.len() > 3 || detail.len() > 3 {
            return Err(bad());
        }
        Ok(EnhancedStatus {
            class,
            subject: subject.parse().map_err(|_| bad())?,
            detail: detail.parse().map_err(|_| bad())?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    #[error("reply code {0} is not a 4xx or 5xx code")]
    BadCode(u16),
    #[error("enhanced status code {0:?} is not of the form 4.x.y or 5.x.y")]
    BadStatus(String),
    #[error("reply code {code} and enhanced status {status} are of different classes")]
    ClassMismatch { code: u16, status: EnhancedStatus },
    #[error("a reply needs at least one line of text")]
    Empty,
    #[error("a reply may have at most {MAX_REPLY_LINES} lines, this one has {0}")]
    TooManyLines(usize),
}

impl SmtpReply {
    /// Builds a reply. Text lines may come from a message (a virus name, a domain):
    /// control characters are replaced by spaces and over-long lines are cut, so no
    /// input can break the reply's framing.
    pub fn new<S: AsRef<str>>(code: u16, status: &str, lines: &[S]) -> Result<Self, ReplyError> {
        if !(400..600).contains(&code) {
            return Err(ReplyError::BadCode(code));
        }
        let status: EnhancedStatus = status.parse()?;
        if u16::from(status.class) != code / 100 {
            return Err(ReplyError::ClassMismatch { code, status });
        }
        if lines.is_empty() {
            return Err(ReplyError::Empty);
        }
        if lines.len() > MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines(lines.len()));
        }
        let lines = lines.iter().map(|l| sanitize_line(l.as_ref())).collect();
        Ok(SmtpReply {
            code,
            status,
            lines,
        })
    }

    /// A reply whose code and enhanced status are written in our own source, so
    /// known to be valid; only the text may come from elsewhere (and is cleaned).
    pub fn fixed(code: u16, status: &str, text: impl AsRef<str>) -> Self {
        SmtpReply::new(code, status, &[text])
            .unwrap_or_else(|e| unreachable!("{code} {status} is a valid fixed reply: {e}"))
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    pub fn status(&self) -> EnhancedStatus {
        self.status
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The payload of `SMFIR_REPLYCODE`: lines joined by CRLF, `ddd-` on all but the
    /// last, and every `%` doubled because Sendmail and Postfix treat the text as a
    /// format string.
    pub fn to_wire(&self) -> String {
        let last = self.lines.len() - 1;
        let mut out = String::new();
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            out.push_str(&format!(
                "{}{}{} {}",
                self.code,
                sep,
                self.status,
                line.replace('%', "%%")
            ));
            if i != last {
                out.push_str("\r\n");
            }
        }
        out
    }

    /// Parses a `SMFIR_REPLYCODE` payload back (used by the MTA-side client and tests).
    pub fn from_wire(text: &str) -> Result<Self, ReplyError> {
        let mut code = 0;
        let mut status = String::new();
        let mut lines = Vec::new();
        for raw in text.split("\r\n") {
            let bad = || ReplyError::BadStatus(raw.to_owned());
            let (head, rest) = raw.split_at_checked(4).ok_or_else(bad)?;
            code = head[..3].parse().map_err(|_| bad())?;
            let (st, line) = rest.split_once(' ').unwrap_or((rest, ""));
            status = st.to_owned();
            lines.push(line.replace("%%", "%"));
        }
        SmtpReply::new(code, &status, &lines)
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.code,
            self.status,
            self.lines.join(" / ")
        )
    }
}

fn sanitize_line(line: &str) -> String {
    let mut out: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_REPLY_LINE {
        let mut cut = MAX_REPLY_LINE;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let r = SmtpReply::new(550, "5.7.1", &["Message rejected by policy"]).unwrap();
        assert_eq!(r.to_wire(), "550 5.7.1 Message rejected by policy");
    }

    #[test]
    fn multi_line_and_percent() {
        let r = SmtpReply::new(451, "4.7.1", &["first", "100% sure"]).unwrap();
        assert_eq!(r.to_wire(), "451-4.7.1 first\r\n451 4.7.1 100%% sure");
        assert_eq!(SmtpReply::from_wire(&r.to_wire()).unwrap(), r);
    }

    #[test]
    fn classes_must_match() {
        assert_eq!(
            SmtpReply::new(550, "4.7.1", &["x"]).unwrap_err(),
            ReplyError::ClassMismatch {
                code: 550,
                status: "4.7.1".parse().unwrap()
            }
        );
        assert!(matches!(
            SmtpReply::new(250, "2.0.0", &["x"]),
            Err(ReplyError::BadCode(250))
        ));
        assert!(matches!(
            SmtpReply::new(550, "5.7", &["x"]),
            Err(ReplyError::BadStatus(_))
        ));
        assert!(matches!(
            SmtpReply::new(550, "5.7.1", &[] as &[&str]),
            Err(ReplyError::Empty)
        ));
        let many = vec!["x"; 33];
        assert!(matches!(
            SmtpReply::new(550, "5.7.1", &many),
            Err(ReplyError::TooManyLines(33))
        ));
    }

    #[test]
    fn text_from_a_message_cannot_break_framing() {
        let long = "é".repeat(600);
        let r = SmtpReply::new(554, "5.7.1", &["virus\r\n250 ok\0", &long]).unwrap();
        assert_eq!(r.lines()[0], "virus  250 ok ");
        assert!(r.lines()[1].len() <= MAX_REPLY_LINE);
        assert!(!r.to_wire().contains('\0'));
        assert_eq!(r.to_wire().matches("\r\n").count(), 1);
    }
}

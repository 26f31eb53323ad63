//! What the pipeline decided about one message: edits to apply, then one verdict.
//! The milter session turns it into protocol responses; nothing here knows the wire.

pub mod header;

use bytes::Bytes;

use crate::reply::SmtpReply;
use crate::transaction::HeaderField;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver (with the edits applied).
    Accept,
    /// Refuse permanently with this 5xx reply.
    Reject(SmtpReply),
    /// Refuse for now with this 4xx reply; the client will retry.
    Tempfail(SmtpReply),
    /// Accept and silently drop.
    Discard,
}

impl Verdict {
    /// A short word for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject(_) => "reject",
            Verdict::Tempfail(_) => "tempfail",
            Verdict::Discard => "discard",
        }
    }
}

/// A change to the message. Header values are given without the leading space after
/// the colon; folded values use LF followed by a space or tab (no CR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Append a header after the existing ones.
    AddHeader { name: String, value: String },
    /// Insert a header at a position; 0 is the very top, above the MTA's Received.
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// Replace the value of the `occurrence`-th (1-based) header of this name.
    ChangeHeader {
        name: String,
        occurrence: u32,
        value: String,
    },
    /// Remove the `occurrence`-th (1-based) header of this name.
    DeleteHeader { name: String, occurrence: u32 },
    /// Replace the whole body (CRLF line ends).
    ReplaceBody(Bytes),
    /// Add a recipient, optionally with ESMTP parameters (`NOTIFY=NEVER`).
    AddRecipient {
        address: String,
        params: Option<String>,
    },
    /// Remove a recipient, spelled exactly as in RCPT.
    DeleteRecipient { address: String },
    /// Replace the envelope sender.
    ChangeSender {
        address: String,
        params: Option<String>,
    },
    /// Put the message in the MTA's hold queue with a reason.
    Quarantine { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub edits: Vec<Edit>,
    pub verdict: Verdict,
    /// Why, in a few words, for the decision log line.
    pub reason: String,
}

impl Decision {
    /// The action for logs and metrics: the verdict, or `quarantine` for an accepted
    /// message held in the MTA's queue.
    pub fn action(&self) -> &'static str {
        let held = self
            .edits
            .iter()
            .any(|e| matches!(e, Edit::Quarantine { .. }));
        if held && self.verdict == Verdict::Accept {
            "quarantine"
        } else {
            self.verdict.label()
        }
    }

    pub fn accept(reason: impl Into<String>) -> Self {
        Decision {
            edits: Vec::new(),
            verdict: Verdict::Accept,
            reason: reason.into(),
        }
    }

    /// A 451 4.7.1 tempfail: the safe answer when we could not decide.
    pub fn tempfail(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let reply = SmtpReply::fixed(
            451,
            "4.7.1",
            format!("mailwarden: {reason}, try again later"),
        );
        Decision {
            edits: Vec::new(),
            verdict: Verdict::Tempfail(reply),
            reason,
        }
    }
}

/// The header a held message carries its hold reason in (the MTA's hold queue
/// keeps no reason of its own); one from the sender is removed.
pub const HOLD_HEADER: &str = "X-Mailwarden-Hold";

/// Deletes the `from`-th (1-based) and every later field named `name` (any letter
/// case), last first, so each deletion's occurrence number is still right when the
/// MTA applies it.
pub fn delete_headers(headers: &[HeaderField], name: &str, from: u32) -> Vec<Edit> {
    let count = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .count() as u32;
    (from.max(1)..=count)
        .rev()
        .map(|occurrence| Edit::DeleteHeader {
            name: name.to_owned(),
            occurrence,
        })
        .collect()
}

/// The header fields as the MTA will write them once `edits` are applied, in the
/// MTA's order and counting (insert index over all fields, change and delete by
/// 1-based occurrence of the name). What a signature must cover. `exact` says
/// whether values keep their leading space (the transaction's `headers_exact`).
pub fn edited_headers(headers: &[HeaderField], edits: &[Edit], exact: bool) -> Vec<HeaderField> {
    let mut out = headers.to_vec();
    let ours = |value: &str| {
        let v = if exact {
            format!(" {value}")
        } else {
            value.to_owned()
        };
        Bytes::from(v)
    };
    let nth = |out: &[HeaderField], name: &str, occurrence: u32| {
        out.iter()
            .enumerate()
            .filter(|(_, h)| h.name.eq_ignore_ascii_case(name))
            .nth(occurrence.saturating_sub(1) as usize)
            .map(|(i, _)| i)
    };
    for edit in edits {
        match edit {
            Edit::AddHeader { name, value } => out.push(HeaderField {
                name: name.clone(),
                value: ours(value),
            }),
            Edit::InsertHeader { index, name, value } => {
                let at = (*index as usize).min(out.len());
                out.insert(
                    at,
                    HeaderField {
                        name: name.clone(),
                        value: ours(value),
                    },
                );
            }
            Edit::ChangeHeader {
                name,
                occurrence,
                value,
            } => {
                if let Some(i) = nth(&out, name, *occurrence) {
                    if value.is_empty() {
                        out.remove(i);
                    } else {
                        out[i].value = ours(value);
                    }
                }
            }
            Edit::DeleteHeader { name, occurrence } => {
                if let Some(i) = nth(&out, name, *occurrence) {
                    out.remove(i);
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> HeaderField {
        HeaderField {
            name: name.into(),
            value: Bytes::from(value.to_owned()),
        }
    }

    #[test]
    fn edits_apply_in_the_mta_s_order_and_counting() {
        let headers = vec![
            h("Received", " x"),
            h("X-A", " 1"),
            h("Subject", " s"),
            h("x-a", " 2"),
        ];
        let edits = vec![
            Edit::DeleteHeader {
                name: "X-A".into(),
                occurrence: 2,
            },
            Edit::ChangeHeader {
                name: "subject".into(),
                occurrence: 1,
                value: "[EXT] s".into(),
            },
            Edit::InsertHeader {
                index: 0,
                name: "Top".into(),
                value: "t".into(),
            },
            Edit::AddHeader {
                name: "Bottom".into(),
                value: "b".into(),
            },
            Edit::DeleteHeader {
                name: "Missing".into(),
                occurrence: 1,
            },
        ];
        let out = edited_headers(&headers, &edits, true);
        let shown: Vec<String> = out
            .iter()
            .map(|f| format!("{}:{}", f.name, String::from_utf8_lossy(&f.value)))
            .collect();
        assert_eq!(
            shown,
            vec![
                "Top: t",
                "Received: x",
                "X-A: 1",
                "Subject: [EXT] s",
                "Bottom: b"
            ]
        );
        assert_eq!(edited_headers(&headers, &edits[3..4], false)[4].value, "b");
    }
}

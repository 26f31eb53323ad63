//! What the pipeline decided about one message: edits to apply, then one verdict.
//! The milter session turns it into protocol responses; nothing here knows the wire.

use bytes::Bytes;

use crate::reply::SmtpReply;

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
        let reply = SmtpReply::new(
            451,
            "4.7.1",
            &[format!("mailwarden: {reason}, try again later")],
        )
        .unwrap_or_else(|_| unreachable!("451 4.7.1 is a valid reply"));
        Decision {
            edits: Vec::new(),
            verdict: Verdict::Tempfail(reply),
            reason,
        }
    }
}

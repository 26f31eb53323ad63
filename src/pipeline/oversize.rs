//! What a message too large or too complex to check whole gets, for every check
//! that has an `on_oversize` (DMARC, the virus scan, content rules): the same
//! replies, and the configured word for the decision line and the metric.

use crate::config::OnOversize;
use crate::decision::Verdict;
use crate::reply::SmtpReply;

/// The verdict for `action`, with `text` as the reply: `452 4.3.4` for tempfail,
/// `552 5.3.4` for reject.
pub(super) fn verdict(action: OnOversize, text: &str) -> Verdict {
    match action {
        OnOversize::Accept => Verdict::Accept,
        OnOversize::Tempfail => Verdict::Tempfail(SmtpReply::fixed(452, "4.3.4", text)),
        OnOversize::Reject => Verdict::Reject(SmtpReply::fixed(552, "5.3.4", text)),
    }
}

/// The configured word, for the decision line and the metric label.
pub(super) fn name(action: OnOversize) -> &'static str {
    match action {
        OnOversize::Accept => "accept",
        OnOversize::Tempfail => "tempfail",
        OnOversize::Reject => "reject",
    }
}

//! Stage: DKIM signing of outbound mail, last, so the signatures cover every edit
//! above them (headers as they will leave, a rebuilt body). A message that cannot be
//! signed is tempfailed or sent unsigned, as `signing.on_error` says; either way the
//! log says why.

use std::sync::Arc;
use std::time::Instant;

use tracing::warn;

use super::BuildError;
use super::state::{Flow, State};
use crate::config::{Config, OnSignError, OnUnauthorized, SenderBinding};
use crate::decision::{Decision, Edit, Verdict, edited_headers};
use crate::direction::{Direction, Origin};
use crate::reply::SmtpReply;
use crate::sign::{self, Signed, Signer, senders};
use crate::transaction::{Transaction, header_block};

pub(super) struct Signing {
    pub signer: Arc<Signer>,
    pub on_error: OnSignError,
    pub senders: Vec<SenderBinding>,
    pub on_unauthorized: OnUnauthorized,
}

/// What signing came to.
enum Signature {
    /// The signatures to insert (none when no key is for the From domain), and a note.
    Made(Vec<Edit>, String),
    /// The sender may not use its From address (`[[signing.senders]]`).
    Unauthorized(String),
    /// The message cannot be signed.
    Failed(String),
}

impl Signing {
    pub fn from_config(config: &Config) -> Result<Self, BuildError> {
        Ok(Signing {
            signer: Arc::new(Signer::from_config(&config.signing).map_err(BuildError::Signing)?),
            on_error: config.signing.on_error,
            senders: config.signing.senders.clone(),
            on_unauthorized: config.signing.on_unauthorized,
        })
    }

    pub fn run(&self, s: &mut State<'_>) -> Flow {
        if !matches!(s.direction, Direction::Outbound(_)) || !s.accepted() || self.signer.is_empty()
        {
            return Flow::Continue(());
        }
        let started = Instant::now();
        let Direction::Outbound(origin) = &s.direction else {
            return Flow::Continue(());
        };
        let signed = self.sign(s.tx, &s.edits, origin);
        s.timings.signing = Some(started.elapsed());
        match signed {
            Signature::Made(signatures, note) => {
                s.edits.extend(signatures);
                s.note(note);
            }
            Signature::Unauthorized(why) => {
                warn!(
                    queue_id = s.tx.queue_id().as_deref().unwrap_or("-"),
                    "not signed: {why}"
                );
                if self.on_unauthorized == OnUnauthorized::Reject {
                    s.note(format_args!("refused: {why}"));
                    s.verdict = Verdict::Reject(SmtpReply::fixed(
                        550,
                        "5.7.1",
                        format!("mailwarden: {why}"),
                    ));
                } else {
                    s.note(format_args!("not signed: {why}"));
                }
            }
            Signature::Failed(why) if self.on_error == OnSignError::Tempfail => {
                crate::observe::metrics::metrics().signing_failures.inc();
                return Flow::Break(Decision::tempfail(format!("cannot sign: {why}")));
            }
            Signature::Failed(why) => {
                crate::observe::metrics::metrics().signing_failures.inc();
                warn!(
                    queue_id = s.tx.queue_id().as_deref().unwrap_or("-"),
                    "not signed: {why}"
                );
                s.note(format_args!("not signed: {why}"));
            }
        }
        Flow::Continue(())
    }

    /// The `DKIM-Signature` insertions for an outbound message from `origin`.
    fn sign(&self, tx: &Transaction, edits: &[Edit], origin: &Origin) -> Signature {
        if tx.body_truncated() {
            return Signature::Failed("body longer than server.max_message_size".into());
        }
        let headers = edited_headers(&tx.headers, edits, tx.headers_exact);
        let mut message = header_block(&headers, tx.headers_exact);
        // From is read from the header block alone: parsing the whole message would
        // also hash the body for every DKIM-Signature already present.
        let from = mail_auth::AuthenticatedMessage::parse(&message)
            .map(|m| m.from)
            .unwrap_or_default();
        if let Err(why) = senders::authorize(&self.senders, origin, &from) {
            return Signature::Unauthorized(why);
        }
        // A body the rules rebuilt is what leaves, so it is what is signed.
        let body = edits
            .iter()
            .rev()
            .find_map(|e| match e {
                Edit::ReplaceBody(b) => Some(b),
                _ => None,
            })
            .unwrap_or(&tx.body);
        message.reserve_exact(body.len());
        message.extend_from_slice(body);
        warn_fragile_body(tx);
        match self.signer.sign(&message, &from) {
            Signed::Headers(values, labels) => Signature::Made(
                values
                    .into_iter()
                    .map(|value| Edit::InsertHeader {
                        index: 0,
                        name: sign::HEADER.to_owned(),
                        value,
                    })
                    .collect(),
                format!("signed by {}", labels.join(", ")),
            ),
            Signed::NoKey(domain) => {
                Signature::Made(Vec::new(), format!("no signing key for {domain}"))
            }
            Signed::Unsignable(why) => Signature::Failed(why),
        }
    }
}

/// Lesson 1 from our peers: a body that Postfix may still rewrite after we signed
/// (8-bit data converted to quoted-printable for a 7-bit destination, lines folded
/// at 998 bytes) arrives with a broken signature. Say so while there is time.
fn warn_fragile_body(tx: &Transaction) {
    let eight_bit = !tx.body.is_ascii();
    let longest = longest_line(&tx.body);
    if eight_bit || longest > 990 {
        warn!(
            queue_id = tx.queue_id().as_deref().unwrap_or("-"),
            eight_bit,
            longest_line = longest,
            "signed body may be rewritten after signing (8-bit data or a line near 998 bytes); set disable_mime_output_conversion = yes in Postfix"
        );
    }
}

/// The length of the longest line, CR included, LF not.
fn longest_line(body: &[u8]) -> usize {
    let mut longest = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain([body.len()]) {
        longest = longest.max(end - start);
        start = end + 1;
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::longest_line;

    #[test]
    fn longest_line_counts_the_last_line_and_cr() {
        assert_eq!(longest_line(b""), 0);
        assert_eq!(longest_line(b"ab\r\nabcd\r\n"), 5);
        assert_eq!(longest_line(b"ab\r\nabcdefg"), 7);
        assert_eq!(longest_line(b"\n\n"), 0);
    }
}

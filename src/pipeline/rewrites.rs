//! Stage: the rewrites of an accepted message. The rules' header changes (against
//! the headers as received), their `strip_attachments` body rebuild, the quarantine
//! held by DMARC, antivirus or a rule, and our trace header. Nothing here runs for a
//! message that is refused.

use tracing::warn;

use super::state::State;
use crate::config::Action;
use crate::decision::Edit;
use crate::policy::{self, Evaluation};
use crate::transaction::Transaction;

pub const TRACE_HEADER: &str = "X-Mailwarden";

pub(super) struct Rewrites {
    pub trace_header: bool,
}

impl Rewrites {
    pub fn run(&self, s: &mut State<'_>) {
        if !s.accepted() {
            return;
        }
        // A hold reason only we may write: a sender's copy goes.
        let forged =
            crate::decision::delete_headers(&s.tx.headers, crate::decision::HOLD_HEADER, 1);
        s.edits.extend(forged);
        if let Some(evaluation) = &s.policy {
            let mut edits = policy::edits_for(&evaluation.changes, &s.tx.headers);
            let stripped = strip_attachments(s.tx, evaluation, || s.message());
            let note = stripped.map(|(edit, note)| {
                edits.extend(edit);
                note
            });
            s.edits.append(&mut edits);
            if let Some(note) = note {
                s.note(note);
            }
        }
        let held = std::mem::take(&mut s.held);
        s.edits.extend(held.into_iter().map(|(_, edit)| edit));
        if self.trace_header {
            let queue_id = s.tx.queue_id().unwrap_or_else(|| "unknown".to_owned());
            s.edits.push(Edit::AddHeader {
                name: TRACE_HEADER.to_owned(),
                value: format!("{} {}", env!("CARGO_PKG_VERSION"), sanitize(&queue_id)),
            });
        }
    }
}

/// The rebuilt body for the rules' `strip_attachments` actions, and a note; `None`
/// when no such action applies.
fn strip_attachments<'m>(
    tx: &Transaction,
    evaluation: &Evaluation,
    message: impl FnOnce() -> &'m [u8],
) -> Option<(Option<Edit>, String)> {
    let specs: Vec<(&crate::config::StripSpec, &str)> = evaluation
        .changes
        .iter()
        .filter_map(|(a, rule)| match a {
            Action::StripAttachments(spec) => Some((spec, rule.as_str())),
            _ => None,
        })
        .collect();
    if specs.is_empty() {
        return None;
    }
    if tx.body_truncated() {
        warn!(
            queue_id = tx.queue_id().as_deref().unwrap_or("-"),
            "attachments not stripped: the body is longer than server.max_message_size"
        );
        return Some((
            None,
            "attachments not stripped: body longer than server.max_message_size".into(),
        ));
    }
    let raw = message();
    let header_len = raw.len() - tx.body.len();
    let message = crate::content::parse(raw)?;
    let rules: Vec<&str> = specs.iter().map(|(_, r)| *r).collect();
    let stripped = crate::content::strip::strip(
        &message,
        raw,
        header_len,
        |c| {
            let types: Vec<&str> = [Some(c.declared.as_str()), c.detected]
                .into_iter()
                .flatten()
                .collect();
            specs
                .iter()
                .any(|(spec, _)| spec.selects(c.name, &c.ext, &types))
        },
        |name| {
            format!(
                "mailwarden removed the attachment \"{name}\" from this message (policy rule {}).",
                rules.join(", ")
            )
        },
    );
    let stripped = match stripped {
        Ok(s) => s?,
        Err(name) => {
            warn!(
                queue_id = tx.queue_id().as_deref().unwrap_or("-"),
                "attachment {name:?} not stripped: the message is that attachment, not multipart"
            );
            return Some((
                None,
                format!("attachment {name} not stripped: the message is not multipart"),
            ));
        }
    };
    Some((
        Some(Edit::ReplaceBody(bytes::Bytes::from(stripped.body))),
        format!("stripped attachments: {}", stripped.removed.join(", ")),
    ))
}

/// The queue id comes from the MTA; keep only what a queue id can contain.
fn sanitize(queue_id: &str) -> String {
    queue_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect()
}

//! Turns a [`Decision`] into the responses that end a message: modifications first,
//! then one final reply. It refuses, rather than sends, anything the MTA would treat
//! as a protocol violation: an action that was not negotiated, or a header that
//! would break the message's framing.

use thiserror::Error;

use crate::decision::{Decision, Edit, HOLD_HEADER, Verdict};
use crate::milter::flags::Actions;
use crate::milter::negotiate::Negotiated;
use crate::milter::response::Response;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the MTA did not grant the action needed to {0}")]
    NotNegotiated(&'static str),
    #[error("header name {0:?} is not a valid field name")]
    BadHeaderName(String),
    #[error("value of header {0} contains NUL, CR, or a line break not followed by whitespace")]
    BadHeaderValue(String),
}

/// The responses for a decision, in the order they must be sent.
pub fn responses(decision: &Decision, negotiated: &Negotiated) -> Result<Vec<Response>, EditError> {
    let mut out = Vec::with_capacity(decision.edits.len() + 1);
    for edit in &decision.edits {
        let (needed, what) = required_action(edit);
        if !negotiated.actions.contains(needed) {
            return Err(EditError::NotNegotiated(what));
        }
        match edit {
            Edit::AddHeader { name, value } => out.push(Response::AddHeader {
                name: check_name(name)?,
                value: header_value(name, value, negotiated)?,
            }),
            Edit::InsertHeader { index, name, value } => out.push(Response::InsertHeader {
                index: *index,
                name: check_name(name)?,
                value: header_value(name, value, negotiated)?,
            }),
            Edit::ChangeHeader {
                name,
                occurrence,
                value,
            } => out.push(Response::ChangeHeader {
                index: *occurrence,
                name: check_name(name)?,
                value: header_value(name, value, negotiated)?,
            }),
            Edit::DeleteHeader { name, occurrence } => out.push(Response::ChangeHeader {
                index: *occurrence,
                name: check_name(name)?,
                value: String::new(),
            }),
            Edit::ReplaceBody(body) => out.extend(Response::replace_body(body)),
            Edit::AddRecipient {
                address,
                params: None,
            } => out.push(Response::AddRcpt {
                recipient: address.clone(),
            }),
            Edit::AddRecipient {
                address,
                params: Some(params),
            } => out.push(Response::AddRcptWithParams {
                recipient: address.clone(),
                params: params.clone(),
            }),
            Edit::DeleteRecipient { address } => out.push(Response::DeleteRcpt {
                recipient: address.clone(),
            }),
            Edit::ChangeSender { address, params } => out.push(Response::ChangeFrom {
                sender: address.clone(),
                params: params.clone(),
            }),
            Edit::Quarantine { reason } => {
                // Postfix needs a non-empty reason, and logs only "milter
                // triggers HOLD action": the reason goes in a header too, where
                // `postcat -q ID` shows it to whoever reviews the hold queue.
                let reason = if reason.trim().is_empty() {
                    "held by mailwarden".to_owned()
                } else {
                    reason.replace(['\r', '\n', '\0'], " ")
                };
                if negotiated.actions.contains(Actions::ADD_HEADERS) {
                    out.push(Response::AddHeader {
                        name: HOLD_HEADER.to_owned(),
                        value: header_value(HOLD_HEADER, &reason, negotiated)?,
                    });
                }
                out.push(Response::Quarantine { reason });
            }
        }
    }
    out.push(match &decision.verdict {
        // At end-of-message "continue" means accept, and keeps the modifications.
        Verdict::Accept => Response::Continue,
        Verdict::Reject(reply) | Verdict::Tempfail(reply) => Response::ReplyCode(reply.clone()),
        Verdict::Discard => Response::Discard,
    });
    Ok(out)
}

fn required_action(edit: &Edit) -> (Actions, &'static str) {
    match edit {
        Edit::AddHeader { .. } | Edit::InsertHeader { .. } => {
            (Actions::ADD_HEADERS, "add a header")
        }
        Edit::ChangeHeader { .. } | Edit::DeleteHeader { .. } => {
            (Actions::CHANGE_HEADERS, "change a header")
        }
        Edit::ReplaceBody(_) => (Actions::CHANGE_BODY, "replace the body"),
        Edit::AddRecipient { params: None, .. } => (Actions::ADD_RCPT, "add a recipient"),
        Edit::AddRecipient {
            params: Some(_), ..
        } => (Actions::ADD_RCPT_PARAMS, "add a recipient with parameters"),
        Edit::DeleteRecipient { .. } => (Actions::DELETE_RCPT, "delete a recipient"),
        Edit::ChangeSender { .. } => (Actions::CHANGE_FROM, "change the sender"),
        Edit::Quarantine { .. } => (Actions::QUARANTINE, "quarantine"),
    }
}

fn check_name(name: &str) -> Result<String, EditError> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(EditError::BadHeaderName(name.to_owned()))
    }
}

/// With `HDR_LEADSPC` the MTA writes our value verbatim, so we supply the space after
/// the colon; without it the MTA adds one itself.
fn header_value(name: &str, value: &str, negotiated: &Negotiated) -> Result<String, EditError> {
    let bytes = value.as_bytes();
    let bad_break = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && !matches!(bytes.get(i + 1), Some(b' ' | b'\t')));
    if bad_break || value.contains(['\r', '\0']) {
        return Err(EditError::BadHeaderValue(name.to_owned()));
    }
    Ok(if negotiated.headers_exact() {
        format!(" {value}")
    } else {
        value.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::milter::flags::Protocol;
    use crate::reply::SmtpReply;

    fn negotiated(actions: u32) -> Negotiated {
        Negotiated {
            version: 6,
            actions: Actions(actions),
            protocol: Protocol::HEADER_LEADING_SPACE,
            missing: Actions::empty(),
        }
    }

    fn decision(edits: Vec<Edit>, verdict: Verdict) -> Decision {
        Decision {
            edits,
            verdict,
            reason: String::new(),
        }
    }

    #[test]
    fn every_edit_maps_to_its_response() {
        let edits = vec![
            Edit::InsertHeader {
                index: 0,
                name: "Authentication-Results".into(),
                value: "mx; none".into(),
            },
            Edit::AddHeader {
                name: "X-A".into(),
                value: "1\n\tfolded".into(),
            },
            Edit::ChangeHeader {
                name: "Subject".into(),
                occurrence: 1,
                value: "[EXT] hi".into(),
            },
            Edit::DeleteHeader {
                name: "Authentication-Results".into(),
                occurrence: 2,
            },
            Edit::ReplaceBody(Bytes::from_static(b"new\r\n")),
            Edit::AddRecipient {
                address: "<sec@example.com>".into(),
                params: None,
            },
            Edit::AddRecipient {
                address: "<sec@example.com>".into(),
                params: Some("NOTIFY=NEVER".into()),
            },
            Edit::DeleteRecipient {
                address: "<b@example.com>".into(),
            },
            Edit::ChangeSender {
                address: "<bounce@example.com>".into(),
                params: None,
            },
            Edit::Quarantine { reason: "".into() },
        ];
        let out = responses(&decision(edits, Verdict::Accept), &negotiated(0x1ff)).unwrap();
        let codes: String = out.iter().map(|r| r.code() as char).collect();
        // The hold reason goes in a header (h) before the quarantine (q).
        assert_eq!(codes, "ihmmb+2-ehqc");
        assert_eq!(
            out[9],
            Response::AddHeader {
                name: "X-Mailwarden-Hold".into(),
                value: " held by mailwarden".into()
            }
        );
        assert_eq!(
            out[0],
            Response::InsertHeader {
                index: 0,
                name: "Authentication-Results".into(),
                value: " mx; none".into()
            }
        );
        assert_eq!(
            out[10],
            Response::Quarantine {
                reason: "held by mailwarden".into()
            }
        );
    }

    #[test]
    fn verdicts() {
        let reply = SmtpReply::new(550, "5.7.1", &["no"]).unwrap();
        let n = negotiated(0x1);
        let r = responses(&decision(vec![], Verdict::Reject(reply.clone())), &n).unwrap();
        assert_eq!(r, vec![Response::ReplyCode(reply)]);
        let r = responses(&decision(vec![], Verdict::Discard), &n).unwrap();
        assert_eq!(r, vec![Response::Discard]);
    }

    #[test]
    fn refuses_what_was_not_negotiated_or_would_break_headers() {
        let quarantine = decision(
            vec![Edit::Quarantine {
                reason: "virus".into(),
            }],
            Verdict::Accept,
        );
        assert_eq!(
            responses(&quarantine, &negotiated(0x1)),
            Err(EditError::NotNegotiated("quarantine"))
        );
        for (name, value) in [
            ("X-A", "a\r\nBcc: x"),
            ("X-A", "a\nBcc: x"),
            ("X-A", "a\0"),
            ("Bad Name", "v"),
            ("", "v"),
        ] {
            let d = decision(
                vec![Edit::AddHeader {
                    name: name.into(),
                    value: value.into(),
                }],
                Verdict::Accept,
            );
            assert!(
                responses(&d, &negotiated(0x1)).is_err(),
                "{name:?} {value:?}"
            );
        }
    }
}

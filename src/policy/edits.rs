//! The header and recipient edits that the rules' non-final actions make, against
//! the headers as received. Values we write go through the one header writer.

use crate::config::Action;
use crate::decision::header::fold;
use crate::decision::{Edit, delete_headers};
use crate::transaction::HeaderField;

/// The header edits for the non-final actions, against the headers as received.
/// `prefix_subject` is not doubled; `set_header` replaces the first field of that
/// name and removes the others (or adds one).
pub fn edits_for(changes: &[(Action, String)], headers: &[HeaderField]) -> Vec<Edit> {
    let mut edits = Vec::new();
    for (action, _) in changes {
        match action {
            Action::AddHeader(name, value) => edits.push(Edit::AddHeader {
                name: name.clone(),
                value: fold(name, value),
            }),
            Action::SetHeader(name, value) => {
                let exists = headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));
                edits.extend(delete_headers(headers, name, 2));
                edits.push(if exists {
                    Edit::ChangeHeader {
                        name: name.clone(),
                        occurrence: 1,
                        value: fold(name, value),
                    }
                } else {
                    Edit::AddHeader {
                        name: name.clone(),
                        value: fold(name, value),
                    }
                });
            }
            Action::RemoveHeader(name) => edits.extend(delete_headers(headers, name, 1)),
            Action::PrefixSubject(prefix) => {
                let subject = headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("Subject"));
                match subject {
                    None => edits.push(Edit::AddHeader {
                        name: "Subject".into(),
                        value: prefix.clone(),
                    }),
                    Some(h) => {
                        let current = keep_folding_only(&String::from_utf8_lossy(&h.value));
                        let current = current.trim_start();
                        if !current.starts_with(prefix.as_str()) {
                            edits.push(Edit::ChangeHeader {
                                name: "Subject".into(),
                                occurrence: 1,
                                value: format!("{prefix} {current}"),
                            });
                        }
                    }
                }
            }
            Action::AddRecipient(address) => edits.push(Edit::AddRecipient {
                address: format!("<{address}>"),
                params: None,
            }),
            // The body is rebuilt by the pipeline, which has the raw message.
            Action::Log(_) | Action::StripAttachments(_) => {}
            Action::Accept
            | Action::Reject(_)
            | Action::Tempfail(_)
            | Action::Discard
            | Action::Quarantine(_) => {}
        }
    }
    edits
}

/// A value from the message, with any line break that is not folding (LF followed
/// by a space or tab) turned into a space and every CR dropped: nothing from the
/// message can start a new header line in one we write.
fn keep_folding_only(value: &str) -> String {
    let chars: Vec<char> = value.chars().filter(|c| *c != '\r').collect();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| match c {
            '\n' if !matches!(chars.get(i + 1), Some(' ' | '\t')) => ' ',
            other => *other,
        })
        .collect()
}

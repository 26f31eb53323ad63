//! Responses the milter sends (`SMFIR_*`): decisions, progress, option negotiation
//! and the end-of-message modifications. Decoding exists for the MTA-side client.

use bytes::{Bytes, BytesMut};

use super::codec::{Fields, MAX_CHUNK, Packet, encode_packet, put_cstr};
use super::error::ProtocolError;
use super::flags::Stage;
use crate::reply::SmtpReply;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `O`: version, actions and protocol bits we want, and macro lists per stage.
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
        macros: Vec<(Stage, String)>,
    },
    /// `c`: go on (at end-of-message: accept).
    Continue,
    /// `a`: accept; stop filtering this message (or connection, at CONNECT/HELO).
    Accept,
    /// `r`: reject with the MTA's default 5xx text.
    Reject,
    /// `t`: temporary failure with the MTA's default 4xx text.
    Tempfail,
    /// `d`: accept and silently drop.
    Discard,
    /// `y`: reject or tempfail with our own code and text.
    ReplyCode(SmtpReply),
    /// `4`: 421 and disconnect.
    Shutdown,
    /// `s`: send no more of this step's events (body chunks).
    Skip,
    /// `p`: still working; restarts the MTA's timer.
    Progress,
    /// `h`: append a header.
    AddHeader { name: String, value: String },
    /// `i`: insert a header at a position (0 = top).
    InsertHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// `m`: change the index-th (1-based) header of that name; empty value deletes.
    ChangeHeader {
        index: u32,
        name: String,
        value: String,
    },
    /// `+`: add a recipient.
    AddRcpt { recipient: String },
    /// `2`: add a recipient with ESMTP arguments.
    AddRcptWithParams { recipient: String, params: String },
    /// `-`: remove a recipient, spelled as in RCPT.
    DeleteRcpt { recipient: String },
    /// `e`: replace the envelope sender, optionally with ESMTP arguments.
    ChangeFrom {
        sender: String,
        params: Option<String>,
    },
    /// `b`: one piece of a replacement body. Use [`Response::replace_body`] to split
    /// a whole body into pieces that respect the protocol's size limit.
    ReplaceBody(Bytes),
    /// `q`: put the message on hold with a reason.
    Quarantine { reason: String },
}

impl Response {
    /// Splits a new body into `SMFIR_REPLBODY` packets of at most 65,535 bytes.
    pub fn replace_body(body: &Bytes) -> Vec<Response> {
        if body.is_empty() {
            return vec![Response::ReplaceBody(Bytes::new())];
        }
        (0..body.len())
            .step_by(MAX_CHUNK)
            .map(|start| {
                Response::ReplaceBody(body.slice(start..(start + MAX_CHUNK).min(body.len())))
            })
            .collect()
    }

    pub fn code(&self) -> u8 {
        match self {
            Response::OptNeg { .. } => b'O',
            Response::Continue => b'c',
            Response::Accept => b'a',
            Response::Reject => b'r',
            Response::Tempfail => b't',
            Response::Discard => b'd',
            Response::ReplyCode(_) => b'y',
            Response::Shutdown => b'4',
            Response::Skip => b's',
            Response::Progress => b'p',
            Response::AddHeader { .. } => b'h',
            Response::InsertHeader { .. } => b'i',
            Response::ChangeHeader { .. } => b'm',
            Response::AddRcpt { .. } => b'+',
            Response::AddRcptWithParams { .. } => b'2',
            Response::DeleteRcpt { .. } => b'-',
            Response::ChangeFrom { .. } => b'e',
            Response::ReplaceBody(_) => b'b',
            Response::Quarantine { .. } => b'q',
        }
    }

    /// True for the replies that end a step (as opposed to modifications and progress).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Response::Continue
                | Response::Accept
                | Response::Reject
                | Response::Tempfail
                | Response::Discard
                | Response::ReplyCode(_)
                | Response::Shutdown
                | Response::Skip
        )
    }

    pub fn encode(&self, out: &mut BytesMut) {
        let mut p = Vec::new();
        match self {
            Response::OptNeg {
                version,
                actions,
                protocol,
                macros,
            } => {
                p.extend_from_slice(&version.to_be_bytes());
                p.extend_from_slice(&actions.to_be_bytes());
                p.extend_from_slice(&protocol.to_be_bytes());
                for (stage, names) in macros {
                    if let Some(index) = stage.symlist_index() {
                        p.extend_from_slice(&index.to_be_bytes());
                        put_cstr(&mut p, names.as_bytes());
                    }
                }
            }
            Response::ReplyCode(reply) => put_cstr(&mut p, reply.to_wire().as_bytes()),
            Response::AddHeader { name, value } => {
                put_cstr(&mut p, name.as_bytes());
                put_cstr(&mut p, value.as_bytes());
            }
            Response::InsertHeader { index, name, value }
            | Response::ChangeHeader { index, name, value } => {
                p.extend_from_slice(&index.to_be_bytes());
                put_cstr(&mut p, name.as_bytes());
                put_cstr(&mut p, value.as_bytes());
            }
            Response::AddRcpt { recipient } | Response::DeleteRcpt { recipient } => {
                put_cstr(&mut p, recipient.as_bytes());
            }
            Response::AddRcptWithParams { recipient, params } => {
                put_cstr(&mut p, recipient.as_bytes());
                put_cstr(&mut p, params.as_bytes());
            }
            Response::ChangeFrom { sender, params } => {
                put_cstr(&mut p, sender.as_bytes());
                if let Some(params) = params {
                    put_cstr(&mut p, params.as_bytes());
                }
            }
            Response::ReplaceBody(chunk) => p.extend_from_slice(chunk),
            Response::Quarantine { reason } => put_cstr(&mut p, reason.as_bytes()),
            Response::Continue
            | Response::Accept
            | Response::Reject
            | Response::Tempfail
            | Response::Discard
            | Response::Shutdown
            | Response::Skip
            | Response::Progress => {}
        }
        encode_packet(out, self.code(), &p);
    }

    pub fn decode(packet: Packet) -> Result<Response, ProtocolError> {
        let Packet { code, payload } = packet;
        let simple = |r: Response| {
            if payload.is_empty() {
                Ok(r)
            } else {
                Err(ProtocolError::Malformed {
                    command: "reply",
                    reason: format!(
                        "reply {:?} carries {} unexpected bytes",
                        code as char,
                        payload.len()
                    ),
                })
            }
        };
        let response = match code {
            b'O' => {
                let mut f = Fields::new("OPTNEG reply", &payload);
                let version = f.u32("version")?;
                let actions = f.u32("actions")?;
                let protocol = f.u32("protocol")?;
                let mut macros = Vec::new();
                while !f.is_empty() {
                    let index = f.u32("macro stage")?;
                    let names = f.text("macro list")?;
                    if let Some(stage) = Stage::from_symlist_index(index) {
                        macros.push((stage, names));
                    }
                }
                Response::OptNeg {
                    version,
                    actions,
                    protocol,
                    macros,
                }
            }
            b'c' => simple(Response::Continue)?,
            b'a' => simple(Response::Accept)?,
            b'r' => simple(Response::Reject)?,
            b't' => simple(Response::Tempfail)?,
            b'd' => simple(Response::Discard)?,
            b'4' => simple(Response::Shutdown)?,
            b's' => simple(Response::Skip)?,
            b'p' => simple(Response::Progress)?,
            b'y' => {
                let mut f = Fields::new("REPLYCODE", &payload);
                let text = f.text("reply text")?;
                let reply = SmtpReply::from_wire(&text).map_err(|e| ProtocolError::Malformed {
                    command: "REPLYCODE",
                    reason: e.to_string(),
                })?;
                Response::ReplyCode(reply)
            }
            b'h' => {
                let mut f = Fields::new("ADDHEADER", &payload);
                Response::AddHeader {
                    name: f.text("name")?,
                    value: f.text("value")?,
                }
            }
            b'i' | b'm' => {
                let mut f = Fields::new("header change", &payload);
                let index = f.u32("index")?;
                let name = f.text("name")?;
                let value = f.text("value")?;
                if code == b'i' {
                    Response::InsertHeader { index, name, value }
                } else {
                    Response::ChangeHeader { index, name, value }
                }
            }
            b'+' => Response::AddRcpt {
                recipient: Fields::new("ADDRCPT", &payload).text("recipient")?,
            },
            b'-' => Response::DeleteRcpt {
                recipient: Fields::new("DELRCPT", &payload).text("recipient")?,
            },
            b'2' => {
                let mut f = Fields::new("ADDRCPT_PAR", &payload);
                Response::AddRcptWithParams {
                    recipient: f.text("recipient")?,
                    params: f.text("parameters")?,
                }
            }
            b'e' => {
                let mut f = Fields::new("CHGFROM", &payload);
                let sender = f.text("sender")?;
                let params = if f.is_empty() {
                    None
                } else {
                    Some(f.text("parameters")?)
                };
                Response::ChangeFrom { sender, params }
            }
            b'b' => Response::ReplaceBody(payload),
            b'q' => Response::Quarantine {
                reason: Fields::new("QUARANTINE", &payload).text("reason")?,
            },
            other => {
                return Err(ProtocolError::UnknownCommand {
                    byte: other,
                    printable: if other.is_ascii_graphic() {
                        other as char
                    } else {
                        '?'
                    },
                });
            }
        };
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::codec::{DEFAULT_MAX_PACKET, decode_packet};

    fn round_trip(response: Response) {
        let mut buf = BytesMut::new();
        response.encode(&mut buf);
        let packet = decode_packet(&mut buf, DEFAULT_MAX_PACKET)
            .unwrap()
            .unwrap();
        assert!(buf.is_empty());
        assert_eq!(Response::decode(packet).unwrap(), response);
    }

    #[test]
    fn every_response_round_trips() {
        let responses = vec![
            Response::OptNeg {
                version: 6,
                actions: 0x31,
                protocol: 0x100580,
                macros: vec![(Stage::Connect, "j _".into()), (Stage::Eoh, "i".into())],
            },
            Response::Continue,
            Response::Accept,
            Response::Reject,
            Response::Tempfail,
            Response::Discard,
            Response::ReplyCode(SmtpReply::new(550, "5.7.1", &["no", "really not"]).unwrap()),
            Response::Shutdown,
            Response::Skip,
            Response::Progress,
            Response::AddHeader {
                name: "X-Test".into(),
                value: " yes".into(),
            },
            Response::InsertHeader {
                index: 0,
                name: "Authentication-Results".into(),
                value: " mx; spf=pass".into(),
            },
            Response::ChangeHeader {
                index: 2,
                name: "Authentication-Results".into(),
                value: String::new(),
            },
            Response::AddRcpt {
                recipient: "<security@example.com>".into(),
            },
            Response::AddRcptWithParams {
                recipient: "<security@example.com>".into(),
                params: "NOTIFY=NEVER".into(),
            },
            Response::DeleteRcpt {
                recipient: "<bob@example.com>".into(),
            },
            Response::ChangeFrom {
                sender: "<bounce@example.com>".into(),
                params: None,
            },
            Response::ChangeFrom {
                sender: "<bounce@example.com>".into(),
                params: Some("RET=HDRS".into()),
            },
            Response::ReplaceBody(Bytes::from_static(b"new body\r\n")),
            Response::Quarantine {
                reason: "virus found".into(),
            },
        ];
        for response in responses {
            round_trip(response);
        }
    }

    #[test]
    fn optneg_reply_matches_the_reference_bytes() {
        // Row 2 of the reference session in MILTER-PROTOCOL.md §15.
        let mut buf = BytesMut::new();
        Response::OptNeg {
            version: 6,
            actions: 0x31,
            protocol: 0x100580,
            macros: vec![],
        }
        .encode(&mut buf);
        assert_eq!(
            &buf[..],
            &[
                0, 0, 0, 0x0d, b'O', 0, 0, 0, 6, 0, 0, 0, 0x31, 0, 0x10, 0x05, 0x80
            ]
        );
    }

    #[test]
    fn body_replacement_is_split_at_the_protocol_limit() {
        let body = Bytes::from(vec![b'a'; MAX_CHUNK * 2 + 10]);
        let parts = Response::replace_body(&body);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| match p {
                Response::ReplaceBody(b) => b.len(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(sizes, vec![MAX_CHUNK, MAX_CHUNK, 10]);
    }

    #[test]
    fn simple_replies_with_data_are_refused() {
        let packet = Packet {
            code: b'c',
            payload: Bytes::from_static(b"x"),
        };
        assert!(Response::decode(packet).is_err());
    }
}

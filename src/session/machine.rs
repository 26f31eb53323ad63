//! The per-connection state machine, without I/O: it takes one decoded command at a
//! time and says what to answer. Keeping it synchronous lets every ordering rule be
//! tested directly; the async driver in `connection.rs` does the reading, writing,
//! time-outs and the filter call.

use bytes::{Bytes, BytesMut};

use super::macros::MacroStore;
use crate::milter::command::{ClientAddress, Command};
use crate::milter::error::ProtocolError;
use crate::milter::flags::{Actions, Protocol, Stage};
use crate::milter::negotiate::{Negotiated, negotiate};
use crate::milter::response::Response;
use crate::milter::{BodyNeed, Needs, SessionSettings};
use crate::transaction::{Client, EnvelopeAddress, HeaderField, Transaction};

/// What the driver must do after one command.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send this reply.
    Reply(Response),
    /// Send nothing (macros, abort, no-reply steps).
    Silent,
    /// The message is complete: run the filter and answer with its decision.
    EndOfMessage(Box<Transaction>),
    /// The MTA said goodbye; close the connection.
    Close,
}

/// Where the conversation is. Message phases only move forward; each step may be
/// skipped because the MTA's protocol version or our negotiation left it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    Greeting,
    AwaitConnect,
    Connected,
    Mail,
    Rcpt,
    Data,
    Headers,
    Eoh,
    Body,
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            State::Greeting => "before option negotiation",
            State::AwaitConnect => "before CONNECT",
            State::Connected => "outside a message",
            State::Mail => "right after MAIL",
            State::Rcpt => "after RCPT",
            State::Data => "after DATA",
            State::Headers => "after the headers",
            State::Eoh => "after end-of-headers",
            State::Body => "after body data",
        }
    }
}

/// The message being collected.
#[derive(Debug, Default)]
struct MessageParts {
    sender: EnvelopeAddress,
    recipients: Vec<EnvelopeAddress>,
    headers: Vec<HeaderField>,
    body: Vec<Bytes>,
    kept: usize,
    size: u64,
    header_bytes: usize,
    headers_dropped: u64,
    skipped: bool,
}

pub(crate) struct Session {
    id: u64,
    needs: Needs,
    max_body: usize,
    max_headers: usize,
    max_header_bytes: usize,
    state: State,
    negotiated: Option<Negotiated>,
    macros: MacroStore,
    client: Client,
    message: MessageParts,
}

impl Session {
    pub(crate) fn new(id: u64, needs: Needs, limits: &SessionSettings) -> Self {
        Session {
            id,
            needs,
            max_body: limits.max_body,
            max_headers: limits.max_headers,
            max_header_bytes: limits.max_header_bytes,
            state: State::Greeting,
            negotiated: None,
            macros: MacroStore::default(),
            client: Client::default(),
            message: MessageParts::default(),
        }
    }

    pub(crate) fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True between messages: the point where a draining daemon may hang up.
    pub(crate) fn is_idle(&self) -> bool {
        self.state <= State::Connected
    }

    pub(crate) fn in_message(&self) -> bool {
        self.state >= State::Mail
    }

    /// The body limit a filter that wants only a prefix sets for itself.
    fn body_limit(&self) -> usize {
        match self.needs.body {
            BodyNeed::Prefix(n) => n.min(self.max_body),
            _ => self.max_body,
        }
    }

    pub(crate) fn on_command(&mut self, command: Command) -> Result<Step, ProtocolError> {
        match command {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => {
                self.require(State::Greeting..=State::Greeting, "OPTNEG")?;
                let (negotiated, reply) = negotiate(version, actions, protocol, &self.needs)?;
                if negotiated.missing != Actions::empty() {
                    tracing::warn!(
                        missing = format_args!("{:#x}", negotiated.missing.0),
                        offered = format_args!("{actions:#x}"),
                        "the MTA does not allow some modifications; a message that needs them will be tempfailed"
                    );
                }
                self.negotiated = Some(negotiated);
                self.state = State::AwaitConnect;
                Ok(Step::Reply(reply))
            }
            Command::Macro { letter, pairs } => {
                self.require(State::AwaitConnect..=State::Body, "MACRO")?;
                // Unknown stage letters are ignored, as libmilter does.
                if let Some(stage) = Stage::from_command_letter(letter) {
                    self.macros.set(stage, pairs);
                }
                Ok(Step::Silent)
            }
            Command::Connect { hostname, address } => {
                self.require(State::AwaitConnect..=State::AwaitConnect, "CONNECT")?;
                self.macros.clear_after(Stage::Connect);
                let (ip, port) = match address {
                    ClientAddress::Inet { ip, port } => (Some(ip), Some(port)),
                    ClientAddress::Unix { .. } | ClientAddress::Unknown => (None, None),
                };
                self.client = Client {
                    hostname,
                    ip,
                    port,
                    helo: None,
                };
                self.state = State::Connected;
                Ok(self.continue_unless(Protocol::NR_CONNECT))
            }
            Command::Helo { name } => {
                // A HELO inside a message resets it, as SMTP's RSET semantics say.
                self.require(State::Connected..=State::Body, "HELO")?;
                self.macros.clear_after(Stage::Helo);
                self.end_message();
                self.client.helo = Some(name);
                Ok(self.continue_unless(Protocol::NR_HELO))
            }
            Command::Mail { sender, params } => {
                // A MAIL without a preceding ABORT still starts a fresh message.
                self.require(State::Connected..=State::Body, "MAIL")?;
                self.macros.clear_after(Stage::Mail);
                self.message = MessageParts {
                    sender: EnvelopeAddress {
                        raw: sender,
                        params,
                    },
                    ..MessageParts::default()
                };
                self.state = State::Mail;
                Ok(self.continue_unless(Protocol::NR_MAIL))
            }
            Command::Rcpt { recipient, params } => {
                self.require(State::Mail..=State::Rcpt, "RCPT")?;
                self.macros.clear_after(Stage::Rcpt);
                self.message.recipients.push(EnvelopeAddress {
                    raw: recipient,
                    params,
                });
                self.state = State::Rcpt;
                Ok(self.continue_unless(Protocol::NR_RCPT))
            }
            Command::Data => {
                self.require(State::Mail..=State::Rcpt, "DATA")?;
                self.state = State::Data;
                Ok(self.continue_unless(Protocol::NR_DATA))
            }
            Command::Header { name, value } => {
                self.require(State::Rcpt..=State::Headers, "HEADER")?;
                let bytes = name.len() + value.len();
                if self.message.headers.len() < self.max_headers
                    && self.message.header_bytes + bytes <= self.max_header_bytes
                {
                    self.message.header_bytes += bytes;
                    self.message.headers.push(HeaderField { name, value });
                } else {
                    self.message.headers_dropped += 1;
                }
                self.state = State::Headers;
                Ok(self.continue_unless(Protocol::NR_HEADER))
            }
            Command::EndOfHeaders => {
                self.require(State::Rcpt..=State::Headers, "EOH")?;
                self.state = State::Eoh;
                Ok(self.continue_unless(Protocol::NR_EOH))
            }
            Command::Body(chunk) => {
                self.require(State::Rcpt..=State::Body, "BODY")?;
                self.state = State::Body;
                self.add_body(chunk);
                if self.message.kept >= self.body_limit()
                    && self.negotiated_has(Protocol::SKIP)
                    && !self.negotiated_has(Protocol::NR_BODY)
                    && !self.message.skipped
                {
                    self.message.skipped = true;
                    return Ok(Step::Reply(Response::Skip));
                }
                Ok(self.continue_unless(Protocol::NR_BODY))
            }
            Command::EndOfMessage(tail) => {
                self.require(State::Rcpt..=State::Body, "EOM")?;
                self.add_body(tail);
                Ok(Step::EndOfMessage(Box::new(self.finish_message())))
            }
            Command::Abort => {
                // Postfix sends ABORT after every message too; outside one it is a no-op.
                if self.state >= State::Connected {
                    self.end_message();
                }
                Ok(Step::Silent)
            }
            Command::Unknown(_) => {
                self.require(State::Connected..=State::Body, "UNKNOWN")?;
                Ok(self.continue_unless(Protocol::NR_UNKNOWN))
            }
            Command::Quit => Ok(Step::Close),
            Command::QuitNewConnection => {
                self.require(State::AwaitConnect..=State::Body, "QUIT_NC")?;
                self.macros.clear();
                self.client = Client::default();
                self.message = MessageParts::default();
                self.state = State::AwaitConnect;
                Ok(Step::Silent)
            }
        }
    }

    fn require(
        &self,
        allowed: std::ops::RangeInclusive<State>,
        command: &'static str,
    ) -> Result<(), ProtocolError> {
        if allowed.contains(&self.state) {
            Ok(())
        } else {
            Err(ProtocolError::OutOfOrder {
                command,
                state: self.state.describe(),
            })
        }
    }

    fn negotiated_has(&self, bit: Protocol) -> bool {
        self.negotiated.is_some_and(|n| n.protocol.contains(bit))
    }

    fn continue_unless(&self, nr_bit: Protocol) -> Step {
        if self.negotiated_has(nr_bit) {
            Step::Silent
        } else {
            Step::Reply(Response::Continue)
        }
    }

    fn add_body(&mut self, chunk: Bytes) {
        self.message.size += chunk.len() as u64;
        let room = self.body_limit().saturating_sub(self.message.kept);
        let kept = if chunk.len() <= room {
            chunk
        } else {
            chunk.slice(..room)
        };
        if !kept.is_empty() {
            self.message.kept += kept.len();
            self.message.body.push(kept);
        }
    }

    /// Forgets the message and its macros (from MAIL on), so that nothing of it,
    /// least of all `{auth_authen}`, can leak into the next message.
    fn end_message(&mut self) {
        if self.state > State::Connected {
            self.state = State::Connected;
        }
        self.message = MessageParts::default();
        self.macros.clear_after(Stage::Helo);
    }

    fn finish_message(&mut self) -> Transaction {
        let parts = std::mem::take(&mut self.message);
        let macros = self.macros.snapshot();
        self.end_message();
        let body = match parts.body.len() {
            0 => Bytes::new(),
            1 => parts.body.into_iter().next().unwrap_or_default(),
            _ => {
                let mut all = BytesMut::with_capacity(parts.kept);
                parts.body.iter().for_each(|c| all.extend_from_slice(c));
                all.freeze()
            }
        };
        Transaction {
            session_id: self.id,
            client: self.client.clone(),
            macros,
            sender: parts.sender,
            recipients: parts.recipients,
            headers: parts.headers,
            headers_exact: self.negotiated.is_some_and(|n| n.headers_exact()),
            body,
            body_size: parts.size,
            headers_dropped: parts.headers_dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::command::MacroPair;
    use crate::milter::flags::Actions;

    const NEEDS: Needs = Needs {
        actions: Actions::ADD_HEADERS,
        headers: true,
        body: BodyNeed::Whole,
    };

    fn session(protocol: u32) -> Session {
        session_with(protocol, NEEDS, 1 << 20)
    }

    fn limits(max_body: usize) -> SessionSettings {
        SessionSettings {
            max_body,
            max_headers: 3,
            ..SessionSettings::default()
        }
    }

    fn session_with(protocol: u32, needs: Needs, max_body: usize) -> Session {
        let mut s = Session::new(7, needs, &limits(max_body));
        let step = s
            .on_command(Command::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol,
            })
            .unwrap();
        assert!(matches!(step, Step::Reply(Response::OptNeg { .. })));
        s
    }

    fn run(s: &mut Session, commands: Vec<Command>) -> Vec<Step> {
        commands
            .into_iter()
            .map(|c| s.on_command(c).unwrap())
            .collect()
    }

    fn connect() -> Command {
        Command::Connect {
            hostname: "client.example".into(),
            address: ClientAddress::Inet {
                ip: "192.0.2.1".parse().unwrap(),
                port: 4000,
            },
        }
    }

    fn message(body: &'static [u8]) -> Vec<Command> {
        vec![
            Command::Macro {
                letter: b'M',
                pairs: vec![MacroPair {
                    name: "auth_authen".into(),
                    value: Bytes::from_static(b"alice"),
                }],
            },
            Command::Mail {
                sender: "<a@example.org>".into(),
                params: vec![],
            },
            Command::Rcpt {
                recipient: "<b@example.net>".into(),
                params: vec![],
            },
            Command::Macro {
                letter: b'T',
                pairs: vec![MacroPair {
                    name: "i".into(),
                    value: Bytes::from_static(b"QID1"),
                }],
            },
            Command::Data,
            Command::Header {
                name: "Subject".into(),
                value: Bytes::from_static(b" hi"),
            },
            Command::EndOfHeaders,
            Command::Body(Bytes::from_static(body)),
        ]
    }

    fn eom(s: &mut Session) -> Transaction {
        match s.on_command(Command::EndOfMessage(Bytes::new())).unwrap() {
            Step::EndOfMessage(tx) => *tx,
            other => panic!("expected end of message, got {other:?}"),
        }
    }

    #[test]
    fn postfix_conversation_is_silent_until_end_of_message() {
        let mut s = session(0x1f_ffff);
        let mut commands = vec![
            connect(),
            Command::Helo {
                name: "client.example".into(),
            },
        ];
        // DATA and end-of-headers are negotiated away: Postfix does not send them.
        commands.extend(
            message(b"Hello\r\n")
                .into_iter()
                .filter(|c| !matches!(c, Command::Data | Command::EndOfHeaders)),
        );
        for step in run(&mut s, commands) {
            assert!(matches!(step, Step::Silent), "{step:?}");
        }
        let tx = eom(&mut s);
        assert_eq!(tx.client.ip, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(tx.client.helo.as_deref(), Some("client.example"));
        assert_eq!(tx.sender.address(), "a@example.org");
        assert_eq!(tx.recipients.len(), 1);
        assert_eq!(tx.queue_id().as_deref(), Some("QID1"));
        assert_eq!(tx.macros.text("auth_authen").as_deref(), Some("alice"));
        assert_eq!(&tx.body[..], b"Hello\r\n");
        assert!(tx.headers_exact);
    }

    #[test]
    fn old_mta_gets_a_reply_at_every_step() {
        let mut s = session(0x7f);
        let mut commands = vec![connect()];
        commands.extend(message(b"x"));
        let replies = run(&mut s, commands)
            .into_iter()
            .filter(|s| matches!(s, Step::Reply(Response::Continue)))
            .count();
        // CONNECT, MAIL, RCPT, DATA, HEADER, EOH, BODY: a v2 MTA knows no NR bits.
        assert_eq!(replies, 7);
    }

    #[test]
    fn several_messages_per_connection_and_abort_keeps_the_connection() {
        let mut s = session(0x1f_ffff);
        run(&mut s, vec![connect()]);
        run(&mut s, message(b"one"));
        let first = eom(&mut s);
        run(&mut s, vec![Command::Abort]);
        assert!(s.is_idle());
        // A message aborted half-way leaves no trace in the next one.
        run(&mut s, message(b"aborted"));
        run(&mut s, vec![Command::Abort]);
        let mut second = message(b"two");
        second.remove(0); // no MAIL macro packet this time
        run(&mut s, second);
        let tx = eom(&mut s);
        assert_eq!(&first.body[..], b"one");
        assert_eq!(&tx.body[..], b"two");
        assert_eq!(
            tx.macros.text("auth_authen"),
            None,
            "MAIL-stage macros were cleared"
        );
        assert_eq!(tx.client.hostname, "client.example");
    }

    #[test]
    fn out_of_order_commands_are_errors() {
        let mut s = Session::new(1, NEEDS, &limits(100));
        assert!(matches!(
            s.on_command(connect()),
            Err(ProtocolError::OutOfOrder {
                command: "CONNECT",
                ..
            })
        ));
        let mut s = session(0x1f_ffff);
        let cases = vec![
            Command::Mail {
                sender: "<>".into(),
                params: vec![],
            },
            Command::EndOfMessage(Bytes::new()),
            Command::OptNeg {
                version: 6,
                actions: 0,
                protocol: 0,
            },
        ];
        for c in cases {
            assert!(matches!(
                s.on_command(c),
                Err(ProtocolError::OutOfOrder { .. })
            ));
        }
        run(&mut s, vec![connect()]);
        for c in [
            Command::Rcpt {
                recipient: "<a@b>".into(),
                params: vec![],
            },
            Command::Body(Bytes::new()),
            Command::EndOfHeaders,
            connect(),
        ] {
            let name = c.name();
            let err = s.on_command(c).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        run(&mut s, message(b"x"));
        let err = s
            .on_command(Command::Header {
                name: "X".into(),
                value: Bytes::new(),
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "HEADER is not allowed after body data");
    }

    #[test]
    fn body_beyond_the_limit_is_counted_not_kept() {
        let mut s = session_with(0x1f_ffff, NEEDS, 4);
        run(&mut s, vec![connect()]);
        run(&mut s, message(b"0123456789"));
        let tx = eom(&mut s);
        assert_eq!(&tx.body[..], b"0123");
        assert_eq!(tx.body_size, 10);
        assert!(tx.body_truncated());
    }

    #[test]
    fn prefix_need_asks_the_mta_to_skip_the_rest() {
        let needs = Needs {
            body: BodyNeed::Prefix(5),
            ..NEEDS
        };
        let mut s = session_with(0x1f_ffff, needs, 1 << 20);
        run(&mut s, vec![connect()]);
        let steps = run(&mut s, message(b"abc"));
        assert!(matches!(
            steps.last(),
            Some(Step::Reply(Response::Continue))
        ));
        let step = s
            .on_command(Command::Body(Bytes::from_static(b"defgh")))
            .unwrap();
        assert!(matches!(step, Step::Reply(Response::Skip)));
        let tx = eom(&mut s);
        assert_eq!(&tx.body[..], b"abcde");
        assert_eq!(tx.body_size, 8);
    }

    #[test]
    fn quit_new_connection_forgets_the_client() {
        let mut s = session(0x1f_ffff);
        run(&mut s, vec![connect(), Command::QuitNewConnection]);
        assert!(matches!(
            s.on_command(Command::Helo { name: "x".into() }),
            Err(ProtocolError::OutOfOrder { .. })
        ));
        run(&mut s, vec![connect()]);
        assert!(matches!(s.on_command(Command::Quit).unwrap(), Step::Close));
    }

    #[test]
    fn helo_inside_a_message_resets_it() {
        let mut s = session(0x1f_ffff);
        run(&mut s, vec![connect()]);
        run(&mut s, message(b"x"));
        run(
            &mut s,
            vec![
                Command::Helo {
                    name: "again".into(),
                },
                Command::Abort,
            ],
        );
        assert!(s.is_idle());
        assert!(matches!(
            s.on_command(Command::EndOfMessage(Bytes::new())),
            Err(ProtocolError::OutOfOrder { .. })
        ));
    }
}

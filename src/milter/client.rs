//! The MTA's side of the protocol, as Postfix speaks it: macros before each event,
//! no waiting for replies the milter promised not to send, body in 65,535-byte
//! chunks. The load tool and the tests drive mailwarden with it; it reads like a
//! transcript: `mta.mail(..)`, `mta.rcpt(..)`, `mta.eom()`.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};

use super::codec::{DEFAULT_MAX_PACKET, MAX_CHUNK};
use super::command::{ClientAddress, Command, MacroPair};
use super::error::ProtocolError;
use super::flags::Protocol;
use super::framed::{Framed, ReadError};
use super::response::Response;
use crate::net::ListenAddr;
use crate::net::Stream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Protocol(#[from] ProtocolError),
    #[error("the milter closed the connection")]
    Closed,
    #[error("no reply from the milter within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply {0:?}")]
    Unexpected(Response),
}

impl From<ReadError> for ClientError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => ClientError::Io(e),
            ReadError::Protocol(e) => ClientError::Protocol(e),
        }
    }
}

/// What the milter answered at end-of-message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EomReply {
    pub modifications: Vec<Response>,
    pub progress: usize,
    pub decision: Response,
}

impl EomReply {
    /// The value of the first added or inserted header with this name.
    pub fn added_header(&self, wanted: &str) -> Option<&str> {
        self.modifications.iter().find_map(|m| match m {
            Response::AddHeader { name, value } | Response::InsertHeader { name, value, .. }
                if name.eq_ignore_ascii_case(wanted) =>
            {
                Some(value.as_str())
            }
            _ => None,
        })
    }
}

pub struct MtaClient<S> {
    framed: Framed<S>,
    out: BytesMut,
    protocol: Protocol,
    reply_timeout: Duration,
    flush_each_event: bool,
}

impl MtaClient<Stream> {
    pub async fn connect(addr: &ListenAddr) -> io::Result<Self> {
        Ok(MtaClient::new(Stream::connect(addr).await?))
    }

    /// Connects, negotiates as Postfix does, and reports an SMTP client at `ip` that
    /// said `HELO helo`, with the connect macros Postfix would send. Ready for MAIL.
    pub async fn open_session(
        addr: &ListenAddr,
        ip: IpAddr,
        helo: &str,
    ) -> Result<Self, ClientError> {
        let mut mta = MtaClient::connect(addr).await?;
        mta.negotiate_like_postfix().await?;
        let underscore = format!("{helo} [{ip}]");
        mta.macros(
            b'C',
            &[
                ("j", "mx.mta.test"),
                ("daemon_name", "smtpd"),
                ("_", &underscore),
            ],
        );
        mta.connect_info(helo, ClientAddress::Inet { ip, port: 40000 })
            .await?;
        mta.macros(b'H', &[]);
        mta.helo(helo).await?;
        Ok(mta)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> MtaClient<S> {
    pub fn new(stream: S) -> Self {
        MtaClient {
            framed: Framed::new(stream, DEFAULT_MAX_PACKET),
            out: BytesMut::new(),
            protocol: Protocol::empty(),
            reply_timeout: Duration::from_secs(30),
            flush_each_event: false,
        }
    }

    /// Write every event as soon as it is queued, as Postfix does, instead of sending
    /// the events that need no reply together with the next one that does.
    pub fn with_flush_each_event(mut self, on: bool) -> Self {
        self.flush_each_event = on;
        self
    }

    pub fn with_reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    /// The protocol bits the milter asked for.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Sends OPTNEG and returns the milter's reply; later steps obey what it asked for.
    pub async fn negotiate(
        &mut self,
        version: u32,
        actions: u32,
        protocol: u32,
    ) -> Result<Response, ClientError> {
        self.queue(Command::OptNeg {
            version,
            actions,
            protocol,
        });
        let reply = self.read_reply().await?;
        match &reply {
            Response::OptNeg { protocol, .. } => self.protocol = Protocol(*protocol),
            other => return Err(ClientError::Unexpected(other.clone())),
        }
        Ok(reply)
    }

    /// Negotiates exactly as Postfix 3.x does (v6, every action, every protocol bit).
    pub async fn negotiate_like_postfix(&mut self) -> Result<Response, ClientError> {
        self.negotiate(6, 0x1ff, Protocol::POSTFIX_V6.0).await
    }

    /// Queues a macro packet for the command that follows (`b'C'`, `b'M'`, ...).
    pub fn macros(&mut self, letter: u8, pairs: &[(&str, &str)]) {
        let pairs = pairs
            .iter()
            .map(|(n, v)| MacroPair {
                name: (*n).to_owned(),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect();
        self.queue(Command::Macro { letter, pairs });
    }

    pub async fn connect_info(
        &mut self,
        hostname: &str,
        address: ClientAddress,
    ) -> Result<Option<Response>, ClientError> {
        self.step(
            Command::Connect {
                hostname: hostname.to_owned(),
                address,
            },
            Protocol::NO_CONNECT,
            Protocol::NR_CONNECT,
        )
        .await
    }

    pub async fn helo(&mut self, name: &str) -> Result<Option<Response>, ClientError> {
        self.step(
            Command::Helo {
                name: name.to_owned(),
            },
            Protocol::NO_HELO,
            Protocol::NR_HELO,
        )
        .await
    }

    pub async fn mail(
        &mut self,
        sender: &str,
        params: &[&str],
    ) -> Result<Option<Response>, ClientError> {
        let command = Command::Mail {
            sender: sender.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        };
        self.step(command, Protocol::NO_MAIL, Protocol::NR_MAIL)
            .await
    }

    pub async fn rcpt(&mut self, recipient: &str) -> Result<Option<Response>, ClientError> {
        let command = Command::Rcpt {
            recipient: recipient.to_owned(),
            params: Vec::new(),
        };
        self.step(command, Protocol::NO_RCPT, Protocol::NR_RCPT)
            .await
    }

    pub async fn data(&mut self) -> Result<Option<Response>, ClientError> {
        self.step(Command::Data, Protocol::NO_DATA, Protocol::NR_DATA)
            .await
    }

    pub async fn header(
        &mut self,
        name: &str,
        value: &[u8],
    ) -> Result<Option<Response>, ClientError> {
        let command = Command::Header {
            name: name.to_owned(),
            value: Bytes::copy_from_slice(value),
        };
        self.step(command, Protocol::NO_HEADERS, Protocol::NR_HEADER)
            .await
    }

    pub async fn eoh(&mut self) -> Result<Option<Response>, ClientError> {
        self.step(Command::EndOfHeaders, Protocol::NO_EOH, Protocol::NR_EOH)
            .await
    }

    /// Sends the body in chunks of at most 65,535 bytes; stops early if the milter
    /// answers SKIP. Returns the last reply, if any was expected.
    pub async fn body(&mut self, body: &[u8]) -> Result<Option<Response>, ClientError> {
        let mut last = None;
        for chunk in body.chunks(MAX_CHUNK) {
            last = self
                .step(
                    Command::Body(Bytes::copy_from_slice(chunk)),
                    Protocol::NO_BODY,
                    Protocol::NR_BODY,
                )
                .await?;
            if last == Some(Response::Skip) {
                break;
            }
        }
        Ok(last)
    }

    /// Sends end-of-message and collects modifications until the final decision.
    pub async fn eom(&mut self) -> Result<EomReply, ClientError> {
        self.queue(Command::EndOfMessage(Bytes::new()));
        let mut modifications = Vec::new();
        let mut progress = 0;
        loop {
            let reply = self.read_any().await?;
            if reply == Response::Progress {
                progress += 1;
            } else if reply.is_final() {
                return Ok(EomReply {
                    modifications,
                    progress,
                    decision: reply,
                });
            } else {
                modifications.push(reply);
            }
        }
    }

    /// True when every event of a message before end-of-message is either turned off
    /// or needs no reply, and events are not flushed one by one: a message's events
    /// then queue up without any wait and can be recorded once (`take_queued`) and
    /// replayed (`queue_encoded`).
    pub fn replies_only_at_eom(&self) -> bool {
        !self.flush_each_event
            && [
                (Protocol::NO_MAIL, Protocol::NR_MAIL),
                (Protocol::NO_RCPT, Protocol::NR_RCPT),
                (Protocol::NO_DATA, Protocol::NR_DATA),
                (Protocol::NO_HEADERS, Protocol::NR_HEADER),
                (Protocol::NO_EOH, Protocol::NR_EOH),
                (Protocol::NO_BODY, Protocol::NR_BODY),
            ]
            .iter()
            .all(|&(off, no_reply)| self.protocol.contains(off) || self.protocol.contains(no_reply))
    }

    /// Takes the events queued and not yet sent.
    pub fn take_queued(&mut self) -> BytesMut {
        self.out.split()
    }

    /// Queues events already encoded, to go out with the next flush.
    pub fn queue_encoded(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Queues ABORT (no reply), as Postfix sends after every message.
    pub fn abort(&mut self) {
        self.queue(Command::Abort);
    }

    /// Sends QUIT and waits for the milter to close the connection.
    pub async fn quit(mut self) -> Result<(), ClientError> {
        self.queue(Command::Quit);
        self.flush().await?;
        match tokio::time::timeout(self.reply_timeout, self.framed.read_packet()).await {
            Err(_) => Err(ClientError::Timeout(self.reply_timeout)),
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(packet))) => Err(ClientError::Unexpected(Response::decode(packet)?)),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Sends raw bytes, for feeding the milter malformed input in tests.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.flush().await?;
        Ok(self.framed.send_raw(bytes).await?)
    }

    /// Waits for the milter to close the connection; anything it sends first is an error.
    pub async fn expect_closed(&mut self) -> Result<(), ClientError> {
        self.flush().await?;
        match tokio::time::timeout(self.reply_timeout, self.framed.read_packet()).await {
            Err(_) => Err(ClientError::Timeout(self.reply_timeout)),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(ReadError::Io(e))) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Ok(Ok(Some(packet))) => Err(ClientError::Unexpected(Response::decode(packet)?)),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    fn queue(&mut self, command: Command) {
        command.encode(&mut self.out);
    }

    async fn flush(&mut self) -> Result<(), ClientError> {
        if !self.out.is_empty() {
            let bytes = self.out.split();
            self.framed.send_raw(&bytes).await?;
        }
        Ok(())
    }

    async fn step(
        &mut self,
        command: Command,
        off: Protocol,
        no_reply: Protocol,
    ) -> Result<Option<Response>, ClientError> {
        if self.protocol.contains(off) {
            return Ok(None);
        }
        self.queue(command);
        if self.protocol.contains(no_reply) {
            if self.flush_each_event {
                self.flush().await?;
            }
            return Ok(None);
        }
        Ok(Some(self.read_reply().await?))
    }

    /// The next decision reply, skipping progress packets.
    async fn read_reply(&mut self) -> Result<Response, ClientError> {
        loop {
            let reply = self.read_any().await?;
            if reply != Response::Progress {
                return Ok(reply);
            }
        }
    }

    async fn read_any(&mut self) -> Result<Response, ClientError> {
        self.flush().await?;
        match tokio::time::timeout(self.reply_timeout, self.framed.read_packet()).await {
            Err(_) => Err(ClientError::Timeout(self.reply_timeout)),
            Ok(Ok(None)) => Err(ClientError::Closed),
            Ok(Ok(Some(packet))) => Ok(Response::decode(packet)?),
            Ok(Err(e)) => Err(e.into()),
        }
    }
}

/// A message file split the way an MTA hands it to a milter: header fields (name, and
/// value with its leading whitespace and folded lines joined by LF) and the body with
/// CRLF line ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMessage {
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl SplitMessage {
    pub fn parse(raw: &[u8]) -> SplitMessage {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        let mut rest = raw;
        loop {
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                rest = next;
                break;
            }
            if matches!(line.first(), Some(b' ' | b'\t')) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(b'\n');
                    value.extend_from_slice(line);
                }
            } else if let Some(colon) = line.iter().position(|&b| b == b':') {
                let name = String::from_utf8_lossy(&line[..colon]).into_owned();
                headers.push((name, line[colon + 1..].to_vec()));
            }
            rest = next;
            if rest.is_empty() {
                break;
            }
        }
        let mut body = Vec::with_capacity(rest.len() + rest.len() / 40);
        for (i, &b) in rest.iter().enumerate() {
            if b == b'\n' && (i == 0 || rest[i - 1] != b'\r') {
                body.push(b'\r');
            }
            body.push(b);
        }
        SplitMessage { headers, body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_headers_and_body_like_an_mta() {
        let m =
            SplitMessage::parse(b"From: a@b\nSubject: one\n\ttwo\nX-Empty:\n\nline1\nline2\r\n");
        assert_eq!(
            m.headers,
            vec![
                ("From".to_owned(), b" a@b".to_vec()),
                ("Subject".to_owned(), b" one\n\ttwo".to_vec()),
                ("X-Empty".to_owned(), b"".to_vec()),
            ]
        );
        assert_eq!(m.body, b"line1\r\nline2\r\n");
    }
}

//! A milter connection's byte stream as packets: buffered reads that are safe to
//! cancel (so a shutdown or time-out never loses a half-read packet's place) and
//! writes that send all of a step's responses in one flush.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::codec::{Packet, decode_packet};
use super::error::ProtocolError;
use super::response::Response;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Framed<S> {
    stream: S,
    input: BytesMut,
    output: BytesMut,
    max_packet: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    pub fn new(stream: S, max_packet: usize) -> Self {
        Framed {
            stream,
            input: BytesMut::new(),
            output: BytesMut::new(),
            max_packet,
        }
    }

    /// The next packet, or `None` when the peer closed the connection between packets.
    /// Cancel-safe: bytes already read stay buffered for the next call.
    pub async fn read_packet(&mut self) -> Result<Option<Packet>, ReadError> {
        loop {
            if let Some(packet) = decode_packet(&mut self.input, self.max_packet)? {
                return Ok(Some(packet));
            }
            if self.input.capacity() == self.input.len() {
                self.input.reserve(4096);
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return if self.input.is_empty() {
                    Ok(None)
                } else {
                    Err(ProtocolError::TruncatedPacket {
                        buffered: self.input.len(),
                    }
                    .into())
                };
            }
        }
    }

    /// Encodes every response and writes them with a single flush.
    pub async fn send(&mut self, responses: &[Response]) -> std::io::Result<()> {
        for r in responses {
            r.encode(&mut self.output);
        }
        let result = self.stream.write_all(&self.output).await;
        self.output.clear();
        result?;
        self.stream.flush().await
    }

    /// Writes raw bytes (used by the MTA-side client for commands).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Releases a large, empty input buffer, so an idle connection keeps only its
    /// socket and not room for the largest packet it ever saw.
    pub fn shrink(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 16 * 1024 {
            self.input = BytesMut::new();
        }
    }
}

//! A milter connection's byte stream as packets: buffered reads that are safe to
//! cancel (so a shutdown or time-out never loses a half-read packet's place) and
//! writes that send all of a step's responses in one flush.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::codec::{Packet, decode_packet};
use super::error::ProtocolError;
use super::response::Response;

/// The least free space offered to each read. Packets the MTA sends without
/// waiting for a reply (headers, body chunks, end of message) then arrive in one
/// read instead of one read per packet, or per 4 KiB.
const READ_AHEAD: usize = 8 * 1024;

/// A stream that can say when it has bytes to read, without a buffer to read them
/// into: an idle connection then holds no read buffer at all. The default answers
/// at once (for in-memory streams in tests).
pub trait Readable {
    fn readable(&self) -> impl std::future::Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

impl Readable for crate::net::Stream {
    async fn readable(&self) -> std::io::Result<()> {
        match self {
            crate::net::Stream::Tcp(s) => s.readable().await,
            crate::net::Stream::Unix(s) => s.readable().await,
        }
    }
}

impl Readable for tokio::io::DuplexStream {}

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
            // Room for the rest of this packet (decode_packet reserved it) and for
            // what follows: a 5 KB message and its end-of-message arrive in one read.
            if self.input.capacity() - self.input.len() < READ_AHEAD {
                self.input.reserve(READ_AHEAD);
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

    /// True while an input buffer is allocated.
    pub fn holds_buffer(&self) -> bool {
        self.input.capacity() > 0
    }

    /// Releases the input buffer when it is empty: an idle connection keeps only
    /// its socket (see [`Framed::wait_for_input`]).
    pub fn release(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Readable> Framed<S> {
    /// Waits, holding no buffer, until the stream has bytes when the input buffer
    /// was released; the read that follows then takes the whole burst at once.
    /// Cancel-safe.
    pub async fn wait_for_input(&self) -> std::io::Result<()> {
        if self.input.capacity() == 0 {
            self.stream.readable().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::ReadBuf;

    use super::*;
    use crate::milter::codec::{DEFAULT_MAX_PACKET, encode_packet};

    /// Serves `data` as fast as the reader takes it and counts the reads.
    struct Counted {
        data: Vec<u8>,
        at: usize,
        reads: usize,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.reads += 1;
            let n = buf.remaining().min(self.data.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_message_sent_in_one_write_is_read_in_one_read() {
        // What an MTA sends for a 5 KB message without waiting for replies.
        let mut data = BytesMut::new();
        encode_packet(&mut data, b'L', b"From\0Example <app@example.com>\0");
        encode_packet(&mut data, b'N', b"");
        encode_packet(&mut data, b'B', &[b'x'; 5000]);
        encode_packet(&mut data, b'E', b"");
        let mut framed = Framed::new(
            Counted {
                data: data.to_vec(),
                at: 0,
                reads: 0,
            },
            DEFAULT_MAX_PACKET,
        );
        let mut codes = Vec::new();
        while let Some(packet) = framed.read_packet().await.unwrap() {
            codes.push(packet.code);
            if packet.code == b'B' {
                assert_eq!(packet.payload.len(), 5000);
            }
        }
        assert_eq!(codes, b"LNBE");
        // One read for the packets and one that finds the end of the stream.
        assert_eq!(framed.stream.reads, 2);
    }
}

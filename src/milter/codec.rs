//! Packet framing: a 4-byte big-endian length (command byte plus payload), the
//! command byte, the payload. The decoder refuses a bad length before allocating
//! anything for it, so a 2 GiB length prefix costs nothing.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::ProtocolError;

/// libmilter's own limit for one packet's data and for one body chunk.
pub const MAX_CHUNK: usize = 65_535;
/// Our default limit for incoming packets: libmilter's limit plus a wide margin, as
/// indymilter does. Postfix never sends more than 65,535 bytes of body per packet.
pub const DEFAULT_MAX_PACKET: usize = 1024 * 1024 - 1;

/// One packet: the command or response byte and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: u8,
    pub payload: Bytes,
}

/// Takes one whole packet off the front of `buf`, or returns `Ok(None)` when more
/// bytes are needed. The length is checked as soon as its four bytes are there.
pub fn decode_packet(
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<Packet>, ProtocolError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if length == 0 {
        return Err(ProtocolError::EmptyPacket);
    }
    if length as usize > max_packet {
        return Err(ProtocolError::Oversize {
            length,
            limit: max_packet,
        });
    }
    let total = 4 + length as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let code = buf.get_u8();
    let payload = buf.split_to(length as usize - 1).freeze();
    Ok(Some(Packet { code, payload }))
}

/// Appends one packet to `out`. Callers keep payloads within [`MAX_CHUNK`] where the
/// protocol requires it (body replacement is split by the response encoder).
pub fn encode_packet(out: &mut BytesMut, code: u8, payload: &[u8]) {
    out.reserve(5 + payload.len());
    out.put_u32(payload.len() as u32 + 1);
    out.put_u8(code);
    out.put_slice(payload);
}

/// Reads NUL-terminated strings out of a payload, naming the command and field in
/// the error when one is missing.
pub(crate) struct Fields<'a> {
    command: &'static str,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(command: &'static str, payload: &'a [u8]) -> Self {
        Fields {
            command,
            rest: payload,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next NUL-terminated field, without its NUL.
    pub(crate) fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        match self.rest.iter().position(|&b| b == 0) {
            Some(end) => {
                let value = &self.rest[..end];
                self.rest = &self.rest[end + 1..];
                Ok(value)
            }
            None => Err(ProtocolError::Truncated {
                command: self.command,
                field,
            }),
        }
    }

    /// The next NUL-terminated field as UTF-8 text.
    pub(crate) fn text(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let raw = self.bytes(field)?;
        utf8(self.command, field, raw)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        let (&b, rest) = self.rest.split_first().ok_or(ProtocolError::Truncated {
            command: self.command,
            field,
        })?;
        self.rest = rest;
        Ok(b)
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, ProtocolError> {
        let bytes = self.fixed::<2>(field)?;
        Ok(u16::from_be_bytes(bytes))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        let bytes = self.fixed::<4>(field)?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn fixed<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ProtocolError> {
        if self.rest.len() < N {
            return Err(ProtocolError::Truncated {
                command: self.command,
                field,
            });
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.rest[..N]);
        self.rest = &self.rest[N..];
        Ok(out)
    }

    /// Every remaining NUL-terminated field (an "argv" list). A trailing fragment with
    /// no NUL is an error, an empty remainder is an empty list.
    pub(crate) fn text_list(&mut self, field: &'static str) -> Result<Vec<String>, ProtocolError> {
        let mut out = Vec::new();
        while !self.rest.is_empty() {
            out.push(self.text(field)?);
        }
        Ok(out)
    }

    /// Fails unless the payload has been read to its end.
    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Malformed {
                command: self.command,
                reason: format!("{} unexpected trailing bytes", self.rest.len()),
            })
        }
    }
}

pub(crate) fn utf8(
    command: &'static str,
    field: &'static str,
    raw: &[u8],
) -> Result<String, ProtocolError> {
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| ProtocolError::NotUtf8 { command, field })
}

/// Appends `text` and its terminating NUL.
pub(crate) fn put_cstr(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(text);
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Result<Option<Packet>, ProtocolError> {
        decode_packet(&mut BytesMut::from(bytes), DEFAULT_MAX_PACKET)
    }

    #[test]
    fn needs_more_bytes_until_the_packet_is_whole() {
        assert!(frame(b"").unwrap().is_none());
        assert!(frame(b"\0\0\0").unwrap().is_none());
        assert!(frame(b"\0\0\0\x02D").unwrap().is_none());
        let packet = frame(b"\0\0\0\x02DH").unwrap().unwrap();
        assert_eq!(packet.code, b'D');
        assert_eq!(&packet.payload[..], b"H");
    }

    #[test]
    fn zero_length_is_refused() {
        assert!(matches!(
            frame(b"\0\0\0\0c"),
            Err(ProtocolError::EmptyPacket)
        ));
    }

    #[test]
    fn two_gib_length_is_refused_before_allocating() {
        let mut buf = BytesMut::from(&b"\x80\0\0\0O"[..]);
        let err = decode_packet(&mut buf, DEFAULT_MAX_PACKET).unwrap_err();
        assert!(matches!(
            err,
            ProtocolError::Oversize {
                length: 0x8000_0000,
                ..
            }
        ));
        assert!(
            buf.capacity() < 1024,
            "no buffer was grown for the bogus length"
        );
    }

    #[test]
    fn limit_is_inclusive() {
        let mut ok = BytesMut::new();
        encode_packet(&mut ok, b'B', &[b'x'; 99]);
        assert!(decode_packet(&mut ok, 100).unwrap().is_some());
        let mut big = BytesMut::new();
        encode_packet(&mut big, b'B', &[b'x'; 100]);
        assert!(matches!(
            decode_packet(&mut big, 100),
            Err(ProtocolError::Oversize {
                length: 101,
                limit: 100
            })
        ));
    }

    #[test]
    fn several_packets_in_one_buffer() {
        let mut buf = BytesMut::new();
        encode_packet(&mut buf, b'A', b"");
        encode_packet(&mut buf, b'H', b"mx.example\0");
        let a = decode_packet(&mut buf, 100).unwrap().unwrap();
        let h = decode_packet(&mut buf, 100).unwrap().unwrap();
        assert_eq!((a.code, &a.payload[..]), (b'A', &b""[..]));
        assert_eq!((h.code, &h.payload[..]), (b'H', &b"mx.example\0"[..]));
        assert!(buf.is_empty());
    }
}

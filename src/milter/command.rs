//! Commands the MTA sends (`SMFIC_*`), as typed values. Raw packets become commands
//! here and nowhere else; encoding is provided too so the load tool and the tests can
//! play the MTA's side with the same code.
//!
//! Text that the protocol defines as names or addresses (macro names, the client
//! address, envelope addresses, header names) must be UTF-8; header values, body
//! bytes and macro values are carried as bytes, because legitimate mail carries
//! 8-bit data there and refusing it would lose mail.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};

use super::codec::{Fields, Packet, encode_packet, put_cstr, utf8};
use super::error::ProtocolError;

/// Where the SMTP client connected from, as the CONNECT command reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAddress {
    /// TCP over IPv4 or IPv6, with the client's port.
    Inet { ip: IpAddr, port: u16 },
    /// A UNIX-domain socket (the path or Postfix's client address string).
    Unix { path: String },
    /// Not a socket, e.g. `sendmail -bs` or Postfix's local submission.
    Unknown,
}

/// One name/value pair of a macro packet. Names are normalised without braces, so
/// `{auth_authen}` is stored as `auth_authen` and `i` as `i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroPair {
    pub name: String,
    pub value: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: protocol version, offered actions and protocol bits.
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `D`: macros for the command letter that follows. Malformed or empty macro
    /// packets decode to an empty list: Postfix sends empty ones routinely.
    Macro { letter: u8, pairs: Vec<MacroPair> },
    /// `C`: client host name and address.
    Connect {
        hostname: String,
        address: ClientAddress,
    },
    /// `H`: the HELO/EHLO argument.
    Helo { name: String },
    /// `M`: sender as given (normally `<addr>`) and ESMTP parameters.
    Mail { sender: String, params: Vec<String> },
    /// `R`: recipient as given and ESMTP parameters.
    Rcpt {
        recipient: String,
        params: Vec<String>,
    },
    /// `T`: DATA (protocol 4 and later).
    Data,
    /// `L`: one header field, value exactly as the MTA sent it.
    Header { name: String, value: Bytes },
    /// `N`: end of headers.
    EndOfHeaders,
    /// `B`: a chunk of body bytes.
    Body(Bytes),
    /// `E`: end of message, with optional final body bytes (Postfix sends none).
    EndOfMessage(Bytes),
    /// `A`: drop the current message, keep the connection.
    Abort,
    /// `Q`: close the conversation.
    Quit,
    /// `K`: close this SMTP connection's state; a new CONNECT follows.
    QuitNewConnection,
    /// `U`: an SMTP command the MTA did not recognise.
    Unknown(Bytes),
}

impl Command {
    /// The protocol's name for the command, used in logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Command::OptNeg { .. } => "OPTNEG",
            Command::Macro { .. } => "MACRO",
            Command::Connect { .. } => "CONNECT",
            Command::Helo { .. } => "HELO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Header { .. } => "HEADER",
            Command::EndOfHeaders => "EOH",
            Command::Body(_) => "BODY",
            Command::EndOfMessage(_) => "EOM",
            Command::Abort => "ABORT",
            Command::Quit => "QUIT",
            Command::QuitNewConnection => "QUIT_NC",
            Command::Unknown(_) => "UNKNOWN",
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Command::OptNeg { .. } => b'O',
            Command::Macro { .. } => b'D',
            Command::Connect { .. } => b'C',
            Command::Helo { .. } => b'H',
            Command::Mail { .. } => b'M',
            Command::Rcpt { .. } => b'R',
            Command::Data => b'T',
            Command::Header { .. } => b'L',
            Command::EndOfHeaders => b'N',
            Command::Body(_) => b'B',
            Command::EndOfMessage(_) => b'E',
            Command::Abort => b'A',
            Command::Quit => b'Q',
            Command::QuitNewConnection => b'K',
            Command::Unknown(_) => b'U',
        }
    }

    /// Turns one packet into a command, or says precisely what is wrong with it.
    pub fn decode(packet: Packet) -> Result<Command, ProtocolError> {
        let Packet { code, payload } = packet;
        let command = match code {
            b'O' => {
                let mut f = Fields::new("OPTNEG", &payload);
                let version = f.u32("version")?;
                let actions = f.u32("actions")?;
                let protocol = f.u32("protocol")?;
                // Newer MTAs may append data; libmilter ignores it too.
                Command::OptNeg {
                    version,
                    actions,
                    protocol,
                }
            }
            b'D' => decode_macros(&payload),
            b'C' => decode_connect(&payload)?,
            b'H' => {
                let mut f = Fields::new("HELO", &payload);
                let name = f.text("HELO name")?;
                // Extra NUL-terminated strings are tolerated, as libmilter does.
                Command::Helo { name }
            }
            b'M' => {
                let (sender, params) = decode_envelope("MAIL", &payload)?;
                Command::Mail { sender, params }
            }
            b'R' => {
                let (recipient, params) = decode_envelope("RCPT", &payload)?;
                Command::Rcpt { recipient, params }
            }
            b'T' => no_payload("DATA", &payload, Command::Data)?,
            b'L' => {
                let mut f = Fields::new("HEADER", &payload);
                let name = f.text("header name")?;
                if name.is_empty() {
                    return Err(ProtocolError::Malformed {
                        command: "HEADER",
                        reason: "empty header name".into(),
                    });
                }
                let value = f.bytes("header value")?;
                f.finish()?;
                Command::Header {
                    name,
                    value: payload.slice_ref(value),
                }
            }
            b'N' => no_payload("EOH", &payload, Command::EndOfHeaders)?,
            b'B' => Command::Body(payload),
            b'E' => Command::EndOfMessage(payload),
            b'A' => no_payload("ABORT", &payload, Command::Abort)?,
            b'Q' => no_payload("QUIT", &payload, Command::Quit)?,
            b'K' => no_payload("QUIT_NC", &payload, Command::QuitNewConnection)?,
            b'U' => {
                let mut f = Fields::new("UNKNOWN", &payload);
                let line = f.bytes("command line")?;
                Command::Unknown(payload.slice_ref(line))
            }
            other => {
                return Err(ProtocolError::UnknownCommand {
                    byte: other,
                    printable: printable(other),
                });
            }
        };
        Ok(command)
    }

    /// Appends the command as one packet.
    pub fn encode(&self, out: &mut BytesMut) {
        let mut p = Vec::new();
        match self {
            Command::OptNeg {
                version,
                actions,
                protocol,
            } => {
                p.extend_from_slice(&version.to_be_bytes());
                p.extend_from_slice(&actions.to_be_bytes());
                p.extend_from_slice(&protocol.to_be_bytes());
            }
            Command::Macro { letter, pairs } => {
                p.push(*letter);
                for pair in pairs {
                    let name = if pair.name.len() == 1 {
                        pair.name.clone()
                    } else {
                        format!("{{{}}}", pair.name)
                    };
                    put_cstr(&mut p, name.as_bytes());
                    put_cstr(&mut p, &pair.value);
                }
            }
            Command::Connect { hostname, address } => {
                put_cstr(&mut p, hostname.as_bytes());
                match address {
                    ClientAddress::Inet { ip, port } => {
                        p.push(if ip.is_ipv4() { b'4' } else { b'6' });
                        p.extend_from_slice(&port.to_be_bytes());
                        put_cstr(&mut p, ip.to_string().as_bytes());
                    }
                    ClientAddress::Unix { path } => {
                        p.push(b'L');
                        p.extend_from_slice(&0u16.to_be_bytes());
                        put_cstr(&mut p, path.as_bytes());
                    }
                    ClientAddress::Unknown => p.push(b'U'),
                }
            }
            Command::Helo { name } => put_cstr(&mut p, name.as_bytes()),
            Command::Mail {
                sender: first,
                params,
            }
            | Command::Rcpt {
                recipient: first,
                params,
            } => {
                put_cstr(&mut p, first.as_bytes());
                for param in params {
                    put_cstr(&mut p, param.as_bytes());
                }
            }
            Command::Header { name, value } => {
                put_cstr(&mut p, name.as_bytes());
                put_cstr(&mut p, value);
            }
            Command::Body(data) | Command::EndOfMessage(data) => p.extend_from_slice(data),
            Command::Unknown(line) => put_cstr(&mut p, line),
            Command::Data
            | Command::EndOfHeaders
            | Command::Abort
            | Command::Quit
            | Command::QuitNewConnection => {}
        }
        encode_packet(out, self.code(), &p);
    }
}

fn printable(byte: u8) -> char {
    if byte.is_ascii_graphic() {
        byte as char
    } else {
        '?'
    }
}

fn no_payload(
    command: &'static str,
    payload: &[u8],
    value: Command,
) -> Result<Command, ProtocolError> {
    if payload.is_empty() {
        Ok(value)
    } else {
        Err(ProtocolError::Malformed {
            command,
            reason: format!("expected no payload, got {} bytes", payload.len()),
        })
    }
}

/// Macro packets are never fatal: a malformed one is treated as empty, exactly as
/// libmilter and indymilter do, because Postfix sends empty ones routinely.
fn decode_macros(payload: &Bytes) -> Command {
    let Some((&letter, rest)) = payload.split_first() else {
        return Command::Macro {
            letter: 0,
            pairs: Vec::new(),
        };
    };
    let mut f = Fields::new("MACRO", rest);
    let mut pairs = Vec::new();
    while !f.is_empty() {
        let (Ok(name), Ok(value)) = (f.bytes("macro name"), f.bytes("macro value")) else {
            break;
        };
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        let name = normalize_macro_name(name);
        if name.is_empty() {
            continue;
        }
        pairs.push(MacroPair {
            name: name.to_owned(),
            value: payload.slice_ref(value),
        });
    }
    Command::Macro { letter, pairs }
}

/// `{name}` and `name` are the same macro; lookups use the bare form.
pub fn normalize_macro_name(name: &str) -> &str {
    name.strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .unwrap_or(name)
}

fn decode_connect(payload: &[u8]) -> Result<Command, ProtocolError> {
    const CMD: &str = "CONNECT";
    let mut f = Fields::new(CMD, payload);
    // The host name is a DNS name or Postfix's "[address]"; take it leniently so a
    // broken PTR record never costs a legitimate message.
    let hostname = String::from_utf8_lossy(f.bytes("host name")?).into_owned();
    let family = f.u8("address family")?;
    let address = match family {
        b'U' => ClientAddress::Unknown,
        b'4' | b'6' => {
            let port = f.u16("port")?;
            let text = f.text("address")?;
            f.finish()?;
            ClientAddress::Inet {
                ip: parse_ip(&text)?,
                port,
            }
        }
        b'L' => {
            let _port = f.u16("port")?;
            let path = f.text("socket path")?;
            f.finish()?;
            ClientAddress::Unix { path }
        }
        other => {
            return Err(ProtocolError::Malformed {
                command: CMD,
                reason: format!("unknown address family {:?}", printable(other)),
            });
        }
    };
    Ok(Command::Connect { hostname, address })
}

/// Sendmail reports IPv4-mapped IPv6 peers with family `4` but an IPv6 text, and
/// some MTAs write `IPv6:` before the address; accept all of these.
fn parse_ip(text: &str) -> Result<IpAddr, ProtocolError> {
    let bare = text.strip_prefix("IPv6:").unwrap_or(text);
    let parsed: IpAddr = bare.parse().map_err(|_| ProtocolError::Malformed {
        command: "CONNECT",
        reason: format!("client address {text:?} is not an IP address"),
    })?;
    Ok(match parsed {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(parsed),
        v4 => v4,
    })
}

fn decode_envelope(
    command: &'static str,
    payload: &[u8],
) -> Result<(String, Vec<String>), ProtocolError> {
    let mut f = Fields::new(command, payload);
    let first = f.bytes("address")?;
    let address = utf8(command, "address", first)?;
    let params = f.text_list("ESMTP parameter")?;
    Ok((address, params))
}

/// Strips the angle brackets from an envelope address as the MTA passes it:
/// `<a@b>` → `a@b`, `<>` → empty (the null sender).
pub fn bare_address(raw: &str) -> &str {
    let trimmed = raw.trim();
    trimmed
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::milter::codec::{DEFAULT_MAX_PACKET, decode_packet};

    fn round_trip(command: Command) {
        let mut buf = BytesMut::new();
        command.encode(&mut buf);
        let packet = decode_packet(&mut buf, DEFAULT_MAX_PACKET)
            .unwrap()
            .unwrap();
        assert!(buf.is_empty());
        assert_eq!(Command::decode(packet).unwrap(), command);
    }

    fn packet(code: u8, payload: &[u8]) -> Packet {
        Packet {
            code,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn every_command_round_trips() {
        let commands = vec![
            Command::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x1f_ffff,
            },
            Command::Macro {
                letter: b'C',
                pairs: vec![
                    MacroPair {
                        name: "j".into(),
                        value: Bytes::from_static(b"mx.example.net"),
                    },
                    MacroPair {
                        name: "daemon_name".into(),
                        value: Bytes::from_static(b"smtpd"),
                    },
                ],
            },
            Command::Macro {
                letter: b'H',
                pairs: vec![],
            },
            Command::Connect {
                hostname: "mail.sender.example".into(),
                address: ClientAddress::Inet {
                    ip: "198.51.100.7".parse().unwrap(),
                    port: 50123,
                },
            },
            Command::Connect {
                hostname: "[2001:db8::1]".into(),
                address: ClientAddress::Inet {
                    ip: "2001:db8::1".parse().unwrap(),
                    port: 25,
                },
            },
            Command::Connect {
                hostname: "localhost".into(),
                address: ClientAddress::Unix {
                    path: "/run/x.sock".into(),
                },
            },
            Command::Connect {
                hostname: "localhost".into(),
                address: ClientAddress::Unknown,
            },
            Command::Helo {
                name: "mail.sender.example".into(),
            },
            Command::Mail {
                sender: "<sender@sender.example>".into(),
                params: vec!["BODY=8BITMIME".into(), "SIZE=1234".into()],
            },
            Command::Mail {
                sender: "<>".into(),
                params: vec![],
            },
            Command::Rcpt {
                recipient: "<alice@example.net>".into(),
                params: vec!["NOTIFY=NEVER".into()],
            },
            Command::Data,
            Command::Header {
                name: "Subject".into(),
                value: Bytes::from_static(b" caf\xe9 in latin-1\n\tfolded"),
            },
            Command::EndOfHeaders,
            Command::Body(Bytes::from_static(b"Hi\r\n.\r\n")),
            Command::EndOfMessage(Bytes::new()),
            Command::EndOfMessage(Bytes::from_static(b"tail")),
            Command::Abort,
            Command::Quit,
            Command::QuitNewConnection,
            Command::Unknown(Bytes::from_static(b"XFOO bar")),
        ];
        for command in commands {
            round_trip(command);
        }
    }

    #[test]
    fn the_byte_level_example_decodes() {
        // Row 4 of the reference session in MILTER-PROTOCOL.md §15.
        let raw = b"mail.sender.example\x004\xc3\xcb198.51.100.7\x00";
        let command = Command::decode(packet(b'C', raw)).unwrap();
        assert_eq!(
            command,
            Command::Connect {
                hostname: "mail.sender.example".into(),
                address: ClientAddress::Inet {
                    ip: "198.51.100.7".parse().unwrap(),
                    port: 50123
                },
            }
        );
    }

    #[test]
    fn mapped_ipv6_is_reported_as_ipv4() {
        let raw = b"h\x004\x00\x19::ffff:192.0.2.1\x00";
        let Command::Connect { address, .. } = Command::decode(packet(b'C', raw)).unwrap() else {
            panic!()
        };
        assert_eq!(
            address,
            ClientAddress::Inet {
                ip: "192.0.2.1".parse().unwrap(),
                port: 25
            }
        );
    }

    #[test]
    fn malformed_macros_are_ignored_not_fatal() {
        for raw in [&b""[..], b"C", b"Cj", b"Cj\0", b"C{x}\0\xff"] {
            assert!(
                matches!(
                    Command::decode(packet(b'D', raw)),
                    Ok(Command::Macro { .. })
                ),
                "{raw:?}"
            );
        }
        let Command::Macro { pairs, .. } =
            Command::decode(packet(b'D', b"M{auth_authen}\0bob\0")).unwrap()
        else {
            panic!()
        };
        assert_eq!(pairs[0].name, "auth_authen");
    }

    #[test]
    fn truncated_fields_name_the_field() {
        let cases: Vec<(u8, &[u8], &str)> = vec![
            (b'O', b"\0\0\0\x06\0\0", "actions"),
            (b'C', b"host", "host name"),
            (b'C', b"host\0", "address family"),
            (b'C', b"host\x004\x00", "port"),
            (b'C', b"host\x004\x00\x19127.0.0.1", "address"),
            (b'H', b"helo", "HELO name"),
            (b'M', b"<a@b>", "address"),
            (b'R', b"<a@b>\0SIZE=1", "ESMTP parameter"),
            (b'L', b"Subject\0hi", "header value"),
            (b'L', b"Subject", "header name"),
        ];
        for (code, raw, field) in cases {
            match Command::decode(packet(code, raw)) {
                Err(ProtocolError::Truncated { field: f, .. }) => assert_eq!(f, field, "{raw:?}"),
                other => panic!("{raw:?}: expected truncation of {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn non_utf8_names_and_addresses_are_refused() {
        let cases: Vec<(u8, &[u8])> = vec![
            (b'M', b"<\xff@example>\0"),
            (b'R', b"<a@example>\0NOTIFY=\xfe\0"),
            (b'L', b"Sub\xffject\0 x\0"),
            (b'C', b"h\x004\0\x19\xff\0"),
        ];
        for (code, raw) in cases {
            assert!(
                matches!(
                    Command::decode(packet(code, raw)),
                    Err(ProtocolError::NotUtf8 { .. })
                ),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn unknown_command_and_bad_payloads() {
        assert!(matches!(
            Command::decode(packet(b'Z', b"")),
            Err(ProtocolError::UnknownCommand { byte: b'Z', .. })
        ));
        assert!(matches!(
            Command::decode(packet(b'A', b"x")),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            Command::decode(packet(b'L', b"\0v\0")),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            Command::decode(packet(b'C', b"h\0X")),
            Err(ProtocolError::Malformed { .. })
        ));
        assert!(matches!(
            Command::decode(packet(b'C', b"h\x004\0\x19not-an-ip\0")),
            Err(ProtocolError::Malformed { .. })
        ));
    }

    #[test]
    fn latin1_header_values_and_helo_survive() {
        let command = Command::decode(packet(b'L', b"Subject\0 caf\xe9\0")).unwrap();
        assert_eq!(
            command,
            Command::Header {
                name: "Subject".into(),
                value: Bytes::from_static(b" caf\xe9")
            }
        );
    }

    #[test]
    fn bare_address_strips_brackets() {
        assert_eq!(bare_address("<a@b>"), "a@b");
        assert_eq!(bare_address("<>"), "");
        assert_eq!(bare_address("a@b"), "a@b");
    }
}

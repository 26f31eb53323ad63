//! A minimal SMTP client for tests: it sends exactly the bytes we choose (dot-stuffed
//! DATA, 8-bit, long lines) and returns every reply, so tests can assert on codes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// The outcome of one transaction: the reply that ended it and everything said.
#[derive(Debug)]
pub struct Outcome {
    pub last: Reply,
    pub transcript: Vec<Reply>,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        self.last.code == 250
    }

    /// Postfix's queue id from "250 2.0.0 Ok: queued as ABC123".
    pub fn queue_id(&self) -> Option<String> {
        self.last
            .text
            .rsplit("queued as ")
            .next()
            .filter(|_| self.accepted())
            .map(|s| s.trim().to_owned())
    }
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Reply {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap_or(0);
        if n == 0 {
            return Reply {
                code: 0,
                text: format!("{text}(connection closed)"),
            };
        }
        text.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            let code = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return Reply { code, text };
        }
    }
}

/// Who the SMTP client claims to be, through Postfix's XCLIENT command (allowed for
/// loopback by the harness): Postfix and the milter then see this address, host
/// name, HELO and optional SASL login instead of 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub addr: &'a str,
    pub name: &'a str,
    pub helo: &'a str,
    pub login: Option<&'a str>,
}

/// Sends one message. `message` uses LF or CRLF line ends; it is sent with CRLF and
/// dot-stuffed. Stops at the first reply that is not 2xx/3xx.
pub fn send(port: u16, from: &str, to: &[&str], message: &[u8]) -> Outcome {
    send_as(port, None, from, to, message)
}

/// Like [`send`], as `peer` when given.
pub fn send_as(
    port: u16,
    peer: Option<Peer<'_>>,
    from: &str,
    to: &[&str],
    message: &[u8],
) -> Outcome {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to Postfix");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut transcript = vec![read_reply(&mut reader)];
    let mut commands = vec!["EHLO client.harness.test\r\n".to_owned()];
    if let Some(p) = peer {
        let login = p.login.map(|l| format!(" LOGIN={l}")).unwrap_or_default();
        commands.push(format!(
            "XCLIENT ADDR={} NAME={}{login}\r\n",
            p.addr, p.name
        ));
        commands.push(format!("EHLO {}\r\n", p.helo));
    }
    commands.push(format!("MAIL FROM:<{from}>\r\n"));
    commands.extend(to.iter().map(|r| format!("RCPT TO:<{r}>\r\n")));
    commands.push("DATA\r\n".to_owned());
    for command in commands {
        writer.write_all(command.as_bytes()).expect("write");
        let reply = read_reply(&mut reader);
        let ok = (200..400).contains(&reply.code);
        transcript.push(reply);
        if !ok {
            return finish(writer, reader, transcript);
        }
    }
    writer.write_all(&dot_stuff(message)).expect("write data");
    writer.write_all(b".\r\n").expect("write end of data");
    transcript.push(read_reply(&mut reader));
    finish(writer, reader, transcript)
}

fn finish(
    mut writer: TcpStream,
    mut reader: BufReader<TcpStream>,
    mut transcript: Vec<Reply>,
) -> Outcome {
    let _ = writer.write_all(b"QUIT\r\n");
    let _ = read_reply(&mut reader);
    let last = transcript.pop().expect("at least the greeting");
    Outcome { last, transcript }
}

/// CRLF line ends, a final line end, and a dot doubled at the start of a line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    for line in lines(message) {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The lines of a message without their line ends (LF or CRLF).
pub fn lines(message: &[u8]) -> Vec<&[u8]> {
    let trimmed = message.strip_suffix(b"\n").unwrap_or(message);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

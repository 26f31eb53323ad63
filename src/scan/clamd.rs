//! Talking to clamd through `clamav-client`: our own transport (a connect time-out,
//! coalesced writes, and a send that survives clamd hanging up early so its error
//! reply can still be read), and the reading of clamd's replies.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use clamav_client::tokio::TransportProtocol;
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::config::ClamdAddr;
use crate::net::Stream;

/// INSTREAM chunk size: large chunks mean few length prefixes and few writes.
pub const CHUNK: usize = 64 * 1024;

/// How one clamd connection is made.
pub struct Connection<'a> {
    pub addr: &'a ClamdAddr,
    pub connect_timeout: Duration,
}

/// Marks an error as having happened while connecting.
#[derive(Debug)]
pub struct ConnectFailure {
    pub timed_out: bool,
    pub detail: String,
}

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ConnectFailure {}

impl TransportProtocol for Connection<'_> {
    type Stream = BufStream<Lenient>;

    async fn connect(&self) -> io::Result<Self::Stream> {
        let connecting = async {
            match self.addr {
                ClamdAddr::Tcp(host_port) => {
                    let s = TcpStream::connect(host_port.as_str()).await?;
                    s.set_nodelay(true)?;
                    Ok::<_, io::Error>(Stream::Tcp(s))
                }
                ClamdAddr::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(connect_error(e.kind(), false, e.to_string())),
            Err(_) => {
                return Err(connect_error(
                    io::ErrorKind::TimedOut,
                    true,
                    format!("no connection within {:?}", self.connect_timeout),
                ));
            }
        };
        Ok(BufStream::with_capacity(
            4096,
            CHUNK + 8,
            Lenient {
                inner: stream,
                send_failed: None,
            },
        ))
    }
}

fn connect_error(kind: io::ErrorKind, timed_out: bool, detail: String) -> io::Error {
    io::Error::new(kind, ConnectFailure { timed_out, detail })
}

/// A stream whose writes pretend to succeed once the peer has hung up, so the reply
/// clamd sent before closing ("INSTREAM size limit exceeded. ERROR") is still read.
pub struct Lenient {
    inner: Stream,
    send_failed: Option<io::ErrorKind>,
}

fn hung_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
    )
}

impl AsyncRead for Lenient {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if this.send_failed.is_some() => Poll::Ready(Err(io::Error::new(
                e.kind(),
                format!("clamd closed the connection while we were sending ({e})"),
            ))),
            other => other,
        }
    }
}

impl AsyncWrite for Lenient {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.send_failed.is_some() {
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) if hung_up(&e) => {
                this.send_failed = Some(e.kind());
                Poll::Ready(Ok(buf.len()))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.send_failed.is_some() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) if hung_up(&e) => {
                this.send_failed = Some(e.kind());
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// What clamd said about one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Clean,
    /// Every signature it named (more than one with `AllMatchScan`).
    Found(Vec<String>),
    /// `INSTREAM size limit exceeded. ERROR`: clamd's StreamMaxLength.
    SizeLimit,
    /// Any other `... ERROR` reply, as clamd wrote it.
    Error(String),
    /// Not a reply clamd gives: empty, cut off, or unknown.
    Malformed(String),
}

/// Reads an INSTREAM reply (`z` commands: each line ends with NUL).
pub fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let lines: Vec<&str> = text
        .split(['\0', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Reply::Malformed("an empty reply (clamd closed the connection)".into());
    }
    let mut found = Vec::new();
    for line in &lines {
        if line.contains("size limit exceeded") {
            return Reply::SizeLimit;
        }
        if let Some(rest) = line.strip_suffix(" ERROR") {
            return Reply::Error(shown(rest.strip_prefix("stream: ").unwrap_or(rest)));
        }
        if let Some(name) = line
            .strip_prefix("stream: ")
            .and_then(|l| l.strip_suffix(" FOUND"))
        {
            found.push(shown(name));
        } else if *line != "stream: OK" {
            return Reply::Malformed(format!("unexpected reply {:?}", shown(line)));
        }
    }
    if found.is_empty() {
        Reply::Clean
    } else {
        Reply::Found(found)
    }
}

/// Text from clamd, kept printable and short for logs and SMTP replies.
fn shown(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `ClamAV 1.4.6/27475/Mon Nov 23 09:00:00 2026` → `ClamAV 1.4.6/27475`.
pub fn short_version(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if !text.starts_with("ClamAV ") {
        return None;
    }
    Some(shown(
        &text.splitn(3, '/').take(2).collect::<Vec<_>>().join("/"),
    ))
}

/// The signature database's version and date from clamd's `VERSION` answer
/// ("ClamAV 1.4.6/27475/Mon Nov 23 09:00:00 2026"): the date as Unix time,
/// read as UTC (clamd prints its local time; hours do not matter for an age
/// in days).
pub fn signatures(raw: &[u8]) -> Option<(i64, i64)> {
    let text = String::from_utf8_lossy(raw);
    let mut parts = text
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .splitn(3, '/');
    parts.next()?.strip_prefix("ClamAV ")?;
    let version: i64 = parts.next()?.trim().parse().ok()?;
    let date: Vec<&str> = parts.next()?.split_whitespace().collect();
    let [_, month, day, time, year] = date.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let days = crate::calendar::days_from_civil(year, month, day);
    Some((version, days * 86_400 + h * 3_600 + m * 60 + sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_dates() {
        assert_eq!(
            signatures(b"ClamAV 1.4.6/27475/Thu Dec  3 09:00:00 2026\0"),
            Some((27475, 1_796_288_400))
        );
        assert_eq!(
            signatures(b"ClamAV 1.0.0/1/Thu Jan  1 00:00:00 1970"),
            Some((1, 0))
        );
        assert_eq!(signatures(b"ClamAV 1.4.6"), None);
        assert_eq!(signatures(b"ClamAV 1.4.6/x/Thu Dec  3 09:00:00 2026"), None);
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply(b"stream: OK\0"), Reply::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0"),
            Reply::Found(vec!["Win.Test.EICAR_HDB-1".into()])
        );
        assert_eq!(
            parse_reply(b"stream: A FOUND\0stream: B.UNOFFICIAL FOUND\0"),
            Reply::Found(vec!["A".into(), "B.UNOFFICIAL".into()])
        );
        assert_eq!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Reply::SizeLimit
        );
        assert_eq!(
            parse_reply(b"stream: Can't allocate memory ERROR\0"),
            Reply::Error("Can't allocate memory".into())
        );
        assert!(matches!(parse_reply(b""), Reply::Malformed(_)));
        assert!(matches!(parse_reply(b"PONG\0"), Reply::Malformed(_)));
        assert!(matches!(
            parse_reply(b"stream: Evil\x07 FOUNDX"),
            Reply::Malformed(m) if !m.contains('\x07')
        ));
    }

    #[test]
    fn versions() {
        assert_eq!(
            short_version(b"ClamAV 1.4.6/27475/Mon Nov 23 09:00:00 2026\0").as_deref(),
            Some("ClamAV 1.4.6/27475")
        );
        assert_eq!(
            short_version(b"ClamAV 1.4.6\0").as_deref(),
            Some("ClamAV 1.4.6")
        );
        assert_eq!(short_version(b"hello"), None);
    }
}

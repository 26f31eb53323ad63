//! Where log lines go besides standard error: journald natively when systemd
//! connected our standard error to the journal (priorities per level, fields
//! such as QUEUE_ID and VERDICT as journal fields, no timestamp of ours beside
//! the journal's), and a syslog socket (`[log] syslog = true`) with a facility,
//! for sites that keep syslog files.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// Whether standard error is the journal stream systemd gave us
/// (`JOURNAL_STREAM` is `DEV:INODE` of that stream; a child process whose
/// standard error went elsewhere inherits the variable but not the stream).
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    // SAFETY: fstat on fd 2 with a zeroed stat buffer it fills in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

/// The journald layer: `None` (said on standard error) when journald's socket
/// does not answer.
pub fn journald() -> Option<tracing_journald::Layer> {
    use tracing_journald::{Priority, PriorityMappings};
    match tracing_journald::layer() {
        Ok(layer) => Some(
            layer
                .with_field_prefix(None)
                .with_syslog_identifier("mailwarden".into())
                .with_priority_mappings(PriorityMappings {
                    error: Priority::Error,
                    warn: Priority::Warning,
                    info: Priority::Informational,
                    debug: Priority::Debug,
                    trace: Priority::Debug,
                }),
        ),
        Err(e) => {
            eprintln!("journald does not answer ({e}); logging to standard error");
            None
        }
    }
}

/// RFC 5424 severity for a tracing level.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Lines to a syslog socket, one datagram each: `<PRI>mailwarden[PID]: line`
/// (the syslog daemon adds the time and host).
pub struct Syslog {
    socket: UnixDatagram,
    facility: u8,
    pid: u32,
}

impl Syslog {
    pub fn connect(path: &Path, facility: u8) -> std::io::Result<Syslog> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Syslog {
            socket,
            facility,
            pid: std::process::id(),
        })
    }
}

pub struct SyslogLine<'a> {
    sink: &'a Syslog,
    priority: u8,
}

impl Write for SyslogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = buf.strip_suffix(b"\n").unwrap_or(buf);
        let mut datagram =
            format!("<{}>mailwarden[{}]: ", self.priority, self.sink.pid).into_bytes();
        datagram.extend_from_slice(line);
        // A syslog daemon that is away loses the line, never the message.
        let _ = self.sink.socket.send(&datagram);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogLine<'a>;

    fn make_writer(&'a self) -> SyslogLine<'a> {
        SyslogLine {
            sink: self,
            priority: self.facility * 8 + 6,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> SyslogLine<'a> {
        SyslogLine {
            sink: self,
            priority: self.facility * 8 + severity(meta.level()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_carry_facility_and_severity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let sink = Syslog::connect(&path, 2).unwrap();
        let meta = tracing::Level::WARN;
        let mut w = SyslogLine {
            sink: &sink,
            priority: sink.facility * 8 + severity(&meta),
        };
        w.write_all(b"message decided verdict=\"accept\"\n")
            .unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert_eq!(
            got,
            format!(
                "<20>mailwarden[{}]: message decided verdict=\"accept\"",
                std::process::id()
            )
        );
    }
}

//! The fields of a text log line, written byte for byte as tracing-subscriber's
//! `DefaultFields` writes them without colours (a test holds the two together),
//! but without the `core::fmt` and colour plumbing it spends on every field name
//! and `=` sign. That plumbing was about 40% of the decision line, and the line a
//! quarter of the instructions the daemon spends on an accepted message. The
//! message field and errors still go through tracing-subscriber's own visitor,
//! which also escapes terminal control sequences in the message. Used only when
//! the log has no ANSI colours.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};

pub struct LineFields;

impl<'w> MakeVisitor<Writer<'w>> for LineFields {
    type Visitor = LineVisitor<'w>;

    fn make_visitor(&self, target: Writer<'w>) -> LineVisitor<'w> {
        LineVisitor {
            writer: target,
            is_empty: true,
            result: Ok(()),
        }
    }
}

pub struct LineVisitor<'w> {
    writer: Writer<'w>,
    /// Nothing written yet, so the next field needs no separating space.
    is_empty: bool,
    result: fmt::Result,
}

/// Whether `Debug` writes `value` as itself in quotes: printable ASCII with no
/// quote or backslash, so nothing is escaped.
fn debug_is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

impl LineVisitor<'_> {
    /// Fields `DefaultVisitor` leaves out: `log.` metadata of events from the `log`
    /// crate, already shown in the line's own columns.
    fn skipped(&self, field: &Field) -> bool {
        self.result.is_err() || field.name().starts_with("log.")
    }

    /// Hands one field to tracing-subscriber's visitor.
    fn delegate(&mut self, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        self.is_empty = false;
    }

    /// The separating space, the name (without a raw identifier's `r#`) and `=`.
    fn name(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        let name = field.name();
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')
    }
}

impl Visit for LineVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.skipped(field) {
            return;
        }
        if field.name() == "message" {
            return self.delegate(|v| v.record_str(field, value));
        }
        let written = self.name(field).and_then(|()| {
            if debug_is_plain(value) {
                self.writer.write_char('"')?;
                self.writer.write_str(value)?;
                self.writer.write_char('"')
            } else {
                write!(self.writer, "{value:?}")
            }
        });
        self.result = written;
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.skipped(field) {
            return;
        }
        self.delegate(|v| v.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skipped(field) {
            return;
        }
        if field.name() == "message" {
            return self.delegate(|v| v.record_debug(field, value));
        }
        let written = self
            .name(field)
            .and_then(|()| write!(self.writer, "{value:?}"));
        self.result = written;
    }
}

impl VisitOutput<fmt::Result> for LineVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for LineVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing::{info, warn};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::DefaultFields;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure;

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it \"failed\"\nbadly")
        }
    }

    impl std::error::Error for Failure {}

    /// Every kind of field and value the daemon logs, and the awkward ones.
    fn events() {
        info!("message decided");
        info!(
            queue_id = "L000200000001",
            session = 3u64,
            client_ip = "127.0.0.1",
            client_name = %"client.load.test",
            helo = "client \"quoted\" \\ back",
            from = "",
            rcpt = %"a@example.net,b@example.net",
            size = 4779usize,
            verdict = "accept",
            reason = %"line one\nline two; rule x",
            duration_ms = 65.41516f64,
            "message decided"
        );
        info!(
            helo = "tab\there",
            name = "Ünïcödé ☃",
            bell = "\u{7}\u{1b}[31m",
            delete = "\u{7f}",
            zero_width = "a\u{200b}b",
            combining = "e\u{301}",
            negative = -12i64,
            flag = true,
            ratio = 0.1f64 + 0.2f64,
            big = u128::MAX,
            "fields of every kind"
        );
        info!(r#type = "raw", "raw identifier");
        info!(log.target = "metadata", other = "kept", "a log field");
        warn!(
            error = &Failure as &(dyn std::error::Error + 'static),
            "with an error"
        );
        info!("a message with {} and \u{1b}[31m escape", "args");
        info!(first = "no message at all");
        info!(message = "an explicit message field", after = 1);
        info!(debug = ?Some("x\"y"), bytes = ?b"\x00ab", "debug values");
    }

    fn output<N>(fields: N) -> String
    where
        N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        let sink = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(fields)
            .with_writer(sink.clone())
            .with_ansi(false)
            .with_target(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, events);
        let bytes = sink.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn lines_are_byte_for_byte_what_default_fields_writes() {
        let ours = output(LineFields);
        let theirs = output(DefaultFields::new());
        let events = ours
            .lines()
            .filter(|l| {
                ["INFO ", "WARN "]
                    .iter()
                    .any(|p| l.trim_start().starts_with(p))
            })
            .count();
        assert_eq!(events, 10, "{ours}");
        for (a, b) in ours.lines().zip(theirs.lines()) {
            assert_eq!(a, b);
        }
        assert_eq!(ours, theirs);
        // The cases that matter are really in there.
        assert!(
            ours.contains(r#"helo="client \"quoted\" \\ back""#),
            "{ours}"
        );
        assert!(ours.contains("type=\"raw\""), "{ours}");
        assert!(!ours.contains("metadata"), "{ours}");
    }
}

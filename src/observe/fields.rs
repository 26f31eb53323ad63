//! The fields of a text log line, written as tracing-subscriber's `DefaultFields`
//! writes them without colours (a test holds the two together), but without the
//! `core::fmt` and colour plumbing it spends on every field name and `=` sign (about
//! 40% of the decision line), and with one difference that matters: no control
//! character reaches the log raw. Text from the mail (a recipient, a reason, an
//! error from clamd) may hold a line break, and a line break in a log line forges
//! the next line; every control character in a message, an error or a value is
//! written escaped (`\n`, `\r`, `\t`, `\u{1b}`). Used when the log has no ANSI
//! colours.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

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

/// A writer that escapes every control character (C0, DEL, C1) on its way through.
struct EscapeControls<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for EscapeControls<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.chars().any(char::is_control) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c if c.is_control() => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
                c => self.0.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl LineVisitor<'_> {
    /// Fields `DefaultVisitor` leaves out: `log.` metadata of events from the `log`
    /// crate, already shown in the line's own columns.
    fn skipped(&self, field: &Field) -> bool {
        self.result.is_err() || field.name().starts_with("log.")
    }

    /// The message: no name, its text as written, control characters escaped.
    fn message(&mut self, value: &dyn fmt::Debug) {
        let written = if self.is_empty {
            Ok(())
        } else {
            self.writer.write_char(' ')
        };
        self.is_empty = false;
        self.result = written.and_then(|()| write!(EscapeControls(&mut self.writer), "{value:?}"));
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
            return self.message(&format_args!("{value}"));
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
        let written = self.name(field).and_then(|()| {
            write!(EscapeControls(&mut self.writer), "{value}")?;
            let mut source = value.source();
            if source.is_some() {
                write!(self.writer, " {}.sources=[", field.name())?;
            }
            let mut first = true;
            while let Some(s) = source {
                if !first {
                    self.writer.write_str(", ")?;
                }
                first = false;
                write!(EscapeControls(&mut self.writer), "{s}")?;
                source = s.source();
            }
            if !first {
                self.writer.write_char(']')?;
            }
            Ok(())
        });
        self.result = written;
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.skipped(field) {
            return;
        }
        if field.name() == "message" {
            return self.message(value);
        }
        let written = self
            .name(field)
            .and_then(|()| write!(EscapeControls(&mut self.writer), "{value:?}"));
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
    struct Failure(&'static str);

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failure {}

    /// Every kind of field and value the daemon logs, and the awkward ones that
    /// hold no control character.
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
            reason = "one; rule x",
            duration_ms = 65.41516f64,
            "message decided"
        );
        info!(
            name = "Ünïcödé ☃",
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
            error = &Failure("it \"failed\" badly") as &(dyn std::error::Error + 'static),
            "with an error"
        );
        info!("a message with {} in it", "args");
        info!(first = "no message at all");
        info!(message = "an explicit message field", after = 1);
        info!(debug = ?Some("x\"y"), bytes = ?b"ab", "debug values");
    }

    /// What a client can put in the fields: line breaks, a forged second decision
    /// line, terminal escapes, DEL, C1 controls; in values of every kind, in the
    /// message and in an error.
    fn hostile_events() {
        let forged = "bob@dest.test\n2026-12-03T00:00:00Z  INFO message decided verdict=\"accept\"";
        info!(
            rcpt = %forged,
            client_name = %"evil\r\nname",
            helo = "tab\there\u{7}\u{1b}[31m\u{7f}\u{85}",
            reason = forged,
            debug = ?"x\ny",
            "message decided"
        );
        info!("a message that says {}", forged);
        warn!(
            error = &Failure("clamd said\nINSTREAM size limit exceeded\r\n")
                as &(dyn std::error::Error + 'static),
            "scan failed"
        );
    }

    fn output<N>(fields: N) -> String
    where
        N: for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static,
    {
        output_of(fields, events)
    }

    fn output_of<N>(fields: N, events: fn()) -> String
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

    /// Defect 7 of the hardening review: a line break in a recipient forged a
    /// second decision line. Every event is one line, with no control character.
    #[test]
    fn no_control_character_reaches_the_log_raw() {
        let ours = output_of(LineFields, hostile_events);
        assert_eq!(ours.lines().count(), 3, "{ours}");
        let decisions = ours
            .lines()
            .filter(|l| l.trim_start().starts_with("INFO message decided"))
            .count();
        assert_eq!(decisions, 1, "{ours}");
        for line in ours.lines() {
            assert!(!line.chars().any(char::is_control), "{line}");
        }
        assert!(ours.contains(r"rcpt=bob@dest.test\n2026-12-03"), "{ours}");
        assert!(ours.contains(r#"reason="bob@dest.test\n2026"#), "{ours}");
        assert!(ours.contains(r"client_name=evil\r\nname"), "{ours}");
        assert!(
            ours.contains(r"clamd said\nINSTREAM size limit exceeded\r\n"),
            "{ours}"
        );
    }
}

//! Logging: `tracing` to standard error, as human-readable text or JSON lines, with a
//! level filter that a reload can change. Every message decision is one event.
//!
//! Lines are written in batches: a session appends its formatted line to a buffer and
//! goes on, and a writer thread puts what gathered in the next few milliseconds on
//! standard error with one `write`. Under load that is one write (and one wake-up of
//! journald) per batch instead of per message, and a session never waits on a slow
//! journald until a full mebibyte of lines is waiting. No line is dropped: past that,
//! the session writes the backlog itself, in order.

mod alert_sinks;
pub mod alerts;
mod fields;
pub mod fleet_counts;
mod json;
pub mod metrics;
mod sinks;

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::{LogConfig, LogFormat};

/// Lets a reload change the level filter of the running subscriber. Dropping it
/// writes every line still waiting, and later lines go out one by one.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
    batch: &'static LineBatch,
}

impl Drop for LogHandle {
    fn drop(&mut self) {
        self.batch.close();
    }
}

/// How long the writer thread lets lines gather before it writes them.
const BATCH_WINDOW: Duration = Duration::from_millis(5);
/// After this many windows without a line the writer sleeps until the next one, so
/// an idle daemon has no timer waking it; under steady traffic it never does, and no
/// session pays for waking it.
const QUIET_WINDOWS: u32 = 20;
/// Past this many waiting bytes the logging session writes them itself.
const MAX_WAITING: usize = 1 << 20;

/// Lines waiting for the writer thread. Lock order: `waiting`, then `output`; whoever
/// takes lines out of `waiting` holds `output` before letting go of `waiting`, so
/// lines reach standard error in the order they were logged.
struct LineBatch {
    waiting: Mutex<Waiting>,
    arrived: Condvar,
    output: Mutex<Box<dyn Write + Send>>,
}

struct Waiting {
    lines: Vec<u8>,
    /// No writer thread (it could not start, or logging is closing): write at once.
    direct: bool,
    /// The writer sleeps until a line arrives: the next line wakes it.
    parked: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bytes behind: still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LineBatch {
    /// Starts the writer thread for `output` (standard error in the daemon).
    fn start(output: Box<dyn Write + Send>) -> &'static LineBatch {
        let batch: &'static LineBatch = Box::leak(Box::new(LineBatch {
            waiting: Mutex::new(Waiting {
                lines: Vec::new(),
                direct: false,
                parked: false,
            }),
            arrived: Condvar::new(),
            output: Mutex::new(output),
        }));
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || batch.run());
        if let Err(e) = spawned {
            lock(&batch.waiting).direct = true;
            eprintln!("log writer thread not started ({e}); writing log lines one by one");
        }
        batch
    }

    /// The writer thread: every window, writes what has gathered; after
    /// [`QUIET_WINDOWS`] empty ones, sleeps until a line arrives.
    fn run(&self) {
        let mut spare = Vec::new();
        let mut quiet = 0;
        loop {
            std::thread::sleep(BATCH_WINDOW);
            let mut waiting = lock(&self.waiting);
            if !waiting.lines.is_empty() {
                quiet = 0;
                std::mem::swap(&mut waiting.lines, &mut spare);
                let _ = self.write_in_order(waiting, &spare);
                spare.clear();
                continue;
            }
            if waiting.direct {
                return;
            }
            quiet += 1;
            if quiet < QUIET_WINDOWS {
                continue;
            }
            quiet = 0;
            waiting.parked = true;
            while waiting.lines.is_empty() && !waiting.direct {
                waiting = self
                    .arrived
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            waiting.parked = false;
        }
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        let mut waiting = lock(&self.waiting);
        if waiting.direct || waiting.lines.len() + line.len() > MAX_WAITING {
            let mut backlog = std::mem::take(&mut waiting.lines);
            backlog.extend_from_slice(line);
            return self.write_in_order(waiting, &backlog);
        }
        if waiting.parked {
            waiting.parked = false;
            self.arrived.notify_one();
        }
        waiting.lines.extend_from_slice(line);
        Ok(())
    }

    /// Writes what is waiting and switches to writing each line at once.
    fn close(&self) {
        let mut waiting = lock(&self.waiting);
        waiting.direct = true;
        let backlog = std::mem::take(&mut waiting.lines);
        self.arrived.notify_one();
        let _ = self.write_in_order(waiting, &backlog);
    }

    /// Writes `lines`, taken out of `waiting`: takes `output` before letting go of
    /// `waiting`, so no line logged later can reach the output first.
    fn write_in_order(
        &self,
        waiting: MutexGuard<'_, Waiting>,
        lines: &[u8],
    ) -> std::io::Result<()> {
        let mut output = lock(&self.output);
        drop(waiting);
        output.write_all(lines).and_then(|()| output.flush())
    }
}

/// What the fmt layer writes each event to: it formats the whole line first and
/// hands it over in one `write`.
struct BatchWriter(&'static LineBatch);

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogHandle {
    /// Applies a new `[log] level`, unless `RUST_LOG` set it at start.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        if self.from_env {
            return Ok(());
        }
        let filter = EnvFilter::builder()
            .parse(level)
            .map_err(|e| e.to_string())?;
        self.filter.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the config.
/// Lines go to the syslog socket with `[log] syslog = true`; else to journald
/// natively when standard error is systemd's journal stream (text format);
/// else to standard error, without our timestamp when journald keeps its own.
pub fn init(log: &LogConfig) -> LogHandle {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = EnvFilter::builder()
        .parse(env.as_deref().unwrap_or(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    let batch = LineBatch::start(Box::new(std::io::stderr()));
    let out = LogHandle {
        filter: handle,
        from_env: env.is_some(),
        batch,
    };
    if let Some(facility) = log.syslog {
        match sinks::Syslog::connect(&log.syslog_socket, facility) {
            Ok(sink) => {
                registry
                    .with(
                        fmt::layer()
                            .fmt_fields(fields::LineFields)
                            .with_writer(sink)
                            .with_ansi(false)
                            .with_target(false)
                            .without_time(),
                    )
                    .init();
                return out;
            }
            Err(e) => eprintln!(
                "syslog socket {}: {e}; logging to standard error",
                log.syslog_socket.display()
            ),
        }
    }
    let journal = sinks::stderr_is_journal();
    if journal
        && log.format == LogFormat::Text
        && let Some(layer) = sinks::journald()
    {
        registry.with(layer).init();
        return out;
    }
    let writer = move || BatchWriter(batch);
    match log.format {
        LogFormat::Text if ansi => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_ansi(true)
                    .with_target(false),
            )
            .init(),
        // The journal stamps each line itself.
        LogFormat::Text if journal => registry
            .with(
                fmt::layer()
                    .fmt_fields(fields::LineFields)
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_target(false)
                    .without_time(),
            )
            .init(),
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .fmt_fields(fields::LineFields)
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_target(false),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .event_format(json::JsonLines)
                    .with_writer(writer),
            )
            .init(),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batched_lines_arrive_whole_in_order_and_none_is_lost() {
        let sink = Shared::default();
        let batch = LineBatch::start(Box::new(sink.clone()));
        // Lines large enough that some appends find a mebibyte waiting and write
        // the backlog themselves.
        let pad = "x".repeat(3000);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let pad = pad.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        BatchWriter(batch)
                            .write_all(format!("{t} {i} {pad}\n").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        batch.close();
        BatchWriter(batch).write_all(b"after close\n").unwrap();
        let text = String::from_utf8(lock(&sink.0).clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4001);
        assert_eq!(lines.last(), Some(&"after close"));
        let mut next = [0; 4];
        for line in &lines[..4000] {
            let mut fields = line.split(' ');
            let t: usize = fields.next().unwrap().parse().unwrap();
            let i: usize = fields.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            assert_eq!(fields.next(), Some(pad.as_str()));
            next[t] += 1;
        }
    }

    #[test]
    fn a_line_reaches_the_output_within_the_batch_window() {
        let sink = Shared::default();
        let batch = LineBatch::start(Box::new(sink.clone()));
        BatchWriter(batch).write_all(b"one\n").unwrap();
        wait_for_output(&sink, b"one\n");
    }

    #[test]
    fn a_line_after_a_quiet_spell_wakes_the_sleeping_writer() {
        let sink = Shared::default();
        let batch = LineBatch::start(Box::new(sink.clone()));
        let parked = std::time::Instant::now() + Duration::from_secs(2);
        while !lock(&batch.waiting).parked && std::time::Instant::now() < parked {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            lock(&batch.waiting).parked,
            "the idle writer never went to sleep"
        );
        BatchWriter(batch).write_all(b"after a while\n").unwrap();
        wait_for_output(&sink, b"after a while\n");
    }

    fn wait_for_output(sink: &Shared, expected: &[u8]) {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while lock(&sink.0).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(lock(&sink.0).as_slice(), expected);
    }
}

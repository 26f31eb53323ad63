//! Malware scanning through clamd (INSTREAM, chunked): bounded concurrency, a
//! connect time-out and one deadline per message that covers waiting for a free
//! slot, connecting, sending and the verdict, and every failure sorted into a class
//! so that nothing clamd could not scan is mistaken for clean.

pub mod clamd;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::{AntivirusConfig, ClamdAddr};
use clamd::{Connection, Reply};

/// Why clamd gave no verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing listens (refused, no such socket, unresolvable host).
    Unreachable,
    /// No connection within `connect_timeout`.
    ConnectTimeout,
    /// No verdict within `scan_timeout`.
    Timeout,
    /// Every scan slot stayed busy until the deadline.
    Busy,
    /// clamd's StreamMaxLength is smaller than what we sent.
    SizeLimit,
    /// clamd answered with an error.
    ErrorReply,
    /// clamd answered something that is not a reply.
    Malformed,
    /// The connection failed after it was made.
    Io,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Unreachable,
        ErrorClass::ConnectTimeout,
        ErrorClass::Timeout,
        ErrorClass::Busy,
        ErrorClass::SizeLimit,
        ErrorClass::ErrorReply,
        ErrorClass::Malformed,
        ErrorClass::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::ConnectTimeout => "connect_timeout",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Busy => "busy",
            ErrorClass::SizeLimit => "size_limit",
            ErrorClass::ErrorReply => "error_reply",
            ErrorClass::Malformed => "malformed_reply",
            ErrorClass::Io => "io",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub class: ErrorClass,
    pub detail: String,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "clamd {}: {}", self.class.as_str(), self.detail)
    }
}

/// One thing clamd found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub signature: String,
    /// The attachment it was in, when scanning attachments one by one.
    pub file: Option<String>,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{} in {file}", self.signature),
            None => f.write_str(&self.signature),
        }
    }
}

/// The result of scanning one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    Infected(Vec<Found>),
    /// Larger than `max_size`: not sent.
    Oversize {
        size: u64,
    },
    Error(ScanError),
}

/// What is sent to clamd: one stream, or several named ones.
pub enum Streams<'a> {
    Whole(&'a [u8]),
    Parts(Vec<(String, std::borrow::Cow<'a, [u8]>)>),
}

/// How long a known engine version is shown before it is asked again.
const VERSION_TTL: Duration = Duration::from_secs(600);

pub struct Scanner {
    addr: ClamdAddr,
    slots: Semaphore,
    max_concurrent: u32,
    connect_timeout: Duration,
    scan_timeout: Duration,
    max_size: usize,
    version: Mutex<Option<(Instant, String)>>,
    errors: [AtomicU64; ErrorClass::ALL.len()],
}

impl Scanner {
    pub fn new(config: &AntivirusConfig) -> Scanner {
        Scanner {
            addr: config.clamd.clone(),
            slots: Semaphore::new(config.max_concurrent_scans as usize),
            max_concurrent: config.max_concurrent_scans,
            connect_timeout: config.connect_timeout,
            scan_timeout: config.scan_timeout,
            max_size: config.max_size,
            version: Mutex::new(None),
            errors: Default::default(),
        }
    }

    pub fn addr(&self) -> &ClamdAddr {
        &self.addr
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Scans `size` bytes of message given as `streams`, all within one deadline.
    pub async fn scan(&self, size: u64, streams: Streams<'_>) -> Outcome {
        if size > self.max_size as u64 {
            return Outcome::Oversize { size };
        }
        let deadline = tokio::time::Instant::now() + self.scan_timeout;
        let outcome = self.scan_until(deadline, streams).await;
        if let Outcome::Error(e) = &outcome {
            self.errors[e.class as usize].fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    async fn scan_until(&self, deadline: tokio::time::Instant, streams: Streams<'_>) -> Outcome {
        let _slot = match tokio::time::timeout_at(deadline, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => unreachable!("the scan semaphore is never closed"),
            Err(_) => {
                return Outcome::Error(ScanError {
                    class: ErrorClass::Busy,
                    detail: format!(
                        "all {} scan slots (max_concurrent_scans) stayed busy for {:?}",
                        self.max_concurrent, self.scan_timeout
                    ),
                });
            }
        };
        let parts = match streams {
            Streams::Whole(data) => vec![(None, std::borrow::Cow::Borrowed(data))],
            Streams::Parts(parts) => parts.into_iter().map(|(n, d)| (Some(n), d)).collect(),
        };
        let mut found = Vec::new();
        for (file, data) in parts {
            match self.instream(deadline, &data).await {
                Ok(Reply::Clean) => {}
                Ok(Reply::Found(names)) => found.extend(names.into_iter().map(|signature| Found {
                    signature,
                    file: file.clone(),
                })),
                Ok(other) => return Outcome::Error(reply_error(other)),
                Err(e) => return Outcome::Error(e),
            }
        }
        if found.is_empty() {
            Outcome::Clean
        } else {
            Outcome::Infected(found)
        }
    }

    async fn instream(
        &self,
        deadline: tokio::time::Instant,
        data: &[u8],
    ) -> Result<Reply, ScanError> {
        let connection = self.connection();
        let scanning = clamav_client::tokio::scan_buffer(data, connection, Some(clamd::CHUNK));
        match tokio::time::timeout_at(deadline, scanning).await {
            Ok(Ok(raw)) => Ok(clamd::parse_reply(&raw)),
            Ok(Err(e)) => Err(io_error(&e)),
            Err(_) => Err(ScanError {
                class: ErrorClass::Timeout,
                detail: format!("no verdict within {:?} (scan_timeout)", self.scan_timeout),
            }),
        }
    }

    /// The engine and signature version for the `X-Virus-Scanned` header, asked of
    /// clamd at most every ten minutes; `None` until clamd has told us once.
    pub async fn version(&self) -> Option<String> {
        let known = self.version.lock().ok().and_then(|v| v.clone());
        if let Some((at, v)) = &known
            && at.elapsed() < VERSION_TTL
        {
            return Some(v.clone());
        }
        match self.ask_version().await {
            Ok(v) => {
                if let Ok(mut slot) = self.version.lock() {
                    *slot = Some((Instant::now(), v.clone()));
                }
                Some(v)
            }
            Err(_) => known.map(|(_, v)| v),
        }
    }

    /// `VERSION`, bounded by the connect time-out.
    pub async fn ask_version(&self) -> Result<String, ScanError> {
        let connection = self.connection();
        let asking = clamav_client::tokio::get_version(connection);
        match tokio::time::timeout(self.connect_timeout * 2, asking).await {
            Ok(Ok(raw)) => {
                if let Some((version, date)) = clamd::signatures(&raw) {
                    let m = crate::observe::metrics::metrics();
                    m.clamd_signatures_version.set(version);
                    m.clamd_signatures_timestamp.set(date);
                }
                clamd::short_version(&raw).ok_or_else(|| ScanError {
                    class: ErrorClass::Malformed,
                    detail: format!(
                        "VERSION answered {:?}",
                        String::from_utf8_lossy(&raw)
                            .chars()
                            .take(80)
                            .collect::<String>()
                    ),
                })
            }
            Ok(Err(e)) => Err(io_error(&e)),
            Err(_) => Err(ScanError {
                class: ErrorClass::Timeout,
                detail: "no VERSION reply".into(),
            }),
        }
    }

    /// `PING`: `Ok` when clamd answers `PONG`.
    pub async fn ping(&self) -> Result<(), ScanError> {
        let connection = self.connection();
        match tokio::time::timeout(
            self.connect_timeout * 2,
            clamav_client::tokio::ping(connection),
        )
        .await
        {
            Ok(Ok(raw)) if raw == clamav_client::PONG => Ok(()),
            Ok(Ok(raw)) => Err(ScanError {
                class: ErrorClass::Malformed,
                detail: format!("PING answered {:?}", String::from_utf8_lossy(&raw)),
            }),
            Ok(Err(e)) => Err(io_error(&e)),
            Err(_) => Err(ScanError {
                class: ErrorClass::Timeout,
                detail: "no PONG".into(),
            }),
        }
    }

    /// How each clamd connection is made.
    fn connection(&self) -> Connection<'_> {
        Connection {
            addr: &self.addr,
            connect_timeout: self.connect_timeout,
        }
    }

    /// Scan errors so far, by class.
    pub fn error_counts(&self) -> Vec<(ErrorClass, u64)> {
        ErrorClass::ALL
            .iter()
            .map(|c| (*c, self.errors[*c as usize].load(Ordering::Relaxed)))
            .collect()
    }
}

fn reply_error(reply: Reply) -> ScanError {
    match reply {
        Reply::SizeLimit => ScanError {
            class: ErrorClass::SizeLimit,
            detail: "INSTREAM size limit exceeded: clamd's StreamMaxLength is smaller than antivirus.max_size".into(),
        },
        Reply::Error(text) => ScanError {
            class: ErrorClass::ErrorReply,
            detail: text,
        },
        Reply::Malformed(text) => ScanError {
            class: ErrorClass::Malformed,
            detail: text,
        },
        Reply::Clean | Reply::Found(_) => unreachable!("verdicts are not errors"),
    }
}

fn io_error(e: &std::io::Error) -> ScanError {
    if let Some(failure) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<clamd::ConnectFailure>())
    {
        return ScanError {
            class: if failure.timed_out {
                ErrorClass::ConnectTimeout
            } else {
                ErrorClass::Unreachable
            },
            detail: format!("cannot connect: {failure}"),
        };
    }
    ScanError {
        class: ErrorClass::Io,
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OnInfected, OnOversize, OnScanError, ScanMode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn config(port: u16, slots: u32, scan_ms: u64) -> AntivirusConfig {
        AntivirusConfig {
            clamd: ClamdAddr::Tcp(format!("127.0.0.1:{port}")),
            on_infected: OnInfected::Reject,
            on_error: OnScanError::Tempfail,
            on_oversize: OnOversize::Accept,
            max_size: 1 << 20,
            max_concurrent_scans: slots,
            connect_timeout: Duration::from_millis(scan_ms),
            scan_timeout: Duration::from_millis(scan_ms),
            mode: ScanMode::Message,
            header: true,
        }
    }

    /// An in-process stand-in for clamd that checks INSTREAM framing and answers
    /// with `reply`, or never answers when `reply` is `None`.
    async fn fake_clamd(reply: Option<&'static [u8]>) -> (u16, tokio::sync::mpsc::Receiver<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut command = [0u8; 10];
                    s.read_exact(&mut command).await.unwrap();
                    assert_eq!(&command, b"zINSTREAM\0");
                    let mut total = 0;
                    loop {
                        let len = s.read_u32().await.unwrap() as usize;
                        if len == 0 {
                            break;
                        }
                        assert!(len <= clamd::CHUNK, "chunk of {len}");
                        let mut chunk = vec![0; len];
                        s.read_exact(&mut chunk).await.unwrap();
                        total += len;
                    }
                    tx.send(total).await.unwrap();
                    match reply {
                        Some(r) => s.write_all(r).await.unwrap(),
                        None => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        (port, rx)
    }

    #[tokio::test]
    async fn streams_in_chunks_and_reads_the_verdict() {
        let (port, mut sizes) = fake_clamd(Some(b"stream: Eicar-Test FOUND\0")).await;
        let scanner = Scanner::new(&config(port, 2, 2000));
        let data = vec![b'a'; 200_000];
        let outcome = scanner.scan(200_000, Streams::Whole(&data)).await;
        assert_eq!(
            outcome,
            Outcome::Infected(vec![Found {
                signature: "Eicar-Test".into(),
                file: None
            }])
        );
        assert_eq!(sizes.recv().await, Some(200_000));
        assert_eq!(
            scanner.scan(2 << 20, Streams::Whole(b"")).await,
            Outcome::Oversize { size: 2 << 20 }
        );
    }

    #[tokio::test]
    async fn a_silent_clamd_times_out_and_a_full_queue_is_busy() {
        let (port, _sizes) = fake_clamd(None).await;
        let scanner = Scanner::new(&config(port, 1, 300));
        let started = std::time::Instant::now();
        let class = |o: Outcome| match o {
            Outcome::Error(e) => e.class,
            other => panic!("{other:?}"),
        };
        let timed_out = scanner.scan(5, Streams::Whole(b"hello")).await;
        assert_eq!(class(timed_out), ErrorClass::Timeout);
        // The only slot taken for longer than the deadline.
        let held = scanner.slots.acquire().await.unwrap();
        let busy = scanner.scan(5, Streams::Whole(b"hello")).await;
        drop(held);
        assert_eq!(class(busy), ErrorClass::Busy);
        assert!(started.elapsed() < Duration::from_secs(2));
        let counts = scanner.error_counts();
        assert!(
            counts.contains(&(ErrorClass::Busy, 1)) && counts.contains(&(ErrorClass::Timeout, 1)),
            "{counts:?}"
        );
    }

    #[tokio::test]
    async fn nobody_listening_is_unreachable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let scanner = Scanner::new(&config(port, 1, 1000));
        match scanner.scan(5, Streams::Whole(b"hello")).await {
            Outcome::Error(e) => assert_eq!(e.class, ErrorClass::Unreachable, "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            scanner.ping().await.map_err(|e| e.class),
            Err(ErrorClass::Unreachable)
        );
    }
}

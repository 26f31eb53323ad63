//! mailwarden-load: plays Postfix's side of the milter protocol against a running
//! milter and measures it. N concurrent connections each send several messages
//! (macros before every event, headers one by one, body in 64 KiB chunks, ABORT after
//! each message, as Postfix does) and the tool prints messages/s and latency
//! percentiles, from MAIL to the end-of-message decision.
//!
//! `--idle N` instead opens N connections, negotiates, and holds them open, for
//! measuring the daemon's memory per idle session.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncRead, AsyncWrite};

use mailwarden::ListenAddr;
use mailwarden::Stream;
use mailwarden::clamd::{self, Connection, Reply};
use mailwarden::config::ClamdAddr;
use mailwarden::mta::Protocol;
use mailwarden::mta::Response;
use mailwarden::mta::{ClientError, MtaClient, SplitMessage};

mod corpus;
#[cfg(test)]
use corpus::generated_message;
use corpus::{assemble, read_corpus};

/// The same allocator as the daemon, so the load generator takes as little of a
/// shared machine as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Clone)]
#[command(
    name = "mailwarden-load",
    about = "Milter load generator (MTA side, Postfix-like)"
)]
struct Args {
    /// Milter address: inet:HOST:PORT or unix:PATH.
    #[arg(long, default_value = "inet:127.0.0.1:8891")]
    target: ListenAddr,
    /// Concurrent milter connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Messages sent on one connection before it quits and reconnects.
    #[arg(long, default_value_t = 20)]
    per_connection: usize,
    /// How long to send, in seconds (after a one-second warm-up that is not counted).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Message files (.eml) or folders of them; each connection cycles through them.
    #[arg(long)]
    corpus: Vec<PathBuf>,
    /// Size of the generated message when no corpus is given.
    #[arg(long, default_value_t = 5 * 1024)]
    size: usize,
    /// Write each event as its own write, as Postfix does (by default events that need
    /// no reply go out together with the next one that does).
    #[arg(long)]
    flush_each_event: bool,
    /// Open this many connections, negotiate, and hold them idle instead of sending.
    #[arg(long)]
    idle: Option<usize>,
    /// With --idle: how long to hold the connections, in seconds.
    #[arg(long, default_value_t = 30.0)]
    hold: f64,
    /// The SMTP client address the MTA reports (outside trusted_networks by default,
    /// so the message is verified as inbound).
    #[arg(long, default_value = "192.0.2.7")]
    client_ip: std::net::IpAddr,
    /// The HELO name the MTA reports.
    #[arg(long, default_value = "client.load.test")]
    helo: String,
    /// MAIL FROM address.
    #[arg(long, default_value = "sender@load.test")]
    mail_from: String,
    /// Send each message straight to this clamd (tcp:HOST:PORT or unix:PATH) with
    /// INSTREAM instead of through a milter: the yardstick for the antivirus step.
    #[arg(long)]
    clamd: Option<String>,
    /// Threads generating load: 0 for one per core, 1 for a single thread (leaves
    /// more of a shared machine to the daemon under test)
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    rejected: u64,
    first_error: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if n > 0 {
                b.worker_threads(n);
            }
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailwarden-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match args.idle {
            Some(n) => idle(&args, n).await,
            None => load(args).await,
        }
    })
}

async fn idle(args: &Args, count: usize) -> ExitCode {
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        match open(args, false).await {
            Ok(c) => held.push(c),
            Err(e) => {
                eprintln!("connection {i} failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "holding {count} idle negotiated connections for {}s",
        args.hold
    );
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    ExitCode::SUCCESS
}

async fn open(args: &Args, flush_each_event: bool) -> Result<MtaClient<Stream>, ClientError> {
    let mta = MtaClient::open_session(&args.target, args.client_ip, &args.helo).await?;
    Ok(mta.with_flush_each_event(flush_each_event))
}

async fn load(args: Args) -> ExitCode {
    let corpus = match read_corpus(&args) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("mailwarden-load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + Duration::from_secs_f64(args.duration);
    let recordings = Arc::new(OnceLock::new());
    let mut workers = Vec::new();
    for w in 0..args.connections {
        let args = args.clone();
        let corpus = corpus.clone();
        let recordings = recordings.clone();
        workers.push(tokio::spawn(async move {
            worker(w, &args, &corpus, &recordings, measure_from, stop).await
        }));
    }
    let mut total = Tally::default();
    for w in workers {
        match w.await {
            Ok(t) => {
                total.latencies_us.extend(t.latencies_us);
                total.errors += t.errors;
                total.rejected += t.rejected;
                total.first_error = total.first_error.or(t.first_error);
            }
            Err(e) => {
                total.errors += 1;
                total.first_error.get_or_insert(e.to_string());
            }
        }
    }
    let elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    report(&args, &corpus, &mut total, elapsed);
    if total.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(args: &Args, corpus: &[SplitMessage], t: &mut Tally, elapsed: f64) {
    t.latencies_us.sort_unstable();
    let n = t.latencies_us.len();
    let pct = |p: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = ((n as f64 * p).ceil() as usize).clamp(1, n) - 1;
        f64::from(t.latencies_us[i]) / 1000.0
    };
    let avg_size = corpus
        .iter()
        .map(|m| {
            m.body.len()
                + m.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 3)
                    .sum::<usize>()
        })
        .sum::<usize>()
        / corpus.len().max(1);
    match &args.clamd {
        Some(clamd) => println!("target            {clamd} (INSTREAM, no milter)"),
        None => println!("target            {}", args.target),
    }
    println!(
        "connections       {} ({} messages each, then reconnect)",
        args.connections, args.per_connection
    );
    let writes = if args.flush_each_event {
        "one per event (as Postfix writes)"
    } else {
        "events needing no reply go out with the next one that does"
    };
    println!("writes            {writes}");
    println!(
        "corpus            {} message(s), average {} bytes",
        corpus.len(),
        avg_size
    );
    println!("measured          {elapsed:.1} s");
    println!(
        "messages          {n} ({} rejected/tempfailed, {} errors)",
        t.rejected, t.errors
    );
    println!(
        "throughput        {:.0} messages/s",
        n as f64 / elapsed.max(1e-9)
    );
    println!(
        "latency ms        p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    if let Some(e) = &t.first_error {
        println!("first error       {e}");
    }
}

async fn worker(
    id: usize,
    args: &Args,
    corpus: &[SplitMessage],
    recordings: &OnceLock<Recordings>,
    measure_from: Instant,
    stop: Instant,
) -> Tally {
    if let Some(addr) = &args.clamd {
        return clamd_worker(id, addr, corpus, measure_from, stop).await;
    }
    let mut tally = Tally::default();
    let mut next = id % corpus.len();
    let mut queue_seq = 0u64;
    while Instant::now() < stop {
        let mut mta = match open(args, args.flush_each_event).await {
            Ok(m) => m,
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let recorded = recordings.get_or_init(|| Recordings {
            protocol: mta.protocol(),
            messages: corpus
                .iter()
                .map(|m| Recorded::new(&mut mta, &args.mail_from, m))
                .collect(),
        });
        let same_protocol = recorded.protocol == mta.protocol();
        for _ in 0..args.per_connection {
            if Instant::now() >= stop {
                break;
            }
            queue_seq += 1;
            let queue_id = format!("L{id:04X}{queue_seq:08X}");
            let began = Instant::now();
            let message = &corpus[next];
            let sent = send_message(
                &mut mta,
                &args.mail_from,
                message,
                // The recorded packets' lengths hold an id of the slot's length.
                recorded.messages[next]
                    .as_ref()
                    .filter(|_| same_protocol && queue_id.len() == QUEUE_ID_SLOT.len()),
                &queue_id,
            );
            match sent.await {
                Ok(decision) => {
                    if began >= measure_from {
                        tally
                            .latencies_us
                            .push(began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                        if !matches!(decision, Response::Continue | Response::Accept) {
                            tally.rejected += 1;
                        }
                    }
                }
                Err(e) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(format!("message: {e}"));
                    break;
                }
            }
            next = (next + 1) % corpus.len();
        }
        let _ = mta.quit().await;
    }
    tally
}

/// One connection's worth of INSTREAM scans, each message as the milter would have
/// assembled it (header lines with CRLF, the body), one clamd connection per scan as
/// mailwarden does.
async fn clamd_worker(
    id: usize,
    addr: &str,
    corpus: &[SplitMessage],
    measure_from: Instant,
    stop: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let addr = match addr
        .strip_prefix("unix:")
        .map(|p| ClamdAddr::Unix(p.into()))
        .or_else(|| {
            addr.strip_prefix("tcp:")
                .map(|hp| ClamdAddr::Tcp(hp.into()))
        }) {
        Some(a) => a,
        None => {
            tally.errors += 1;
            tally.first_error = Some(format!("--clamd {addr:?}: use tcp:HOST:PORT or unix:PATH"));
            return tally;
        }
    };
    let raw: Vec<Vec<u8>> = corpus.iter().map(assemble).collect();
    let mut next = id % raw.len();
    while Instant::now() < stop {
        let began = Instant::now();
        let connection = Connection {
            addr: &addr,
            connect_timeout: Duration::from_secs(5),
        };
        let result =
            clamav_client::tokio::scan_buffer(&raw[next], connection, Some(clamd::CHUNK)).await;
        match result.map(|r| clamd::parse_reply(&r)) {
            Ok(reply @ (Reply::Clean | Reply::Found(_))) => {
                if began >= measure_from {
                    tally
                        .latencies_us
                        .push(began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    if reply != Reply::Clean {
                        tally.rejected += 1;
                    }
                }
            }
            Ok(other) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(format!("clamd: {other:?}"));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(format!("clamd: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        next = (next + 1) % raw.len();
    }
    tally
}

/// Queues one message's events before end-of-message: macros before every event,
/// headers one by one, the body in chunks. Nothing waits when the milter wants no
/// reply to any of them (`MtaClient::replies_only_at_eom`).
async fn queue_events<S: AsyncRead + AsyncWrite + Unpin>(
    mta: &mut MtaClient<S>,
    mail_from: &str,
    message: &SplitMessage,
    queue_id: &str,
) -> Result<(), ClientError> {
    mta.macros(b'M', &[("mail_addr", mail_from)]);
    mta.mail(&format!("<{mail_from}>"), &["BODY=8BITMIME"])
        .await?;
    mta.macros(b'R', &[("rcpt_addr", "rcpt@example.net")]);
    mta.rcpt("<rcpt@example.net>").await?;
    mta.macros(b'T', &[("i", queue_id)]);
    mta.data().await?;
    for (name, value) in &message.headers {
        mta.macros(b'L', &[("i", queue_id)]);
        mta.header(name, value).await?;
    }
    mta.macros(b'N', &[("i", queue_id)]);
    mta.eoh().await?;
    mta.macros(b'B', &[("i", queue_id)]);
    mta.body(&message.body).await?;
    mta.macros(b'E', &[("i", queue_id)]);
    Ok(())
}

/// The corpus recorded on the first connection that opens, shared by every worker;
/// used on connections that negotiated the same protocol.
struct Recordings {
    protocol: Protocol,
    messages: Vec<Option<Recorded>>,
}

/// Stands for the queue id in a recorded message; as long as every `queue_id`.
const QUEUE_ID_SLOT: &str = "\u{1}mw-queue-id\u{1}";

/// One message's events before end-of-message, encoded once and replayed for every
/// message with only the queue id written in, so the load tool's share of the two
/// cores goes to sending and not to encoding the same packets again.
struct Recorded {
    bytes: Vec<u8>,
    /// Where `QUEUE_ID_SLOT` stands in `bytes`.
    slots: Vec<usize>,
}

impl Recorded {
    /// Records `message` on `mta`'s negotiated protocol, or `None` when some event
    /// before end-of-message needs a reply (then each message is sent step by step).
    fn new<S: AsyncRead + AsyncWrite + Unpin>(
        mta: &mut MtaClient<S>,
        mail_from: &str,
        message: &SplitMessage,
    ) -> Option<Self> {
        if !mta.replies_only_at_eom() {
            return None;
        }
        // CONNECT and HELO (or the last ABORT) may still be queued: keep them out.
        let pending = mta.take_queued();
        let queued = {
            let events = std::pin::pin!(queue_events(mta, mail_from, message, QUEUE_ID_SLOT));
            // Nothing in it waits (no reply is awaited), so one poll finishes it.
            events
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        };
        let bytes = mta.take_queued().to_vec();
        mta.queue_encoded(&pending);
        if !queued {
            return None;
        }
        let slots = memchr::memmem::find_iter(&bytes, QUEUE_ID_SLOT.as_bytes()).collect();
        Some(Recorded { bytes, slots })
    }

    fn queue<S: AsyncRead + AsyncWrite + Unpin>(&self, mta: &mut MtaClient<S>, queue_id: &str) {
        let mut from = 0;
        for &slot in &self.slots {
            mta.queue_encoded(&self.bytes[from..slot]);
            mta.queue_encoded(queue_id.as_bytes());
            from = slot + QUEUE_ID_SLOT.len();
        }
        mta.queue_encoded(&self.bytes[from..]);
    }
}

async fn send_message(
    mta: &mut MtaClient<Stream>,
    mail_from: &str,
    message: &SplitMessage,
    recorded: Option<&Recorded>,
    queue_id: &str,
) -> Result<Response, ClientError> {
    match recorded {
        Some(r) => r.queue(mta, queue_id),
        None => queue_events(mta, mail_from, message, queue_id).await?,
    }
    let reply = mta.eom().await?;
    mta.abort();
    Ok(reply.decision)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use mailwarden::mta::{DEFAULT_MAX_PACKET, decode_packet};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;

    /// A client that negotiated `protocol` with an in-memory milter that answers
    /// OPTNEG and then only keeps the connection open.
    async fn negotiated(protocol: Protocol) -> MtaClient<DuplexStream> {
        let (ours, mut theirs) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let mut input = BytesMut::new();
            while decode_packet(&mut input, DEFAULT_MAX_PACKET)
                .unwrap()
                .is_none()
            {
                theirs.read_buf(&mut input).await.unwrap();
            }
            let mut out = BytesMut::new();
            Response::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: protocol.0,
                macros: Vec::new(),
            }
            .encode(&mut out);
            theirs.write_all(&out).await.unwrap();
            let mut sink = Vec::new();
            let _ = theirs.read_to_end(&mut sink).await;
        });
        let mut mta = MtaClient::new(ours);
        mta.negotiate_like_postfix().await.unwrap();
        mta
    }

    fn message() -> SplitMessage {
        SplitMessage::parse(&generated_message(3000))
    }

    #[tokio::test]
    async fn a_replayed_message_is_the_same_bytes_as_one_sent_step_by_step() {
        let all_no_reply = Protocol(0x1F_F000).union(Protocol::NR_HEADER);
        let mut recorder = negotiated(all_no_reply).await;
        let recorded = Recorded::new(&mut recorder, "a@b.test", &message()).unwrap();
        // DATA, each header, end of headers, body, end of message.
        assert_eq!(recorded.slots.len(), 4 + message().headers.len());
        recorded.queue(&mut recorder, "L0001000000AB");
        let replayed = recorder.take_queued();

        let mut stepper = negotiated(all_no_reply).await;
        queue_events(&mut stepper, "a@b.test", &message(), "L0001000000AB")
            .await
            .unwrap();
        assert_eq!(replayed, stepper.take_queued());
    }

    #[tokio::test]
    async fn a_milter_that_wants_a_reply_before_eom_is_not_recorded() {
        let rcpt_needs_reply =
            Protocol(0x1F_F000 & !Protocol::NR_RCPT.0).union(Protocol::NR_HEADER);
        let mut mta = negotiated(rcpt_needs_reply).await;
        mta.macros(b'C', &[]);
        let queued_before = mta.take_queued();
        mta.queue_encoded(&queued_before);
        assert!(Recorded::new(&mut mta, "a@b.test", &message()).is_none());
        assert_eq!(mta.take_queued(), queued_before, "nothing queued or lost");
    }
}

//! Drives one milter connection: reads packets under time-outs, feeds them to the
//! [`Session`] state machine, runs the filter at end-of-message (with progress
//! replies and a deadline), writes the answers, and logs one line per decision and
//! one line when the session ends for a reason worth knowing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::{Instrument, debug, debug_span, error, info, warn};

use super::filter::{Filter, Service};
use super::machine::{Session, Step};
use super::respond;
use crate::decision::Decision;
use crate::milter::command::Command;
use crate::milter::error::ProtocolError;
use crate::milter::framed::{Framed, ReadError, Readable};
use crate::milter::negotiate::Negotiated;
use crate::milter::response::Response;
use crate::panic_guard::catch_panic;
use crate::shutdown::Shutdown;
use crate::transaction::Transaction;

/// How a session ended without error.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The MTA sent QUIT.
    Quit,
    /// The MTA closed the connection between packets.
    Closed,
    /// We hung up on an idle session because the daemon is stopping.
    Shutdown,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("no {waiting_for} from the MTA within {after:?}")]
    Timeout {
        waiting_for: &'static str,
        after: Duration,
    },
    #[error("writing to the MTA took longer than {0:?}")]
    WriteTimeout(Duration),
    #[error("the MTA closed the connection in the middle of a message")]
    ClosedMidMessage,
}

impl From<ReadError> for SessionError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Protocol(p) => SessionError::Protocol(p),
            ReadError::Io(io) => SessionError::Io(io),
        }
    }
}

/// Serves one connection to its end and logs how it ended.
pub async fn serve_connection<S, F>(
    stream: S,
    id: u64,
    peer: &str,
    services: watch::Receiver<Arc<Service<F>>>,
    shutdown: Shutdown,
) -> Result<Ended, SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Readable,
    F: Filter,
{
    let metrics = crate::observe::metrics::metrics();
    metrics.sessions_active.inc();
    // The driver lives here and `run` borrows it: moved into `run`, it was held
    // twice in every session's future (672 bytes more per idle session).
    let mut driver = Driver::new(stream, id, services, shutdown);
    let result = driver.run().await;
    drop(driver);
    metrics.sessions_active.dec();
    match &result {
        Ok(Ended::Shutdown) => info!(
            session = id,
            peer, "closed idle milter session for shutdown"
        ),
        Ok(ended) => debug!(session = id, peer, ?ended, "milter session ended"),
        Err(SessionError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            info!(session = id, peer, "milter session reset by the MTA")
        }
        Err(e) => {
            metrics.protocol_errors.inc();
            warn!(session = id, peer, "closing milter session: {e}")
        }
    }
    result
}

enum Next {
    Command(Command),
    Closed,
    Shutdown,
}

struct Driver<S, F> {
    id: u64,
    framed: Framed<S>,
    session: Session,
    service: Arc<Service<F>>,
    services: watch::Receiver<Arc<Service<F>>>,
    shutdown: Shutdown,
}

impl<S, F> Driver<S, F>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Readable,
    F: Filter,
{
    fn new(
        stream: S,
        id: u64,
        services: watch::Receiver<Arc<Service<F>>>,
        shutdown: Shutdown,
    ) -> Self {
        let service = services.borrow().clone();
        let framed = Framed::new(stream, service.settings.max_packet);
        let session = Session::new(id, service.filter.needs(), &service.settings);
        Driver {
            id,
            framed,
            session,
            service,
            services,
            shutdown,
        }
    }

    async fn run(&mut self) -> Result<Ended, SessionError> {
        loop {
            let command = match self.next_command().await? {
                Next::Command(command) => command,
                Next::Shutdown => return Ok(Ended::Shutdown),
                Next::Closed if self.session.in_message() => {
                    return Err(SessionError::ClosedMidMessage);
                }
                Next::Closed => return Ok(Ended::Closed),
            };
            if matches!(command, Command::Mail { .. }) {
                self.refresh_service();
            }
            let step = self.session.on_command(command)?;
            if self.session.is_idle() {
                // Between messages the read buffer goes: 10,000 idle sessions hold
                // 64 MB instead of 144 MB (see Framed::wait_for_input).
                self.framed.release();
            }
            match step {
                Step::Silent => {}
                Step::Reply(reply) => self.send(&[reply]).await?,
                Step::Close => return Ok(Ended::Quit),
                Step::EndOfMessage(tx) => {
                    // With `log.level = "debug"` every line logged while this message
                    // is decided carries its queue id, also from code that does not
                    // know it. At info the span is off: creating and entering it cost
                    // about 6,000 instructions a message (7% of an accepted one), and
                    // the info lines about a message carry `queue_id` themselves.
                    let span = debug_span!(
                        "message",
                        queue_id = tx.queue_id().as_deref().unwrap_or("-")
                    );
                    // Boxed: deciding takes kilobytes of future state, and inline it
                    // would make every idle session that large (1,000 idle sessions
                    // held 3.4 KB each of it).
                    Box::pin(self.end_of_message(*tx).instrument(span)).await?
                }
            }
        }
    }

    /// The next command. While no message is under way, a shutdown ends the wait: a
    /// message in progress is always finished first.
    async fn next_command(&mut self) -> Result<Next, SessionError> {
        let settings = &self.service.settings;
        let (limit, waiting_for) = if self.session.negotiated().is_none() {
            (settings.negotiate_timeout, "option negotiation")
        } else {
            (settings.idle_timeout, "command")
        };
        let idle = self.session.is_idle();
        if idle && self.shutdown.is_triggered() {
            return Ok(Next::Shutdown);
        }
        if !self.framed.holds_buffer() {
            // Between messages the connection holds no read buffer: wait for the
            // next burst without one (a separate await keeps the read's own future
            // as small as it was: moving a larger one cost more than the buffer).
            let wait = timeout(limit, self.framed.wait_for_input());
            let ready = tokio::select! {
                biased;
                () = self.shutdown.wait(), if idle => return Ok(Next::Shutdown),
                ready = wait => ready,
            };
            match ready {
                Err(_) => {
                    return Err(SessionError::Timeout {
                        waiting_for,
                        after: limit,
                    });
                }
                Ok(Err(e)) => return Err(SessionError::Io(e)),
                Ok(Ok(())) => {}
            }
        }
        let read = timeout(limit, self.framed.read_packet());
        let outcome = tokio::select! {
            biased;
            () = self.shutdown.wait(), if idle => return Ok(Next::Shutdown),
            outcome = read => outcome,
        };
        match outcome {
            Err(_) => Err(SessionError::Timeout {
                waiting_for,
                after: limit,
            }),
            Ok(Ok(None)) => Ok(Next::Closed),
            Ok(Ok(Some(packet))) => Ok(Next::Command(Command::decode(packet)?)),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Picks up a reloaded configuration at the start of a message, unless it would
    /// need a different negotiation than this connection already made.
    fn refresh_service(&mut self) {
        if self.services.has_changed().unwrap_or(false) {
            let newest = self.services.borrow_and_update().clone();
            if newest.filter.needs() == self.service.filter.needs() {
                self.service = newest;
            } else {
                debug!(
                    session = self.id,
                    "new configuration needs a new negotiation; it applies to new connections"
                );
            }
        }
    }

    async fn send(&mut self, responses: &[Response]) -> Result<(), SessionError> {
        let limit = self.service.settings.write_timeout;
        match timeout(limit, self.framed.send(responses)).await {
            Err(_) => Err(SessionError::WriteTimeout(limit)),
            Ok(result) => result.map_err(SessionError::Io),
        }
    }

    async fn end_of_message(&mut self, tx: Transaction) -> Result<(), SessionError> {
        let started = Instant::now();
        let negotiated = *self.session.negotiated().ok_or(ProtocolError::OutOfOrder {
            command: "EOM",
            state: "before option negotiation",
        })?;
        let tx = Arc::new(tx);
        let (mut decision, record) = self.decide(tx.clone()).await?;
        let responses = match respond::responses(&decision, &negotiated) {
            Ok(responses) => responses,
            Err(e) => {
                error!(
                    session = self.id,
                    queue_id = tx.queue_id().as_deref().unwrap_or("-"),
                    "cannot apply the decision: {e}; answering tempfail"
                );
                decision = Decision::tempfail(format!("cannot apply the decision: {e}"));
                fallback_responses(&negotiated)
            }
        };
        self.send(&responses).await?;
        self.service
            .filter
            .finish(&tx, &decision, record, started.elapsed());
        Ok(())
    }

    /// Runs the filter under the end-of-message deadline, telling the MTA we are still
    /// working every `progress_interval`. A panic or the deadline becomes a tempfail.
    async fn decide(
        &mut self,
        tx: Arc<Transaction>,
    ) -> Result<(Decision, Option<F::Record>), SessionError> {
        let settings = self.service.settings.clone();
        let service = self.service.clone();
        let queue_id = tx.queue_id();
        let mut work = catch_panic(async move { service.filter.decide(tx).await });
        let deadline = tokio::time::sleep(settings.eom_timeout);
        tokio::pin!(deadline);
        let start = tokio::time::Instant::now() + settings.progress_interval;
        let mut progress = tokio::time::interval_at(start, settings.progress_interval);
        loop {
            tokio::select! {
                // The decision first: one that is ready at once (signing, a cached
                // verdict) then never registers the two timers with the runtime.
                biased;
                outcome = &mut work => {
                    return Ok(match outcome {
                        Ok((decision, record)) => (decision, Some(record)),
                        Err(panic) => {
                            error!(session = self.id, queue_id = queue_id.as_deref().unwrap_or("-"), "filter panicked: {panic}; answering tempfail");
                            (Decision::tempfail("internal error"), None)
                        }
                    });
                }
                () = &mut deadline => {
                    warn!(session = self.id, queue_id = queue_id.as_deref().unwrap_or("-"), "no decision within {:?}; answering tempfail", settings.eom_timeout);
                    return Ok((Decision::tempfail("decision timed out"), None));
                }
                _ = progress.tick() => self.send(&[Response::Progress]).await?,
            }
        }
    }
}

/// Used when a decision cannot be expressed: tempfail, so the MTA keeps the mail.
fn fallback_responses(negotiated: &Negotiated) -> Vec<Response> {
    respond::responses(&Decision::tempfail("internal error"), negotiated)
        .unwrap_or_else(|_| vec![Response::Tempfail])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::decision::{Edit, Verdict};
    use crate::milter::client::MtaClient;
    use crate::milter::command::ClientAddress;
    use crate::milter::flags::Actions;
    use crate::milter::{BodyNeed, Needs, SessionSettings};

    /// A filter double whose behaviour each test chooses.
    enum Behaviour {
        Panic,
        Sleep(Duration),
        Quarantine,
    }

    struct TestFilter(Behaviour);

    impl Filter for TestFilter {
        type Record = ();

        fn needs(&self) -> Needs {
            Needs {
                actions: Actions::ADD_HEADERS,
                headers: true,
                body: BodyNeed::Whole,
            }
        }

        async fn decide(&self, tx: Arc<Transaction>) -> (Decision, ()) {
            let decision = match self.0 {
                Behaviour::Panic if tx.body_size > 0 => panic!("filter bug"),
                Behaviour::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    Decision::accept("slept")
                }
                Behaviour::Quarantine => Decision {
                    edits: vec![Edit::Quarantine { reason: "x".into() }],
                    verdict: Verdict::Accept,
                    reason: "quarantine".into(),
                },
                Behaviour::Panic => Decision::accept("empty body"),
            };
            (decision, ())
        }

        fn finish(&self, _: &Transaction, _: &Decision, _: Option<()>, _: Duration) {}
    }

    fn start(
        behaviour: Behaviour,
    ) -> (
        MtaClient<tokio::io::DuplexStream>,
        tokio::task::JoinHandle<Result<Ended, SessionError>>,
    ) {
        let settings = SessionSettings {
            eom_timeout: Duration::from_millis(400),
            progress_interval: Duration::from_millis(100),
            ..SessionSettings::default()
        };
        let service = Arc::new(Service {
            settings,
            filter: TestFilter(behaviour),
        });
        let (_tx, rx) = watch::channel(service);
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (_trigger, shutdown) = crate::shutdown::channel();
        let handle = tokio::spawn(async move {
            let _keep = _tx;
            let _keep_trigger = _trigger;
            serve_connection(theirs, 1, "test", rx, shutdown).await
        });
        (MtaClient::new(ours), handle)
    }

    async fn message(
        mta: &mut MtaClient<tokio::io::DuplexStream>,
        body: &[u8],
    ) -> crate::milter::client::EomReply {
        mta.mail("<a@b.test>", &[]).await.unwrap();
        mta.rcpt("<c@d.test>").await.unwrap();
        mta.header("Subject", b" x").await.unwrap();
        mta.eoh().await.unwrap();
        mta.body(body).await.unwrap();
        let reply = mta.eom().await.unwrap();
        mta.abort();
        reply
    }

    async fn connected(mta: &mut MtaClient<tokio::io::DuplexStream>) {
        mta.negotiate_like_postfix().await.unwrap();
        mta.connect_info("c", ClientAddress::Unknown).await.unwrap();
    }

    fn is_tempfail(r: &Response) -> bool {
        matches!(r, Response::ReplyCode(reply) if reply.code() == 451)
    }

    #[tokio::test]
    async fn a_panicking_filter_costs_one_tempfail_not_the_session() {
        let (mut mta, handle) = start(Behaviour::Panic);
        connected(&mut mta).await;
        let reply = message(&mut mta, b"boom\r\n").await;
        assert!(is_tempfail(&reply.decision), "{reply:?}");
        let reply = message(&mut mta, b"").await;
        assert_eq!(
            reply.decision,
            Response::Continue,
            "the same session goes on"
        );
        mta.quit().await.unwrap();
        assert_eq!(handle.await.unwrap().unwrap(), Ended::Quit);
    }

    #[tokio::test]
    async fn a_slow_filter_sends_progress_then_tempfails_at_the_deadline() {
        let (mut mta, _handle) = start(Behaviour::Sleep(Duration::from_secs(30)));
        connected(&mut mta).await;
        let started = std::time::Instant::now();
        let reply = message(&mut mta, b"x\r\n").await;
        assert!(is_tempfail(&reply.decision), "{reply:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            (2..=4).contains(&reply.progress),
            "progress replies: {}",
            reply.progress
        );
    }

    #[tokio::test]
    async fn a_decision_needing_an_action_not_granted_becomes_tempfail() {
        let (mut mta, _handle) = start(Behaviour::Quarantine);
        connected(&mut mta).await;
        let reply = message(&mut mta, b"x\r\n").await;
        assert!(reply.modifications.is_empty(), "{reply:?}");
        assert!(is_tempfail(&reply.decision), "{reply:?}");
    }

    #[tokio::test]
    async fn closing_mid_message_is_reported() {
        let (mut mta, handle) = start(Behaviour::Sleep(Duration::ZERO));
        connected(&mut mta).await;
        mta.mail("<a@b.test>", &[]).await.unwrap();
        mta.send_raw(&[]).await.unwrap();
        drop(mta);
        assert!(matches!(
            handle.await.unwrap(),
            Err(SessionError::ClosedMidMessage)
        ));
    }
}

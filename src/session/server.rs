//! The accept loops: one per listening socket, one task per connection, a cap on
//! concurrent sessions, and a graceful drain on shutdown. A panic inside a session is
//! caught and logged here; the other sessions never notice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tracing::{error, info, warn};

use super::driver::serve_connection;
use super::filter::{Filter, Service};
use crate::net::{BindError, ListenAddr, Listener};
use crate::panic_guard::catch_panic;
use crate::shutdown::Shutdown;

pub struct Server<F> {
    listeners: Vec<Listener>,
    services: watch::Receiver<Arc<Service<F>>>,
    sessions: Arc<Semaphore>,
    max_sessions: u32,
    next_id: Arc<AtomicU64>,
}

/// How the drain went.
#[derive(Debug, PartialEq, Eq)]
pub struct Drained {
    /// Sessions still open when the drain deadline passed (they are cut off).
    pub abandoned: u32,
}

impl<F: Filter> Server<F> {
    /// Binds every address before serving any, so a bad address fails the start.
    pub async fn bind(
        addrs: &[ListenAddr],
        socket_mode: u32,
        max_sessions: u32,
        services: watch::Receiver<Arc<Service<F>>>,
    ) -> Result<Self, BindError> {
        let mut listeners = Vec::with_capacity(addrs.len());
        for addr in addrs {
            match Listener::bind(addr, socket_mode).await {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    listeners.iter().for_each(Listener::cleanup);
                    return Err(e);
                }
            }
        }
        Ok(Server {
            listeners,
            services,
            sessions: Arc::new(Semaphore::new(max_sessions as usize)),
            max_sessions,
            next_id: Arc::new(AtomicU64::new(1)),
        })
    }

    pub fn local_addrs(&self) -> Vec<ListenAddr> {
        self.listeners.iter().map(Listener::local_addr).collect()
    }

    /// Serves until `shutdown` fires, then stops accepting, lets sessions finish the
    /// message they are in, and waits at most `drain_timeout` for them.
    pub async fn serve(self, shutdown: Shutdown, drain_timeout: Duration) -> Drained {
        let listeners: Vec<Arc<Listener>> = self.listeners.into_iter().map(Arc::new).collect();
        let mut loops = Vec::new();
        for listener in &listeners {
            loops.push(tokio::spawn(accept_loop(
                listener.clone(),
                self.services.clone(),
                self.sessions.clone(),
                self.next_id.clone(),
                shutdown.clone(),
            )));
        }
        for handle in loops {
            let _ = handle.await;
        }
        // Close the listening sockets now, not after the drain: a connection that
        // came later would sit unserved in the queue until the process exits.
        // Refused at once, Postfix applies milter_default_action.
        listeners.iter().for_each(|l| l.cleanup());
        drop(listeners);
        let active = self.max_sessions - self.sessions.available_permits() as u32;
        info!(
            active,
            "stopped accepting; draining sessions for up to {drain_timeout:?}"
        );
        let all =
            tokio::time::timeout(drain_timeout, self.sessions.acquire_many(self.max_sessions))
                .await;
        let abandoned = match all {
            Ok(_) => 0,
            Err(_) => self.max_sessions - self.sessions.available_permits() as u32,
        };
        if abandoned > 0 {
            warn!(
                abandoned,
                "drain deadline passed; closing the remaining sessions (Postfix applies milter_default_action)"
            );
        }
        Drained { abandoned }
    }
}

async fn accept_loop<F: Filter>(
    listener: Arc<Listener>,
    services: watch::Receiver<Arc<Service<F>>>,
    sessions: Arc<Semaphore>,
    next_id: Arc<AtomicU64>,
    mut shutdown: Shutdown,
) {
    let addr = listener.local_addr();
    let mut last_full_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: say so, back off, keep going.
                error!(listen = %addr, "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            // Closing at once lets Postfix apply milter_default_action right away
            // instead of waiting for its connect timeout.
            if last_full_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                warn!(listen = %addr, peer, "max_sessions reached; refusing new milter connections");
                last_full_warning = Some(Instant::now());
            }
            continue;
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let services = services.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let session = serve_connection(stream, id, &peer, services, shutdown);
            if let Err(panic) = catch_panic(session).await {
                error!(
                    session = id,
                    peer, "milter session panicked and was closed: {panic}"
                );
            }
            drop(permit);
        });
    }
}

//! The daemon-wide "stop now" signal, passed into every task as a value (as in
//! mini-redis) rather than read from a global flag.

use tokio::sync::watch;

/// Owned by `main`; dropping it or calling [`ShutdownTrigger::trigger`] stops everyone.
pub struct ShutdownTrigger(watch::Sender<bool>);

#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown has been triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

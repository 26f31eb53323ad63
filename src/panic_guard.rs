//! Runs a future so that a panic inside it becomes an error value for its caller.
//! A bug triggered by one message must cost that message a tempfail, not the
//! session, and a bug in one session must not touch the others.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct CatchPanic<F>(Pin<Box<F>>);

/// Wraps `future`; its output becomes `Err(message)` if polling it panicked.
pub fn catch_panic<F: Future>(future: F) -> CatchPanic<F> {
    CatchPanic(Box::pin(future))
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_errors() {
        let ok = catch_panic(async { 5 }).await;
        assert_eq!(ok, Ok(5));
        let err = catch_panic(async {
            if ok.is_ok() {
                panic!("boom {}", 1);
            }
            0
        })
        .await;
        assert_eq!(err, Err("boom 1".to_owned()));
    }
}

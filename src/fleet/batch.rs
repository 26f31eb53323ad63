//! Rate-limit checks of messages decided at the same time go to one Redis server
//! together. One call is out at a time, sent by one of the waiting messages (the
//! leader, no task of its own): a message that finds no call out sends its own
//! at once; one that finds a call out queues, and when that call's answer is in,
//! the leader hands the lead to the first queued message, which sends everything
//! queued meanwhile in one script call. A lone message thus costs what it did
//! alone; under load one round trip serves several. Every message still waits at
//! most the configured time-out: the caller bounds its own wait.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::limits::LimitCheck;

/// At most this many messages' checks in one script call: the script's cost is
/// linear in them, and a slow call holds every message in it.
const MAX_MESSAGES: usize = 64;
/// Nor more windows than this, past the leader's own: a message with many
/// recipients (one window each) does not make the call slow for the others.
const MAX_WINDOWS: usize = 256;

type Answer = Result<Vec<bool>, String>;

/// What a queued message hears: its answer, or that it sends the next call.
enum Turn {
    Answer(Answer),
    Lead(Vec<LimitCheck>),
}

/// One queued message's windows and where its turn goes.
struct Request {
    checks: Vec<LimitCheck>,
    reply: oneshot::Sender<Turn>,
}

#[derive(Default)]
struct Queue {
    /// A call is out (its leader will hand over or clear this).
    in_flight: bool,
    waiting: VecDeque<Request>,
}

#[derive(Default)]
pub(super) struct Batcher {
    queue: Mutex<Queue>,
}

impl Batcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok(checks)` back when no call is out (the caller now leads), else where
    /// the caller's turn will come.
    fn lead_or_queue(
        &self,
        checks: Vec<LimitCheck>,
    ) -> Result<Vec<LimitCheck>, oneshot::Receiver<Turn>> {
        let mut queue = self.lock();
        if queue.in_flight {
            let (reply, turn) = oneshot::channel();
            queue.waiting.push_back(Request { checks, reply });
            Err(turn)
        } else {
            queue.in_flight = true;
            Ok(checks)
        }
    }

    /// `checks`' answers, in order: sent now by `call`, or with the next call
    /// (which another message makes with its own `call`).
    pub(super) async fn submit(
        &self,
        checks: Vec<LimitCheck>,
        call: impl AsyncFnOnce(&[&LimitCheck]) -> Answer,
    ) -> Answer {
        let checks = match self.lead_or_queue(checks) {
            Ok(checks) => checks,
            Err(turn) => match turn.await {
                Ok(Turn::Answer(answer)) => return answer,
                Ok(Turn::Lead(checks)) => checks,
                Err(_) => return Err("the call carrying this message was abandoned".into()),
            },
        };
        // Leading: whatever happens to this future, the lead passes on.
        let lead = Lead(self);
        let batch: Vec<Request> = {
            let mut queue = self.lock();
            queue.waiting.retain(|r| !r.reply.is_closed());
            let (mut n, mut windows) = (0, checks.len());
            for r in queue.waiting.iter().take(MAX_MESSAGES - 1) {
                windows += r.checks.len();
                if windows > MAX_WINDOWS {
                    break;
                }
                n += 1;
            }
            queue.waiting.drain(..n).collect()
        };
        let all: Vec<&LimitCheck> = checks
            .iter()
            .chain(batch.iter().flat_map(|r| &r.checks))
            .collect();
        let (mine, theirs) = match call(&all).await {
            Ok(mut over) if over.len() == all.len() => {
                let theirs = over.split_off(checks.len());
                (Ok(over), Ok(theirs))
            }
            Ok(over) => {
                let e = format!(
                    "the script answered {} of {} windows",
                    over.len(),
                    all.len()
                );
                (Err(e.clone()), Err(e))
            }
            Err(e) => (Err(e.clone()), Err(e)),
        };
        drop(lead);
        answer_each(batch, theirs);
        mine
    }
}

/// Held by the message whose call is out: when it is done (or dropped), the
/// first message still waiting sends the next call, or no call is out.
struct Lead<'a>(&'a Batcher);

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.lock();
        while let Some(next) = queue.waiting.pop_front() {
            if next.reply.send(Turn::Lead(next.checks)).is_ok() {
                return;
            }
        }
        queue.in_flight = false;
    }
}

/// Splits one script answer (one flag per window, in order) among the requests.
fn answer_each(batch: Vec<Request>, answer: Answer) {
    match answer {
        Ok(over) => {
            let mut over = over.into_iter();
            for r in batch {
                let mine = over.by_ref().take(r.checks.len()).collect();
                let _ = r.reply.send(Turn::Answer(Ok(mine)));
            }
        }
        Err(e) => {
            for r in batch {
                let _ = r.reply.send(Turn::Answer(Err(e.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::fleet::Window;

    fn checks(key: &str, n: usize) -> Vec<LimitCheck> {
        let check = LimitCheck {
            limit: "l".into(),
            key: key.into(),
            window: Window {
                count: 1,
                millis: 1000,
            },
        };
        vec![check; n]
    }

    /// A stand-in for Redis: takes 10 ms, records each call's keys, and answers
    /// `true` for windows whose key starts with "over".
    #[derive(Default)]
    struct Server {
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl Server {
        async fn call(&self, all: &[&LimitCheck]) -> Answer {
            self.calls
                .lock()
                .unwrap()
                .push(all.iter().map(|c| c.key.clone()).collect());
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(all.iter().map(|c| c.key.starts_with("over")).collect())
        }
    }

    /// One batcher in front of one stand-in server.
    #[derive(Default)]
    struct Bench {
        batcher: Arc<Batcher>,
        server: Arc<Server>,
    }

    impl Bench {
        /// A message with `n` windows of `key`, decided in a task of its own.
        fn spawn(&self, key: &'static str, n: usize) -> tokio::task::JoinHandle<Answer> {
            let (b, s) = (self.batcher.clone(), self.server.clone());
            tokio::spawn(async move {
                b.submit(checks(key, n), async |all| s.call(all).await)
                    .await
            })
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.server.calls.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_message_goes_at_once_and_later_ones_share_the_next_call() {
        let bench = Bench::default();
        let first = bench.spawn("a", 2);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let second = bench.spawn("over-b", 1);
        let third = bench.spawn("c", 3);
        let fourth = bench.spawn("over-d", 2);
        assert_eq!(first.await.unwrap(), Ok(vec![false, false]));
        assert_eq!(second.await.unwrap(), Ok(vec![true]));
        assert_eq!(third.await.unwrap(), Ok(vec![false, false, false]));
        assert_eq!(fourth.await.unwrap(), Ok(vec![true, true]));
        let calls = bench.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0], ["a", "a"]);
        assert_eq!(calls[1], ["over-b", "c", "c", "c", "over-d", "over-d"]);
        // Nothing is out any more: the next message goes at once, alone.
        let fifth = bench.spawn("e", 1);
        assert_eq!(fifth.await.unwrap(), Ok(vec![false]));
        assert_eq!(bench.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_with_many_windows_does_not_join_a_full_call() {
        let bench = Bench::default();
        let first = bench.spawn("a", 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let queued = [
            bench.spawn("b", 200),
            bench.spawn("c", 100),
            bench.spawn("d", 1),
        ];
        first.await.unwrap().unwrap();
        for q in queued {
            q.await.unwrap().unwrap();
        }
        let sizes: Vec<usize> = bench.calls().iter().map(Vec::len).collect();
        // b's 200 and c's 100 are over MAX_WINDOWS together; d waits its turn.
        assert_eq!(sizes, [1, 200, 101]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_that_gives_up_hands_the_lead_on() {
        let bench = Bench::default();
        let (b, s) = (bench.batcher.clone(), bench.server.clone());
        // Its caller's time-out (5 ms) ends the first call while it is out (10 ms).
        let first = tokio::spawn(async move {
            tokio::time::timeout(
                Duration::from_millis(5),
                b.submit(checks("a", 1), async |all| s.call(all).await),
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let second = bench.spawn("b", 1);
        assert!(first.await.unwrap().is_err());
        assert_eq!(second.await.unwrap(), Ok(vec![false]));
        assert_eq!(bench.calls().len(), 2);
    }

    #[tokio::test]
    async fn an_error_reaches_every_message_of_the_call() {
        let batcher = Batcher::default();
        let answer = batcher
            .submit(checks("a", 2), async |_: &[&LimitCheck]| {
                Err("down".to_owned())
            })
            .await;
        assert_eq!(answer, Err("down".into()));
        let short = batcher
            .submit(checks("a", 2), async |_: &[&LimitCheck]| Ok(vec![true]))
            .await;
        assert_eq!(short, Err("the script answered 1 of 2 windows".into()));
    }
}

//! What happens to a message at end-of-message. Today: add the trace header and
//! accept. Inbound authentication, antivirus, policy and signing plug in here, in
//! that order, each as a step that adds facts or edits to the decision.

use std::sync::Arc;

use crate::config::Config;
use crate::decision::{Decision, Edit};
use crate::milter::flags::Actions;
use crate::milter::{BodyNeed, Filter, Needs};
use crate::transaction::Transaction;

pub const TRACE_HEADER: &str = "X-Mailwarden";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    trace_header: bool,
}

impl Pipeline {
    pub fn from_config(config: &Config) -> Self {
        Pipeline {
            trace_header: config.server.trace_header,
        }
    }
}

impl Filter for Pipeline {
    fn needs(&self) -> Needs {
        Needs {
            actions: if self.trace_header {
                Actions::ADD_HEADERS
            } else {
                Actions::empty()
            },
            headers: true,
            body: BodyNeed::Whole,
        }
    }

    async fn decide(&self, tx: Arc<Transaction>) -> Decision {
        let mut decision = Decision::accept("no checks configured");
        if self.trace_header {
            let queue_id = tx.queue_id().unwrap_or_else(|| "unknown".to_owned());
            decision.edits.push(Edit::AddHeader {
                name: TRACE_HEADER.to_owned(),
                value: format!("{} {}", env!("CARGO_PKG_VERSION"), sanitize(&queue_id)),
            });
        }
        decision
    }
}

/// The queue id comes from the MTA; keep only what a queue id can contain.
fn sanitize(queue_id: &str) -> String {
    queue_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;
    use crate::decision::Verdict;
    use crate::transaction::Macros;

    #[tokio::test]
    async fn adds_the_trace_header_and_accepts() {
        let pipeline = Pipeline::from_config(&crate::config::built_in());
        let mut macros = BTreeMap::new();
        macros.insert("i".to_owned(), Bytes::from_static(b"4XyZ1\r\nBcc: x"));
        let tx = Transaction {
            macros: Macros::new(macros),
            ..Default::default()
        };
        let d = pipeline.decide(Arc::new(tx)).await;
        assert_eq!(d.verdict, Verdict::Accept);
        assert_eq!(
            d.edits,
            vec![Edit::AddHeader {
                name: "X-Mailwarden".into(),
                value: format!("{} 4XyZ1Bccx", env!("CARGO_PKG_VERSION")),
            }]
        );
        assert_eq!(pipeline.needs().actions, Actions::ADD_HEADERS);
    }

    #[tokio::test]
    async fn without_trace_header_it_asks_for_no_actions() {
        let mut config = crate::config::built_in();
        config.server.trace_header = false;
        let pipeline = Pipeline::from_config(&config);
        assert_eq!(pipeline.needs().actions, Actions::empty());
        assert!(pipeline.decide(Arc::default()).await.edits.is_empty());
    }
}

//! Logging: `tracing` to standard error, as human-readable text or JSON lines, with a
//! level filter that a reload can change. Every message decision is one event.

pub mod alerts;
pub mod metrics;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

use crate::config::LogFormat;

/// Lets a reload change the level filter of the running subscriber.
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    from_env: bool,
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
pub fn init(format: LogFormat, level: &str) -> LogHandle {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = EnvFilter::builder()
        .parse(env.as_deref().unwrap_or(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_target(false),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr)
                    .with_target(false),
            )
            .init(),
    }
    LogHandle {
        filter: handle,
        from_env: env.is_some(),
    }
}

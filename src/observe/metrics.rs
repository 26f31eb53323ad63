//! Prometheus metrics: what mailwarden decided and how long it took, counted in
//! one process-wide registry that survives reloads. Recording is a few atomic
//! additions; it is skipped entirely when no `[admin]` endpoint is configured.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub direction: &'static str,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
    pub mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SkipLabels {
    pub rule: String,
    pub check: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OversizeLabels {
    pub check: &'static str,
    pub action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub method: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabels {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReportLabels {
    pub kind: &'static str,
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    enabled: AtomicBool,
    pub messages: Family<MessageLabels, Counter>,
    pub rule_matches: Family<RuleLabels, Counter>,
    /// Verdicts of DMARC or the antivirus step that a rule lifted with `skip`.
    pub rule_skips: Family<SkipLabels, Counter>,
    /// Messages a check could not see whole, by check and the configured action.
    pub oversize: Family<OversizeLabels, Counter>,
    pub auth_results: Family<AuthLabels, Counter>,
    pub viruses: Counter,
    pub clamd_errors: Family<ClassLabels, Counter>,
    pub dns_errors: Family<AuthLabels, Counter>,
    pub sessions_active: Gauge,
    pub protocol_errors: Counter,
    pub admin_denied: Family<ClassLabels, Counter>,
    /// Seconds per step: `message` (the whole end-of-message decision), `dns`
    /// (inbound checks), `clamd`, `signing`.
    pub latency: Family<StepLabels, Histogram>,
    /// DMARC report records, by `written` (stored) and `lost` (dropped with an
    /// error logged: the queue was full, or the store was away past the backlog).
    pub report_records: Family<ClassLabels, Counter>,
    pub report_store_errors: Counter,
    /// Failure reports by `queued` and `rate_limited`.
    pub failure_reports: Family<ClassLabels, Counter>,
    /// Report mails in the store by kind and state (pending, sent, failed, ...).
    pub report_mails: Family<ReportLabels, Gauge>,
    /// Redis calls that failed or timed out (fleet mode).
    pub redis_errors: Counter,
    /// 1 while Redis answers, 0 while it does not.
    pub redis_up: Gauge,
    /// Messages whose rate limits were not counted in Redis, by the
    /// `on_redis_error` action taken.
    pub redis_fallbacks: Family<ClassLabels, Counter>,
    /// Reloads by `success` and `failure` (refused: the running one stays).
    pub config_reloads: Family<ResultLabels, Counter>,
    /// When the running configuration was loaded (start or reload), Unix time.
    pub config_loaded: Gauge,
    /// Outbound messages that should have been signed and were not.
    pub signing_failures: Counter,
    /// Alerts a sink (`webhook`, `email`) did not take after every attempt.
    pub alert_delivery_failures: Family<SinkLabels, Counter>,
    /// The ClamAV signature database's version and date (Unix time), as clamd
    /// last said.
    pub clamd_signatures_version: Gauge,
    pub clamd_signatures_timestamp: Gauge,
}

fn histogram() -> Histogram {
    // 100 µs to about 105 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mailwarden");
        let m = Metrics {
            registry: Registry::default(),
            enabled: AtomicBool::new(false),
            messages: Family::default(),
            rule_matches: Family::default(),
            rule_skips: Family::default(),
            oversize: Family::default(),
            auth_results: Family::default(),
            viruses: Counter::default(),
            clamd_errors: Family::default(),
            dns_errors: Family::default(),
            sessions_active: Gauge::default(),
            protocol_errors: Counter::default(),
            admin_denied: Family::default(),
            latency: Family::new_with_constructor(histogram),
            report_records: Family::default(),
            report_store_errors: Counter::default(),
            failure_reports: Family::default(),
            report_mails: Family::default(),
            redis_errors: Counter::default(),
            redis_up: Gauge::default(),
            redis_fallbacks: Family::default(),
            config_reloads: Family::default(),
            config_loaded: Gauge::default(),
            signing_failures: Counter::default(),
            alert_delivery_failures: Family::default(),
            clamd_signatures_version: Gauge::default(),
            clamd_signatures_timestamp: Gauge::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the version label says which mailwarden runs",
            build,
        );
        registry.register(
            "config_reloads",
            "Configuration reloads by result (success, failure: refused, the running one stays)",
            m.config_reloads.clone(),
        );
        registry.register(
            "config_last_load_timestamp_seconds",
            "When the running configuration was loaded (start or the last successful reload)",
            m.config_loaded.clone(),
        );
        registry.register(
            "signing_failures",
            "Outbound messages that were to be DKIM-signed and were not (signing.on_error applied)",
            m.signing_failures.clone(),
        );
        registry.register(
            "alert_delivery_failures",
            "Anomaly alerts a sink did not take after every attempt, by sink",
            m.alert_delivery_failures.clone(),
        );
        registry.register(
            "clamd_signatures_version",
            "The ClamAV signature database version clamd last reported",
            m.clamd_signatures_version.clone(),
        );
        registry.register(
            "clamd_signatures_timestamp_seconds",
            "The date of the ClamAV signature database clamd last reported, Unix time",
            m.clamd_signatures_timestamp.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis calls that failed or took longer than cluster.timeout",
            m.redis_errors.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the fleet's Redis answers, else 0",
            m.redis_up.clone(),
        );
        registry.register(
            "redis_fallbacks",
            "Messages whose rate limits could not be counted in Redis, by the on_redis_error action taken",
            m.redis_fallbacks.clone(),
        );
        registry.register(
            "dmarc_report_records",
            "DMARC report records: written to the store, or lost (logged)",
            m.report_records.clone(),
        );
        registry.register(
            "dmarc_report_store_errors",
            "Errors opening or writing the DMARC report store",
            m.report_store_errors.clone(),
        );
        registry.register(
            "dmarc_failure_reports",
            "DMARC failure reports queued or not made because of the per-domain rate limit",
            m.failure_reports.clone(),
        );
        registry.register(
            "dmarc_report_mails",
            "DMARC report mails in the store, by kind (aggregate, failure) and state",
            m.report_mails.clone(),
        );
        registry.register(
            "messages",
            "Messages decided, by direction and final action",
            m.messages.clone(),
        );
        registry.register(
            "rule_matches",
            "Policy rule matches, enforced or in monitor mode",
            m.rule_matches.clone(),
        );
        registry.register(
            "rule_skips",
            "DMARC or antivirus verdicts a rule lifted because it names the check in skip",
            m.rule_skips.clone(),
        );
        registry.register(
            "oversize",
            "Messages DMARC or the virus scan could not check whole, by check and the on_oversize action taken",
            m.oversize.clone(),
        );
        registry.register(
            "auth_results",
            "Inbound authentication results by method and value",
            m.auth_results.clone(),
        );
        registry.register(
            "viruses",
            "Messages clamd found a virus in",
            m.viruses.clone(),
        );
        registry.register(
            "clamd_errors",
            "Scans that ended without a verdict, by class",
            m.clamd_errors.clone(),
        );
        registry.register(
            "dns_errors",
            "Inbound checks that hit a DNS failure (temperror), by method",
            m.dns_errors.clone(),
        );
        registry.register(
            "sessions_active",
            "Milter connections open now",
            m.sessions_active.clone(),
        );
        registry.register(
            "protocol_errors",
            "Milter sessions ended by a protocol error or time-out",
            m.protocol_errors.clone(),
        );
        registry.register(
            "admin_denied",
            "Admin endpoint requests refused, by reason",
            m.admin_denied.clone(),
        );
        registry.register(
            "latency_seconds",
            "Time per step: message, dns, clamd, signing, redis",
            m.latency.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Turns recording on (when the admin endpoint is configured).
    pub fn enable(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn observe(&self, step: &'static str, took: Duration) {
        if self.enabled() {
            self.latency
                .get_or_create(&StepLabels { step })
                .observe(took.as_secs_f64());
        }
    }

    /// Records that a configuration was loaded now.
    pub fn config_loaded_now(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.config_loaded
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the shipped Prometheus rules and Grafana dashboard use is
    /// one we register (an empty family is not in the exposition, so the
    /// registrations are read here).
    #[test]
    fn contrib_files_name_only_our_metrics() {
        let source = include_str!("metrics.rs");
        for file in [
            include_str!("../../contrib/prometheus/alerts.yml"),
            include_str!("../../contrib/grafana/mailwarden.json"),
        ] {
            let mut rest = file;
            while let Some(at) = rest.find("mailwarden_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                let base = ["_total", "_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name);
                let registered = base
                    .strip_prefix("mailwarden_")
                    .is_some_and(|n| source.contains(&format!("register(\n            \"{n}\",")));
                assert!(registered, "{name} is not exported");
            }
        }
    }

    #[test]
    fn counts_show_in_the_exposition() {
        let m = Metrics::new();
        m.messages
            .get_or_create(&MessageLabels {
                direction: "inbound",
                action: "reject",
            })
            .inc();
        m.enable(true);
        m.observe("clamd", Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains("mailwarden_messages_total{direction=\"inbound\",action=\"reject\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailwarden_latency_seconds_count{step=\"clamd\"} 1"),
            "{text}"
        );
    }
}

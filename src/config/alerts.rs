//! `[alerts]`: the anomaly thresholds and where alerts go (the log always; a
//! webhook and an email address when configured).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::check::Checker;
use super::model::{AlertsConfig, EmailSink, WebhookSink};
use super::parse::S;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    window: S<String>,
    cooldown: S<String>,
    min_messages: S<i64>,
    rate_factor: Option<f64>,
    auth_fail_share: Option<f64>,
    viruses: S<i64>,
    rejects: S<i64>,
    errors: S<i64>,
    max_keys: S<i64>,
    webhook: S<String>,
    webhook_token_file: S<String>,
    webhook_ca: S<String>,
    webhook_timeout: S<String>,
    email_to: S<String>,
    email_from: S<String>,
    smtp_relay: S<String>,
}

pub(super) fn check_alerts(
    c: &mut Checker<'_>,
    raw: Spanned<RawAlerts>,
    file: Option<&Path>,
) -> AlertsConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let dir = super::parse::config_dir(file);
    let relative = |t: &str| dir.join(t);
    let share = |c: &mut Checker<'_>, v: Option<f64>, key: &str, default: f64| match v {
        Some(x) if x > 0.0 && x <= 1.0 => x,
        Some(x) => {
            c.error(
                Some(span.clone()),
                key,
                format!("{x} is not a share between 0 and 1"),
            );
            default
        }
        None => default,
    };
    let webhook = raw.webhook.map(|w| {
        let url = w.get_ref().clone();
        if !url.starts_with("https://") {
            c.error(
                Some(w.span()),
                "alerts.webhook",
                "must be an https:// URL (alerts carry names and addresses)",
            );
        }
        WebhookSink {
            url,
            token_file: raw
                .webhook_token_file
                .as_ref()
                .map(|t| relative(t.get_ref())),
            ca_file: raw.webhook_ca.as_ref().map(|t| relative(t.get_ref())),
            timeout: Duration::from_secs(5),
        }
    });
    let timeout = c.duration(
        raw.webhook_timeout,
        "alerts.webhook_timeout",
        Duration::from_secs(5),
    );
    let webhook = webhook.map(|w| WebhookSink { timeout, ..w });
    let email = match (raw.email_to, raw.smtp_relay) {
        (Some(to), Some(relay)) => Some(EmailSink {
            to: to.get_ref().clone(),
            from: raw
                .email_from
                .map(|f| f.get_ref().clone())
                .unwrap_or_else(|| format!("mailwarden@{}", super::host_name())),
            relay: relay.get_ref().clone(),
        }),
        (Some(one), None) | (None, Some(one)) => {
            c.error(
                Some(one.span()),
                "alerts.email_to",
                "email_to and smtp_relay go together",
            );
            None
        }
        (None, None) => None,
    };
    AlertsConfig {
        window: c.duration(raw.window, "alerts.window", Duration::from_secs(60)),
        cooldown: c.duration(raw.cooldown, "alerts.cooldown", Duration::from_secs(1800)),
        min_messages: c.integer(raw.min_messages, "alerts.min_messages", 50, 1..10_000_001),
        rate_factor: match raw.rate_factor {
            Some(f) if f > 1.0 => f,
            Some(f) => {
                c.error(
                    Some(span.clone()),
                    "alerts.rate_factor",
                    format!("{f} must be above 1"),
                );
                5.0
            }
            None => 5.0,
        },
        auth_fail_share: share(c, raw.auth_fail_share, "alerts.auth_fail_share", 0.5),
        viruses: c.integer(raw.viruses, "alerts.viruses", 10, 1..10_000_001),
        rejects: c.integer(raw.rejects, "alerts.rejects", 200, 1..10_000_001),
        errors: c.integer(raw.errors, "alerts.errors", 20, 1..10_000_001),
        max_keys: c.integer(raw.max_keys, "alerts.max_keys", 100_000, 2..100_000_001) as usize,
        webhook,
        email,
    }
}

//! Where an alert goes after its log line: the webhook (HTTPS POST, JSON, an
//! optional bearer token) and the email address (SMTP through the relay), each
//! with a few attempts; in fleet mode only when this host raised it first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::alerts::Alert;
use super::fleet_counts::FleetGate;
use crate::config::{AlertsConfig, EmailSink, WebhookSink};

/// Checks what the sinks read from files before any alert needs them: the webhook's
/// token file (a secret: see `secret`) and its CA file. `serve`, a reload and
/// `check-config` refuse a configuration that fails here.
pub fn check(config: &AlertsConfig) -> Result<(), String> {
    if let Some(hook) = &config.webhook {
        if let Some(token) = &hook.token_file {
            crate::secret::check(token).map_err(|e| format!("alerts.webhook_token_file {e}"))?;
        }
        if let Some(ca) = &hook.ca_file {
            crate::tls::root_store(ca).map_err(|e| format!("alerts.webhook_ca {e}"))?;
        }
    }
    Ok(())
}

/// Sends queued alerts to the webhook and by email, each sink on its own task so
/// one that hangs does not hold up the other; a few attempts each, then logged.
pub(super) async fn deliver(
    config: AlertsConfig,
    mut rx: mpsc::Receiver<Alert>,
    gate: Option<Arc<dyn FleetGate>>,
) {
    while let Some(alert) = rx.recv().await {
        if let Some(gate) = &gate {
            match gate
                .first_in_fleet(alert.kind, &alert.key, config.cooldown)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    info!(
                        alert = alert.kind,
                        key = %alert.key,
                        "alert already raised by another host of the fleet: not sent again"
                    );
                    continue;
                }
                // Better twice than never: the sinks get it.
                Err(e) => warn!(
                    alert = alert.kind,
                    "the fleet cannot say who raised it first ({e}); sending"
                ),
            }
        }
        if let Some(hook) = config.webhook.clone() {
            let a = alert.clone();
            tokio::spawn(async move {
                for attempt in 1..=3u32 {
                    match post_webhook(&hook, &a).await {
                        Ok(()) => {
                            info!(alert = a.kind, "alert sent to the webhook");
                            return;
                        }
                        Err(e) if attempt < 3 => {
                            warn!(alert = a.kind, attempt, "webhook failed, retrying: {e}");
                            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                        }
                        Err(e) => {
                            warn!(alert = a.kind, "webhook failed, giving up: {e}");
                            delivery_failed("webhook");
                        }
                    }
                }
            });
        }
        if let Some(email) = config.email.clone() {
            let a = alert.clone();
            tokio::spawn(async move {
                match send_email(&email, &a).await {
                    Ok(()) => info!(alert = a.kind, to = %email.to, "alert mailed"),
                    Err(e) => {
                        warn!(alert = a.kind, "alert email failed: {e}");
                        delivery_failed("email");
                    }
                }
            });
        }
    }
}

/// POSTs the alert as JSON over HTTPS, verifying the server's certificate.
async fn post_webhook(hook: &WebhookSink, alert: &Alert) -> Result<(), String> {
    use rustls_pki_types::ServerName;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rest = hook
        .url
        .strip_prefix("https://")
        .ok_or("the webhook must be https")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|e| e.to_string())?),
        None => (authority, 443),
    };
    let roots_file = hook
        .ca_file
        .clone()
        .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
    let roots = crate::tls::root_store(&roots_file).map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let token = match &hook.token_file {
        Some(f) => String::from_utf8_lossy(&crate::secret::read(f).map_err(|e| e.to_string())?)
            .trim()
            .to_owned(),
        None => String::new(),
    };
    let body = alert.json();
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        let auth = if token.is_empty() {
            String::new()
        } else {
            format!("Authorization: Bearer {token}\r\n")
        };
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply).await;
        let status = String::from_utf8_lossy(&reply)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the webhook answered status {status}"))
        }
    };
    tokio::time::timeout(hook.timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {:?}", hook.timeout))?
}

/// Mails the alert through the SMTP relay.
async fn send_email(email: &EmailSink, alert: &Alert) -> Result<(), String> {
    use mail_send::SmtpClientBuilder;
    use mail_send::mail_builder::MessageBuilder;
    let (host, port) = email
        .relay
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("smtp_relay {:?} is not host:port", email.relay))?;
    let message = MessageBuilder::new()
        .from(email.from.as_str())
        .to(email.to.as_str())
        .subject(format!("mailwarden alert: {} {}", alert.kind, alert.key))
        .text_body(format!(
            "mailwarden on {} saw an anomaly.\n\n{}\n\n{}\n",
            crate::config::host_name(),
            alert.summary(),
            alert.json()
        ));
    let mut client = SmtpClientBuilder::new(host, port)?
        .implicit_tls(false)
        .timeout(Duration::from_secs(30))
        .connect_plain()
        .await
        .map_err(|e| e.to_string())?;
    client.send(message).await.map_err(|e| e.to_string())
}

fn delivery_failed(sink: &'static str) {
    super::metrics::metrics()
        .alert_delivery_failures
        .get_or_create(&super::metrics::SinkLabels { sink })
        .inc();
}

//! The admin HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (DNS and clamd answer, each named when not). Every request
//! needs a bearer token from the token file, compared in constant time and never
//! logged; `/metrics` alone may be opened with `public_metrics = true`.

use std::path::Path;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::AdminConfig;
use crate::observe::metrics::{ClassLabels, metrics};
use crate::pipeline::Pipeline;
use crate::session::Service;
use crate::shutdown::Shutdown;

pub struct Admin {
    tokens: RwLock<Vec<Vec<u8>>>,
    public_metrics: bool,
    services: watch::Receiver<Arc<Service<Pipeline>>>,
}

/// Reads a token file: one token per line, blank lines and `#` comments skipped.
/// A file other users can read or anyone but its owner change, or one with no
/// token, is refused.
pub fn read_tokens(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let shown = path.display();
    let bytes = crate::secret::read(path).map_err(|e| format!("admin.token_file {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let tokens: Vec<Vec<u8>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    if tokens.is_empty() {
        return Err(format!("admin.token_file {shown}: holds no token"));
    }
    if tokens.iter().any(|t| t.len() < 16) {
        return Err(format!(
            "admin.token_file {shown}: tokens must be at least 16 characters"
        ));
    }
    Ok(tokens)
}

/// Equal in time that depends only on the lengths, not on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Admin {
    pub fn new(
        config: &AdminConfig,
        services: watch::Receiver<Arc<Service<Pipeline>>>,
    ) -> Result<Admin, String> {
        Ok(Admin {
            tokens: RwLock::new(read_tokens(&config.token_file)?),
            public_metrics: config.public_metrics,
            services,
        })
    }

    /// Reads the token file again (on SIGHUP); a broken one keeps the old tokens.
    pub fn reload_tokens(&self, config: &AdminConfig) {
        match read_tokens(&config.token_file) {
            Ok(t) => {
                if let Ok(mut tokens) = self.tokens.write() {
                    *tokens = t;
                }
            }
            Err(e) => warn!("keeping the previous admin tokens: {e}"),
        }
    }

    /// `Err` (a 401 to send) unless the request carries one of our tokens.
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let reason = match presented {
            None => "missing",
            Some(token) => {
                let tokens = self.tokens.read().map(|t| t.clone()).unwrap_or_default();
                // Every token is compared, so the time does not say which one matched.
                let ok = tokens.iter().fold(false, |ok, t| {
                    constant_time_eq(t, token.trim().as_bytes()) | ok
                });
                if ok {
                    return Ok(());
                }
                "wrong"
            }
        };
        metrics()
            .admin_denied
            .get_or_create(&ClassLabels { class: reason })
            .inc();
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized\n",
            )
                .into_response(),
        ))
    }
}

async fn metrics_page(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if !admin.public_metrics
        && let Err(denied) = admin.authorize(&headers)
    {
        return *denied;
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().encode(),
    )
        .into_response()
}

async fn healthz(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    match admin.authorize(&headers) {
        Ok(()) => "ok\n".into_response(),
        Err(denied) => *denied,
    }
}

async fn readyz(State(admin): State<Arc<Admin>>, headers: HeaderMap) -> Response {
    if let Err(denied) = admin.authorize(&headers) {
        return *denied;
    }
    let service = admin.services.borrow().clone();
    let checks = service.filter.readiness().await;
    let mut body = String::new();
    let mut ready = true;
    for (name, result) in checks {
        match result {
            Ok(()) => body.push_str(&format!("{name}: ok\n")),
            Err(e) => {
                ready = false;
                body.push_str(&format!("{name}: not ready: {e}\n"));
            }
        }
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        format!("{}\n{body}", if ready { "ready" } else { "not ready" }),
    )
        .into_response()
}

/// The rustls server configuration for `[admin]`'s TLS settings; `None` for plain
/// HTTP. Errors name the file.
pub fn tls_config(
    config: &AdminConfig,
) -> Result<Option<Arc<rustls::ServerConfig>>, crate::tls::TlsError> {
    let Some((cert_file, key_file)) = &config.tls else {
        return Ok(None);
    };
    crate::tls::server_config(cert_file, key_file, config.client_ca.as_deref()).map(Some)
}

/// Binds the endpoint and serves it until `shutdown`.
pub async fn serve(
    config: &AdminConfig,
    admin: Arc<Admin>,
    shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let tls = tls_config(config).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("admin.listen {}: {e}", config.listen))?;
    let scheme = match (&tls, &config.client_ca) {
        (None, _) => "http",
        (Some(_), None) => "https",
        (Some(_), Some(_)) => "https with client certificates",
    };
    info!(listen = %config.listen, scheme, "admin endpoint listening (/metrics, /healthz, /readyz)");
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(admin);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections as usize));
    let limit = config.timeout;
    let mut shutdown = shutdown;
    Ok(tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, most likely: wait rather than spin.
                        warn!("admin endpoint: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.wait() => return,
            };
            // Over the cap the connection is closed at once: its descriptor is
            // the milter sessions' to use.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                metrics()
                    .admin_denied
                    .get_or_create(&ClassLabels { class: "busy" })
                    .inc();
                drop(stream);
                continue;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let served =
                    tokio::time::timeout(limit, serve_one(stream, peer, acceptor, app, limit));
                if served.await.is_err() {
                    metrics()
                        .admin_denied
                        .get_or_create(&ClassLabels { class: "timeout" })
                        .inc();
                }
            });
        }
    }))
}

/// One connection: the TLS handshake when configured, then HTTP/1 requests, the
/// header of each due within `limit`.
async fn serve_one(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limit: std::time::Duration,
) {
    let service = hyper::service::service_fn(move |request| {
        use tower::ServiceExt;
        app.clone().oneshot(request)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limit);
    let Some(acceptor) = acceptor else {
        let _ = http
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
        return;
    };
    match acceptor.accept(stream).await {
        Ok(tls) => {
            let _ = http
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        }
        Err(e) => {
            metrics()
                .admin_denied
                .get_or_create(&ClassLabels { class: "tls" })
                .inc();
            info!(%peer, "admin endpoint: TLS handshake refused: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn token_files_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# admins\n0123456789abcdef0123\n\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_tokens(&path).unwrap(),
            [b"0123456789abcdef0123".to_vec()]
        );
        std::fs::write(&path, "short\n").unwrap();
        assert!(read_tokens(&path).unwrap_err().contains("at least 16"));
        std::fs::write(&path, "# none\n").unwrap();
        assert!(read_tokens(&path).unwrap_err().contains("no token"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            read_tokens(&path)
                .unwrap_err()
                .contains("readable by every user")
        );
    }
}

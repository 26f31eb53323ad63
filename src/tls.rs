//! TLS material from PEM files: certificate chains, trust stores and the rustls
//! server configuration (with optional client-certificate verification). The admin
//! endpoint serves with it and the alert webhook verifies its server with it; every
//! error names the file.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

fn at(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError(format!("{}: {e}", path.display()))
}

/// The certificates in a PEM file; an error names the file, also when it holds none.
pub fn pem_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| at(path, e))?;
    if certs.is_empty() {
        return Err(at(path, "no certificate in it"));
    }
    Ok(certs)
}

/// A trust store holding the certificates of a PEM file.
pub fn root_store(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certificates(path)? {
        roots.add(cert).map_err(|e| at(path, e))?;
    }
    Ok(roots)
}

/// A rustls server configuration from a certificate chain and its key, asking for
/// client certificates signed by `client_ca` when one is given.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = pem_certificates(cert_file)?;
    let pem = crate::secret::read(key_file).map_err(|e| TlsError(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| at(key_file, e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(root_store(ca)?),
                provider,
            )
            .build()
            .map_err(|e| at(ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let tls = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "{} / {}: {e}",
            cert_file.display(),
            key_file.display()
        ))
    })?;
    Ok(Arc::new(tls))
}

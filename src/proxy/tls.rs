//! TLS on the proxy's own listener: the certificate pair loaded at start, offered with ALPN
//! (`h2`, `http/1.1`), and swapped for new connections when its files change.
//!
//! The files are checked every [`RELOAD_EVERY`] by their modification times; a pair that no
//! longer loads is logged and the one in use kept, so a half-written rotation never takes the
//! listener down. Never: log a key's bytes, or drop open connections on a reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ListenerTlsSpec;
use crate::shutdown::ShutdownSignal;

/// How often the certificate files are checked for a change.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// Why the listener's certificate pair could not be used; the text is the operator's.
#[derive(Debug, thiserror::Error)]
pub enum TlsListenError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {path}")]
    Pem {
        /// The configured file.
        path: String,
        /// What reading or parsing said.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no certificate")]
    NoCertificate {
        /// The configured file.
        path: String,
    },
    /// rustls refused the pair (a key that does not match, an unsupported key type).
    #[error("the certificate and key cannot be used")]
    Rustls(#[source] rustls::Error),
}

/// The listener's TLS settings as in use now, shared by every worker.
pub struct ListenerTls {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<ServerConfig>,
}

impl ListenerTls {
    /// The pair `spec` names, loaded; `None` when TLS is not configured.
    pub fn load(spec: &ListenerTlsSpec) -> Result<Option<Arc<ListenerTls>>, TlsListenError> {
        let (Some(cert), Some(key)) = (&spec.cert_file, &spec.key_file) else {
            return Ok(None);
        };
        let (cert, key) = (PathBuf::from(cert), PathBuf::from(key));
        let config = server_config(&cert, &key)?;
        Ok(Some(Arc::new(ListenerTls {
            cert,
            key,
            current: ArcSwap::from_pointee(config),
        })))
    }

    /// An acceptor with the pair in use now (one `Arc` clone per connection).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Checks the files every [`RELOAD_EVERY`] until shutdown and swaps in a changed pair.
    pub async fn watch(self: Arc<Self>, mut signal: ShutdownSignal) {
        let mut seen = self.stamps();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
                _ = signal.recv() => return,
            }
            let now = self.stamps();
            if now == seen {
                continue;
            }
            seen = now;
            match server_config(&self.cert, &self.key) {
                Ok(config) => {
                    self.current.store(Arc::new(config));
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => tracing::warn!(
                    error = %chain(&e),
                    "TLS certificate changed but cannot be used; keeping the current one"
                ),
            }
        }
    }

    fn stamps(&self) -> (Option<SystemTime>, Option<SystemTime>) {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (modified(&self.cert), modified(&self.key))
    }
}

/// The error and its causes, for a log line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// A rustls server config for the pair, offering HTTP/2 and HTTP/1.1 by ALPN.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsListenError> {
    let pem = |path: &Path, source| TlsListenError::Pem {
        path: path.display().to_string(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert, e))?;
    if certs.is_empty() {
        return Err(TlsListenError::NoCertificate {
            path: cert.display().to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsListenError::Rustls)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsListenError::Rustls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

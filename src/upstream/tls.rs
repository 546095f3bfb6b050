//! hyper's connector for the IAM: TCP with `TCP_NODELAY` and a connect timeout, then TLS
//! with the system's roots plus an optional CA file, checked at config load.
//!
//! Never: accept an upstream certificate no configured root vouches for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// Why `upstream_tls.ca_file` cannot be used; the text is the operator's.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be opened or read.
    #[error("cannot read CA file {}: {reason}", path.display())]
    Read {
        /// The configured file.
        path: PathBuf,
        /// What reading it said.
        reason: rustls_pki_types::pem::Error,
    },
    /// A PEM block that is not a certificate.
    #[error("bad certificate in {}: {reason}", path.display())]
    Bad {
        /// The configured file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: rustls_pki_types::pem::Error,
    },
    /// A certificate rustls will not take as a root.
    #[error("unusable certificate in {}: {reason}", path.display())]
    Unusable {
        /// The configured file.
        path: PathBuf,
        /// What rustls said.
        reason: rustls::Error,
    },
    /// No certificate in the file at all.
    #[error("no PEM certificates found in {}", path.display())]
    Empty {
        /// The configured file.
        path: PathBuf,
    },
}

/// The connector hyper's client dials with.
pub(super) fn build_connector(
    connect_timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<HttpsConnector<HttpConnector>, TlsError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));

    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    let mut roots = rustls::RootCertStore::empty();
    // A machine without system roots can still reach an upstream signed by `ca_file`.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path).map_err(|reason| TlsError::Read {
            path: path.to_owned(),
            reason,
        })?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|reason| TlsError::Bad {
                path: path.to_owned(),
                reason,
            })?;
            roots.add(cert).map_err(|reason| TlsError::Unusable {
                path: path.to_owned(),
                reason,
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(TlsError::Empty {
                path: path.to_owned(),
            });
        }
    }
    Ok(roots)
}

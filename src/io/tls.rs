//! SIP over TLS (RFC 3261 §26.2, Twilio's Secure Trunking on 5061): the server configuration built from the
//! certificate chain and key files, with rustls on ring, TLS 1.2 and 1.3. Read at start and again on SIGHUP;
//! a new configuration reaches new connections only.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {message}")]
    Certificate { path: String, message: String },
    #[error("cannot read the private key {path}: {message}")]
    Key { path: String, message: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// The server configuration for `cert` (PEM, leaf first, then intermediates) and `key` (PEM: PKCS#8, PKCS#1
/// or SEC1). Clients are not asked for certificates (Twilio presents none).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate { path: shown(cert), message: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate { path: shown(cert), message: "no certificate in the file".into() });
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key { path: shown(key), message: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    // SIP is the only protocol spoken here; no ALPN is negotiated (Twilio sends none).
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn a_certificate_and_key_in_pem_make_a_configuration() {
        let dir = std::env::temp_dir().join(format!("vocals-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = write_pair(&dir);
        assert!(server_config(&c, &k).is_ok());
        // Files that are missing, empty or swapped say which file and what is wrong.
        let missing = server_config(&dir.join("nope.pem"), &k).unwrap_err();
        assert!(matches!(missing, TlsError::Certificate { .. }), "{missing}");
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        let empty = server_config(&dir.join("empty.pem"), &k).unwrap_err();
        assert!(empty.to_string().contains("no certificate"), "{empty}");
        let swapped = server_config(&c, &c).unwrap_err();
        assert!(matches!(swapped, TlsError::Key { .. }), "{swapped}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

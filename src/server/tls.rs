//! TLS: the rustls server configuration (HTTP/2 and HTTP/1.1 by ALPN), certificate
//! loading with errors that name the file, and `hookscope cert` generation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why the certificate or key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// "TLS certificate" or "TLS key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file has no PEM certificate (or a broken one).
    #[error("no usable certificate in {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file has no PEM private key (or a broken one).
    #[error("no usable private key in {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the pair (usually: the key does not belong to the certificate).
    #[error("certificate {cert} and key {key} cannot be used together: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// Certificate generation failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// The rustls configuration for serving HTTPS with this certificate chain and key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_pem = read("TLS certificate", cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Certificate {
            path: cert.to_owned(),
            reason: error.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_owned(),
            reason: "no -----BEGIN CERTIFICATE----- block".into(),
        });
    }
    let key_pem = read("TLS key", key)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::Key {
        path: key.to_owned(),
        reason: error.to_string(),
    })?;
    let pair_error = |reason: String| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let provider = crate::outgoing::crypto_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| pair_error(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| {
            pair_error(match error {
                rustls::Error::InconsistentKeys(_) => {
                    "the key does not belong to the certificate (a key from another pair?)".into()
                }
                other => other.to_string(),
            })
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A self-signed certificate and its key, as PEM text.
#[derive(Debug, Clone)]
pub struct GeneratedCert {
    /// The certificate.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
    /// The names it is valid for.
    pub names: Vec<String>,
}

/// Generates a self-signed certificate for localhost, 127.0.0.1, ::1 and `extra` names.
pub fn generate_cert(extra: &[String]) -> Result<GeneratedCert, TlsError> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let generated = rcgen::generate_simple_self_signed(names.clone())
        .map_err(|error| TlsError::Generate(error.to_string()))?;
    Ok(GeneratedCert {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_load_and_mismatched_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("hookscope-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = generate_cert(&["example.test".into()]).unwrap();
        assert!(one.names.contains(&"example.test".to_string()));
        let other = generate_cert(&[]).unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (cert, key, other_key) = (
            write("cert.pem", &one.cert_pem),
            write("key.pem", &one.key_pem),
            write("other-key.pem", &other.key_pem),
        );
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let error = server_config(&cert, &other_key).unwrap_err().to_string();
        assert!(error.contains("cannot be used together"), "{error}");
        let error = server_config(&dir.join("missing.pem"), &key)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("cannot read TLS certificate ") && error.contains("missing.pem"),
            "{error}"
        );
        let error = server_config(&key, &key).unwrap_err().to_string();
        assert!(error.starts_with("no usable certificate in "), "{error}");
        let error = server_config(&cert, &cert).unwrap_err().to_string();
        assert!(error.starts_with("no usable private key in "), "{error}");
    }
}

//! The redis backend's TLS set-up: rustls with ring (as the HTTP backends);
//! `-client-ca-keys` as the only roots trusted (as confd uses it), else the
//! system's through the platform verifier (as reqwest finds them); a client
//! certificate when `-client-cert` and `-client-key` are both given.

use std::path::Path;
use std::sync::Arc;

use super::RedisConfig;
use crate::error::ConfigError;

fn read_pem(flag: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::setting(
            flag,
            format!("{}: {}", path.display(), crate::error::io_reason(&e)),
        )
    })
}

/// The TLS set-up: `-client-ca-keys` as the only roots (as confd uses
/// it), else the system's; a client certificate when both files are given.
pub fn client_config(config: &RedisConfig) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::setting("-node", format!("cannot set up TLS: {e}")))?;
    let builder = match &config.client_ca_keys {
        Some(ca) => {
            let pem = read_pem("-client-ca-keys", ca)?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    ConfigError::setting("-client-ca-keys", format!("{}: {e}", ca.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    ConfigError::setting("-client-ca-keys", format!("{}: {e}", ca.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(ConfigError::setting(
                    "-client-ca-keys",
                    format!("{}: no PEM certificate in it", ca.display()),
                ));
            }
            builder.with_root_certificates(roots)
        }
        None => builder.with_platform_verifier().map_err(|e| {
            ConfigError::setting("-node", format!("cannot load the system's CA roots: {e}"))
        })?,
    };
    let tls = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let both = || format!("{} / {}", cert.display(), key.display());
            let certs = CertificateDer::pem_slice_iter(&read_pem("-client-cert", cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    ConfigError::setting("-client-cert", format!("{}: {e}", cert.display()))
                })?;
            let key =
                PrivateKeyDer::from_pem_slice(&read_pem("-client-key", key)?).map_err(|e| {
                    ConfigError::setting("-client-key", format!("{}: {e}", key.display()))
                })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                ConfigError::setting("-client-cert/-client-key", format!("{}: {e}", both()))
            })?
        }
        (Some(_), None) => {
            return Err(ConfigError::setting(
                "-client-cert",
                "needs -client-key as well",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::setting(
                "-client-key",
                "needs -client-cert as well",
            ));
        }
        (None, None) => builder.with_no_client_auth(),
    };
    Ok(Arc::new(tls))
}

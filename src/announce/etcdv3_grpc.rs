//! `confd announce -backend etcdv3` over etcd's gRPC API (the default; the
//! gateway version is `etcdv3.rs`, chosen by `-etcdv3-api gateway`): a lease
//! of the TTL (`LeaseGrant`), the key put with it (`Put`), one
//! `LeaseKeepAlive` request and answer per refresh (a TTL of 0 means the
//! lease expired: grant a new one and put again), and `LeaseRevoke` to withdraw, which
//! deletes the key with it but never a value someone else wrote over it
//! with their own lease. Nodes, credentials and TLS are the etcdv3
//! backend's.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::PutOptions;

use super::registrar::{Refreshed, Registrar};
use crate::backend::BackendError;
use crate::backend::etcdv3::EtcdV3Grpc;
use crate::backend::http::{HttpConfig, REQUEST_TIMEOUT};
use crate::error::ConfigError;

/// Keeps a key alive in etcd with a lease, over gRPC.
#[derive(Debug)]
pub struct EtcdV3GrpcRegistrar {
    api: EtcdV3Grpc,
    key: String,
    value: String,
    ttl: Duration,
    lease: Option<i64>,
}

impl EtcdV3GrpcRegistrar {
    /// Prepares the client (nothing is sent yet).
    pub fn new(
        config: &HttpConfig,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<EtcdV3GrpcRegistrar, ConfigError> {
        Ok(EtcdV3GrpcRegistrar {
            api: EtcdV3Grpc::new(config)?,
            key: key.to_string(),
            value: value.to_string(),
            ttl,
            lease: None,
        })
    }

    fn seconds(&self) -> i64 {
        i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A lease's TTL as etcd gave it; 0 or less means it is gone.
fn granted(ttl: i64) -> Option<Duration> {
    u64::try_from(ttl)
        .ok()
        .filter(|&t| t > 0)
        .map(Duration::from_secs)
}

#[async_trait]
impl Registrar for EtcdV3GrpcRegistrar {
    async fn register(&mut self) -> Result<Option<Duration>, BackendError> {
        let mut ttl = None;
        let lease = match self.lease {
            Some(lease) => lease,
            None => {
                let seconds = self.seconds();
                let (answer, _) = self
                    .api
                    .on_nodes(REQUEST_TIMEOUT, |client| async move {
                        client.lease_client().grant(seconds, None).await
                    })
                    .await?;
                ttl = granted(answer.ttl());
                self.lease = Some(answer.id());
                answer.id()
            }
        };
        let (key, value) = (self.key.clone(), self.value.clone());
        let put = self
            .api
            .on_nodes(REQUEST_TIMEOUT, |client| {
                let (key, value) = (key.clone(), value.clone());
                async move {
                    let options = PutOptions::new().with_lease(lease);
                    client.kv_client().put(key, value, Some(options)).await
                }
            })
            .await;
        match put {
            // etcd may raise a short TTL to its minimum lease: refresh by
            // the TTL it granted.
            Ok(_) => Ok(Some(ttl.unwrap_or(self.ttl))),
            Err(e) => {
                // The lease may have expired between grant and put.
                self.lease = None;
                Err(e)
            }
        }
    }

    async fn refresh(&mut self) -> Result<Refreshed, BackendError> {
        let Some(lease) = self.lease else {
            return Ok(Refreshed::Gone);
        };
        // etcd-client's keep_alive sends one request and reads its answer
        // itself: an answer with a TTL of 0 (the lease expired) comes back
        // as LeaseKeepAliveError. The TTL etcd granted was taken at
        // registration, so the refresh period stays.
        let (alive, _) = self
            .api
            .on_nodes(REQUEST_TIMEOUT, |client| async move {
                match client.lease_client().keep_alive(lease).await {
                    Ok(_) => Ok(true),
                    Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await?;
        if alive {
            Ok(Refreshed::Alive(None))
        } else {
            self.lease = None;
            Ok(Refreshed::Gone)
        }
    }

    async fn withdraw(&mut self) -> Result<(), BackendError> {
        let Some(lease) = self.lease.take() else {
            return Ok(());
        };
        let revoked = self
            .api
            .on_nodes(REQUEST_TIMEOUT, |client| async move {
                client.lease_client().revoke(lease).await
            })
            .await;
        match revoked {
            Ok(_) => Ok(()),
            // A lease that expired already took the key with it.
            Err(e) if e.message.contains("lease not found") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ttl_of_zero_or_less_means_the_lease_is_gone() {
        assert_eq!(granted(10), Some(Duration::from_secs(10)));
        assert_eq!(granted(0), None);
        assert_eq!(granted(-1), None);
    }
}

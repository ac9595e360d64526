//! The `vault` backend: secrets from HashiCorp Vault or OpenBao (same HTTP
//! API), as confd's vault backend reads them.
//!
//! Each root (a resource's key) is looked up in the mount table
//! (`sys/internal/ui/mounts/<path>`, as the maintained confd fork does) to
//! learn its engine: KV version 2 is read through `<mount>/data/` and listed
//! through `<mount>/metadata/`, while keys keep their logical paths
//! (`/secret/app/db`). The root itself is read as a secret, then the tree
//! below it is listed folder by folder and every secret in it read. How a
//! secret becomes keys is confd's rule (`kv::Collected::add_secret`).
//!
//! Vault has no change notification: with `-watch` the daemon says so and
//! polls at `-interval`. The token is obtained and kept fresh by
//! `client::Client`; a read refused with 403 while the token no longer
//! works (its `lookup-self` is refused too) logs in again once and reads
//! again, so a revoked or aged-out token never stops a daemon whose method
//! can log in.

mod auth;
mod client;
mod kv;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

pub use auth::{AuthMethod, KUBERNETES_TOKEN_FILE, Secret};
use client::{CallError, Client, Fetch};
use kv::{Collected, Engine, Mount};

use super::http::{ClientAuth, HttpConfig, NodeClient};
use super::{Backend, BackendError, Fetched};
use crate::error::ConfigError;

/// Where `-backend vault` connects when no `-node` is given (confd's).
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8200";

/// The deepest folder nesting read below a root: far beyond any real tree,
/// and a bound on a server that lists a folder inside itself forever.
const MAX_DEPTH: usize = 128;

/// How many requests a read keeps in flight: Vault has no recursive read,
/// so a tree costs one request per secret and folder, and latency, not
/// bandwidth, is what a sequential walk would pay (1,000 secrets: 0.49 s
/// one by one against OpenBao on this machine).
const IN_FLIGHT: usize = 8;

/// The vault settings of a run, as the flags and confd.toml give them
/// (checked when the backend config is built). `Debug` masks the secret ID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VaultSettings {
    /// `-auth-type`.
    pub auth_type: Option<String>,
    /// `-role-id` (AppRole's role ID; Kubernetes' role).
    pub role_id: Option<String>,
    /// `-secret-id`.
    pub secret_id: Option<String>,
    /// `-path`: the auth method's mount.
    pub path: Option<String>,
    /// `-kubernetes-token-file`.
    pub kubernetes_token_file: Option<PathBuf>,
}

impl std::fmt::Debug for VaultSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultSettings")
            .field("auth_type", &self.auth_type)
            .field("role_id", &self.role_id)
            .field("secret_id", &self.secret_id.as_ref().map(|_| "***"))
            .field("path", &self.path)
            .field("kubernetes_token_file", &self.kubernetes_token_file)
            .finish()
    }
}

/// The auth types `-auth-type` accepts, for messages.
const AUTH_TYPES: &str = "token, app-role, userpass, github, kubernetes or cert";

/// The vault backend's typed settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    /// Nodes and TLS (no basic auth: Vault does not take it).
    pub http: HttpConfig,
    /// How to get a token.
    pub method: AuthMethod,
    /// The auth method's mount (`-path`, else the method's usual one).
    pub mount: String,
}

fn given(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.is_empty())
}

impl VaultConfig {
    /// Checks the auth settings: the method exists and has what it needs.
    /// `auth.auth_token` is `-auth-token` or `VAULT_TOKEN`.
    pub fn new(
        http: HttpConfig,
        auth: &ClientAuth,
        vault: &VaultSettings,
    ) -> Result<VaultConfig, ConfigError> {
        let needs = |value: &Option<String>, flag: &str, kind: &str| {
            given(value).ok_or_else(|| {
                ConfigError::setting(flag, format!("-auth-type {kind} needs {flag}"))
            })
        };
        let kind = given(&vault.auth_type).ok_or_else(|| {
            ConfigError::setting(
                "-auth-type",
                format!("the vault backend needs an auth method: {AUTH_TYPES}"),
            )
        })?;
        let method = match kind.as_str() {
            "token" => {
                AuthMethod::Token(Secret::new(given(&auth.auth_token).ok_or_else(|| {
                    ConfigError::setting(
                        "-auth-token",
                        "-auth-type token needs -auth-token or VAULT_TOKEN",
                    )
                })?))
            }
            "app-role" | "approle" => AuthMethod::AppRole {
                role_id: needs(&vault.role_id, "-role-id", "app-role")?,
                secret_id: Secret::new(needs(&vault.secret_id, "-secret-id", "app-role")?),
            },
            "userpass" => AuthMethod::UserPass {
                username: needs(&auth.username, "-username", "userpass")?,
                password: Secret::new(needs(&auth.password, "-password", "userpass")?),
            },
            "github" => AuthMethod::Github(Secret::new(needs(
                &auth.auth_token,
                "-auth-token",
                "github",
            )?)),
            "kubernetes" => AuthMethod::Kubernetes {
                role: needs(&vault.role_id, "-role-id", "kubernetes")?,
                jwt_file: vault
                    .kubernetes_token_file
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(KUBERNETES_TOKEN_FILE)),
            },
            "cert" => {
                if auth.client_cert.is_none() || auth.client_key.is_none() {
                    return Err(ConfigError::setting(
                        "-auth-type",
                        "cert needs -client-cert and -client-key",
                    ));
                }
                AuthMethod::Cert
            }
            "app-id" => {
                return Err(ConfigError::setting(
                    "-auth-type",
                    "app-id no longer exists: Vault removed it in 1.12 and OpenBao never had it; use app-role (-role-id, -secret-id)",
                ));
            }
            other => {
                return Err(ConfigError::setting(
                    "-auth-type",
                    format!("unknown auth type {other:?}; use {AUTH_TYPES}"),
                ));
            }
        };
        let mount = given(&vault.path)
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| method.default_mount().to_string());
        // Only the TLS files go to the HTTP client: -username/-password are
        // userpass's, and basic auth would send them to every request.
        let tls = ClientAuth {
            client_cert: auth.client_cert.clone(),
            client_key: auth.client_key.clone(),
            client_ca_keys: auth.client_ca_keys.clone(),
            ..ClientAuth::default()
        };
        Ok(VaultConfig {
            http: HttpConfig { auth: tls, ..http },
            method,
            mount,
        })
    }
}

/// Reads secrets from Vault.
#[derive(Debug)]
pub struct VaultBackend {
    client: Arc<Client>,
}

impl VaultBackend {
    /// Prepares the client (nothing is sent yet: the login happens at the
    /// first read).
    pub fn new(config: &VaultConfig) -> Result<VaultBackend, ConfigError> {
        let http = NodeClient::new(&config.http)?.without_userinfo_auth();
        Ok(VaultBackend {
            client: Arc::new(Client::new(
                http,
                config.method.clone(),
                config.mount.clone(),
            )),
        })
    }

    /// Every pair under `roots`, read with `token`.
    async fn read_with(
        &self,
        roots: &[String],
        token: &Secret,
    ) -> Result<Vec<(String, String)>, CallError> {
        let mut collected = Collected::default();
        for root in roots {
            let mounts = if root == "/" {
                self.every_mount(token).await?
            } else {
                vec![self.mount_of(root, token).await?]
            };
            for (mount, relative) in mounts {
                self.read_tree(&mount, &relative, token, &mut collected)
                    .await
                    .map_err(|e| match e {
                        CallError::Denied(e) => CallError::Denied(e.reading(root)),
                        CallError::Failed(e) => CallError::Failed(e.reading(root)),
                    })?;
            }
        }
        for (secret, field) in &collected.skipped {
            tracing::warn!(backend = "vault", secret = %secret, field = %field, "field skipped: its name would leave the secret's keys");
        }
        Ok(collected.into_pairs(roots))
    }

    /// Every kv mount the token can see, for the root `/`.
    async fn every_mount(&self, token: &Secret) -> Result<Vec<(Mount, String)>, CallError> {
        let mounts = match self
            .client
            .get("sys/internal/ui/mounts", false, token)
            .await?
        {
            Fetch::Found(answer) => kv::readable_mounts(&answer["data"]),
            Fetch::Absent => Vec::new(),
        };
        Ok(mounts.into_iter().map(|m| (m, String::new())).collect())
    }

    /// The mount holding `root` and the path below it. Without the mount
    /// table (a server that lacks the endpoint), the first segment is taken
    /// for a KV version 1 mount, as confd 0.16 reads every path.
    async fn mount_of(&self, root: &str, token: &Secret) -> Result<(Mount, String), CallError> {
        let path = kv::vault_path(root);
        let lookup = format!("sys/internal/ui/mounts/{path}");
        let mount = match self.client.get(&lookup, false, token).await {
            Ok(Fetch::Found(answer)) => kv::mount_of(&answer["data"]).map_err(|message| {
                CallError::Failed(BackendError {
                    backend: "vault",
                    location: format!("key {root}"),
                    message,
                    transient: false,
                })
            })?,
            Ok(Fetch::Absent) => Mount {
                path: format!("{}/", path.split('/').next().unwrap_or(path)),
                engine: Engine::V1,
            },
            Err(e) => return Err(e),
        };
        let relative = mount.relative(path).unwrap_or("").to_string();
        Ok((mount, relative))
    }

    /// Reads the secret at `relative` (when there is one) and every secret
    /// in the folders below it, a folder level at a time, each level's
    /// LISTs and then its secrets' reads [`IN_FLIGHT`] at a time.
    async fn read_tree(
        &self,
        mount: &Mount,
        relative: &str,
        token: &Secret,
        out: &mut Collected,
    ) -> Result<(), CallError> {
        // A KV v2 mount's root cannot hold a secret (`data/` with no name).
        let own = !(relative.is_empty() && mount.engine == Engine::V2)
            && self.read_secret(mount, relative, token, out).await?;
        let top = match self
            .client
            .get(&mount.list_path(relative), true, token)
            .await
        {
            Ok(found) => found,
            // A policy may allow reading the named secret but not listing
            // below it; confd reads the secret alone then.
            Err(CallError::Denied(e)) if own => {
                tracing::debug!(backend = "vault", error = %e, "cannot list below the secret; reading it alone");
                Fetch::Absent
            }
            Err(e) => return Err(e),
        };
        let mut listed = vec![(relative.to_string(), top)];
        for depth in 0.. {
            let (mut folders, mut secrets) = (Vec::new(), Vec::new());
            for (folder, found) in listed {
                let Fetch::Found(answer) = found else {
                    continue;
                };
                for name in kv::listed_names(&answer["data"]) {
                    let Some(child) = kv::child(&folder, &name) else {
                        continue;
                    };
                    if name.ends_with('/') {
                        folders.push(child);
                    } else {
                        secrets.push(child);
                    }
                }
            }
            let paths = secrets.iter().map(|s| mount.read_path(s)).collect();
            for (secret, found) in secrets.iter().zip(self.get_all(paths, false, token).await?) {
                if let Fetch::Found(answer) = found
                    && let Some(fields) = mount.fields(answer.get("data").unwrap_or(&Value::Null))
                {
                    out.add_secret(&mount.key(secret), fields);
                }
            }
            if folders.is_empty() {
                break;
            }
            if depth >= MAX_DEPTH {
                return Err(CallError::Failed(BackendError {
                    backend: "vault",
                    location: mount.key(relative),
                    message: format!("folders nested deeper than {MAX_DEPTH} levels"),
                    transient: false,
                }));
            }
            let paths = folders.iter().map(|f| mount.list_path(f)).collect();
            let found = self.get_all(paths, true, token).await?;
            listed = folders.into_iter().zip(found).collect();
        }
        Ok(())
    }

    /// GETs (or LISTs) every path, [`IN_FLIGHT`] at a time, answers in the
    /// order asked; the first failure ends them all (the rest are dropped).
    async fn get_all(
        &self,
        paths: Vec<String>,
        list: bool,
        token: &Secret,
    ) -> Result<Vec<Fetch>, CallError> {
        let mut answers: Vec<Option<Fetch>> = (0..paths.len()).map(|_| None).collect();
        let mut pending = paths.into_iter().enumerate();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((i, path)) = pending.next() else {
                    break;
                };
                let (client, token) = (self.client.clone(), token.clone());
                running.spawn(async move { (i, client.get(&path, list, &token).await) });
            }
            match running.join_next().await {
                None => break,
                Some(Ok((i, answer))) => answers[i] = Some(answer?),
                Some(Err(e)) => {
                    return Err(CallError::Failed(BackendError {
                        backend: "vault",
                        location: "request task".to_string(),
                        message: e.to_string(),
                        transient: true,
                    }));
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Fetch::Absent))
            .collect())
    }

    /// Reads one secret into `out`; false when there is none.
    async fn read_secret(
        &self,
        mount: &Mount,
        relative: &str,
        token: &Secret,
        out: &mut Collected,
    ) -> Result<bool, CallError> {
        let answer = match self
            .client
            .get(&mount.read_path(relative), false, token)
            .await?
        {
            Fetch::Found(answer) => answer,
            Fetch::Absent => return Ok(false),
        };
        match mount.fields(answer.get("data").unwrap_or(&Value::Null)) {
            Some(fields) => {
                out.add_secret(&mount.key(relative), fields);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[async_trait]
impl Backend for VaultBackend {
    fn name(&self) -> &'static str {
        "vault"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let token = self.client.token().await?;
        let pairs = match self.read_with(roots, &token).await {
            Ok(pairs) => pairs,
            // The token may have been revoked or aged out behind our back:
            // then one new login, one more try. A token that still works
            // was refused for the path itself (no policy, no mount), and
            // logging in again would only leave another token behind.
            Err(CallError::Denied(e)) if self.client.can_login() => {
                if self.client.alive(&token).await {
                    return Err(e);
                }
                let token = self.client.login_again().await?;
                self.read_with(roots, &token)
                    .await
                    .map_err(CallError::into_error)?
            }
            Err(e) => return Err(e.into_error()),
        };
        Ok(Fetched {
            pairs: pairs.into(),
            index: 0,
            root_indexes: Vec::new(),
        })
    }
}

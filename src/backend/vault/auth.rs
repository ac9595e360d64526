//! How confd gets a Vault token, and when it gets a new one: the auth
//! methods of confd's `-auth-type` (the login request each one sends), and
//! the token's lifetime rules.
//!
//! A token is refreshed once two thirds of its lease have passed, as Vault's
//! own agents do: renewed (`auth/token/renew-self`) while Vault grants the
//! full lease, and replaced by a new login once a renewal is refused or cut
//! short by the token's max TTL. A token given with `-auth-token` cannot be
//! replaced, so it is renewed for as long as Vault allows.
//!
//! Secrets (tokens, secret IDs, passwords, JWTs) are held in [`Secret`],
//! whose `Debug` prints `***`, and never go into a message.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// The service-account token `-auth-type kubernetes` sends unless
/// `-kubernetes-token-file` names another.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// A secret value: compared and cloned as text, printed as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself, for the one place it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// An auth method with what it needs, as `-auth-type` and its flags give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `token`: a token given with `-auth-token` or `VAULT_TOKEN`.
    Token(Secret),
    /// `app-role`: `-role-id` and `-secret-id`.
    AppRole {
        /// The role ID.
        role_id: String,
        /// The secret ID.
        secret_id: Secret,
    },
    /// `userpass`: `-username` and `-password`.
    UserPass {
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `github`: a GitHub personal access token (`-auth-token`).
    Github(Secret),
    /// `kubernetes`: the role (`-role-id`) and the pod's service-account
    /// token, read from this file at each login (Kubernetes rotates it).
    Kubernetes {
        /// The Vault role.
        role: String,
        /// The JWT file.
        jwt_file: PathBuf,
    },
    /// `cert`: the TLS client certificate (`-client-cert`, `-client-key`).
    Cert,
}

impl AuthMethod {
    /// The name `-auth-type` uses.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Token(_) => "token",
            AuthMethod::AppRole { .. } => "app-role",
            AuthMethod::UserPass { .. } => "userpass",
            AuthMethod::Github(_) => "github",
            AuthMethod::Kubernetes { .. } => "kubernetes",
            AuthMethod::Cert => "cert",
        }
    }

    /// The mount path the method is enabled at when `-path` is not given.
    pub fn default_mount(&self) -> &'static str {
        match self {
            AuthMethod::AppRole { .. } => "approle",
            other => other.name(),
        }
    }

    /// Whether confd can get a new token by itself (every method but a
    /// given token).
    pub fn can_login(&self) -> bool {
        !matches!(self, AuthMethod::Token(_))
    }
}

/// A login request: the path under `/v1/` and the JSON body. The body holds
/// secrets: it is sent, never shown.
pub struct Login {
    /// `auth/<mount>/login` (plus `/<user>` for userpass).
    pub path: Vec<String>,
    /// The JSON body.
    pub body: Value,
}

/// The login request `method` sends to the auth mount `mount`; `None` for a
/// given token, which needs no login. The Kubernetes JWT is read here, so a
/// rotated token file is picked up; an unreadable one is an error naming
/// the file.
pub fn login_request(method: &AuthMethod, mount: &str) -> Result<Option<Login>, String> {
    let mut path = vec!["auth".to_string()];
    path.extend(
        mount
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    path.push("login".to_string());
    let body = match method {
        AuthMethod::Token(_) => return Ok(None),
        AuthMethod::AppRole { role_id, secret_id } => {
            json!({"role_id": role_id, "secret_id": secret_id.expose()})
        }
        AuthMethod::UserPass { username, password } => {
            path.push(username.clone());
            json!({"password": password.expose()})
        }
        AuthMethod::Github(token) => json!({"token": token.expose()}),
        AuthMethod::Kubernetes { role, jwt_file } => {
            let jwt = std::fs::read_to_string(jwt_file).map_err(|e| {
                format!(
                    "cannot read the service-account token {}: {}",
                    jwt_file.display(),
                    crate::error::io_reason(&e)
                )
            })?;
            json!({"role": role, "jwt": jwt.trim()})
        }
        AuthMethod::Cert => json!({}),
    };
    Ok(Some(Login { path, body }))
}

/// What Vault says about a token: from a login's or renewal's `auth`, or a
/// lookup's `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The token (a lookup leaves it out: the token is the one given).
    pub token: Option<Secret>,
    /// Its lease; zero for a token that never expires.
    pub ttl: Duration,
    /// Whether it can be renewed.
    pub renewable: bool,
}

fn seconds(value: Option<&Value>) -> Duration {
    Duration::from_secs(value.and_then(Value::as_u64).unwrap_or(0))
}

/// The grant in a login or renewal answer's `auth` object.
pub fn grant_from_auth(answer: &Value) -> Option<Grant> {
    let auth = answer.get("auth").filter(|a| a.is_object())?;
    let token = auth.get("client_token").and_then(Value::as_str)?;
    Some(Grant {
        token: Some(Secret::new(token)),
        ttl: seconds(auth.get("lease_duration")),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The grant in a `lookup-self` answer's `data` (its remaining `ttl`).
pub fn grant_from_lookup(answer: &Value) -> Option<Grant> {
    let data = answer.get("data").filter(|d| d.is_object())?;
    Some(Grant {
        token: None,
        ttl: seconds(data.get("ttl")),
        renewable: data
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The token in use and when to act on it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token.
    pub token: Secret,
    /// When Vault stops accepting it; `None` for a token without expiry.
    pub expires: Option<Instant>,
    /// When to renew it or log in again; `None` when nothing can be done.
    pub refresh_at: Option<Instant>,
    /// Whether a renewal may extend it.
    pub renewable: bool,
    /// The lease a renewal asks for: the token's lease when it was obtained.
    pub increment: Duration,
    /// A renewal granted less than asked (the max TTL is near): the next
    /// refresh logs in again.
    pub capped: bool,
    /// The pause before the next try after a failed refresh (doubling).
    pub retry: Duration,
}

/// Two thirds of a lease: when a token is refreshed.
pub fn refresh_after(ttl: Duration) -> Duration {
    ttl * 2 / 3
}

/// The first pause after a failed refresh.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest pause between refresh tries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);

impl Session {
    /// A session for a token obtained (or looked up) at `now`.
    pub fn new(token: Secret, grant: &Grant, now: Instant) -> Session {
        let mut session = Session {
            token,
            expires: None,
            refresh_at: None,
            renewable: grant.renewable,
            increment: grant.ttl,
            capped: false,
            retry: RETRY_FIRST,
        };
        session.extend(grant.ttl, now);
        session
    }

    /// Records a failed refresh at `now`: try again after a pause that
    /// doubles from [`RETRY_FIRST`] to [`RETRY_MAX`].
    pub fn failed(&mut self, now: Instant) {
        self.refresh_at = Some(now + self.retry);
        self.retry = (self.retry * 2).min(RETRY_MAX);
    }

    /// Records a lease of `ttl` starting `now`.
    pub fn extend(&mut self, ttl: Duration, now: Instant) {
        self.retry = RETRY_FIRST;
        if ttl.is_zero() {
            self.expires = None;
            self.refresh_at = None;
        } else {
            self.expires = Some(now + ttl);
            self.refresh_at = Some(now + refresh_after(ttl));
        }
    }

    /// Records a renewal that granted `ttl` at `now`.
    pub fn renewed(&mut self, ttl: Duration, now: Instant) {
        self.capped = ttl < self.increment;
        self.extend(ttl, now);
    }

    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }

    /// Whether it is time to act at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.refresh_at.is_some_and(|at| now >= at)
    }

    /// What to do when due: renew while Vault grants the full lease, else
    /// log in again when the method can, else renew for as long as Vault
    /// allows (a given token).
    pub fn next_step(&self, can_login: bool, now: Instant) -> Step {
        let renewable = self.renewable && !self.expired(now);
        match (renewable && !(self.capped && can_login), can_login) {
            (true, _) => Step::Renew,
            (false, true) => Step::Login,
            (false, false) => Step::Nothing,
        }
    }
}

/// What a due session needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Renew the token.
    Renew,
    /// Log in for a new token.
    Login,
    /// Nothing can be done (a given token that cannot be renewed).
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_requests_follow_confd() {
        let approle = AuthMethod::AppRole {
            role_id: "r".into(),
            secret_id: Secret::new("s3cret"),
        };
        let login = login_request(&approle, approle.default_mount())
            .expect("ok")
            .expect("a login");
        assert_eq!(login.path, ["auth", "approle", "login"]);
        assert_eq!(login.body, json!({"role_id": "r", "secret_id": "s3cret"}));
        let user = AuthMethod::UserPass {
            username: "ann".into(),
            password: Secret::new("pw"),
        };
        let login = login_request(&user, "/team/users/")
            .expect("ok")
            .expect("a login");
        assert_eq!(login.path, ["auth", "team", "users", "login", "ann"]);
        assert_eq!(login.body, json!({"password": "pw"}));
        let github = login_request(&AuthMethod::Github(Secret::new("ghp")), "github");
        assert_eq!(
            github.expect("ok").expect("a login").body,
            json!({"token": "ghp"})
        );
        let cert = login_request(&AuthMethod::Cert, "cert")
            .expect("ok")
            .expect("a login");
        assert_eq!(
            (cert.path.join("/"), cert.body),
            ("auth/cert/login".into(), json!({}))
        );
        assert!(
            login_request(&AuthMethod::Token(Secret::new("t")), "token")
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn kubernetes_reads_its_jwt_at_each_login() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("token");
        let method = AuthMethod::Kubernetes {
            role: "web".into(),
            jwt_file: file.clone(),
        };
        let missing = login_request(&method, "kubernetes")
            .err()
            .expect("missing file");
        assert!(missing.contains(&file.display().to_string()), "{missing}");
        std::fs::write(&file, "eyJ.one\n").expect("write");
        let login = login_request(&method, "k8s").expect("ok").expect("a login");
        assert_eq!(login.path, ["auth", "k8s", "login"]);
        assert_eq!(login.body, json!({"role": "web", "jwt": "eyJ.one"}));
        std::fs::write(&file, "eyJ.two").expect("rotate");
        let login = login_request(&method, "k8s").expect("ok").expect("a login");
        assert_eq!(login.body["jwt"], "eyJ.two");
    }

    #[test]
    fn secrets_never_print() {
        let method = AuthMethod::AppRole {
            role_id: "r".into(),
            secret_id: Secret::new("s3cret"),
        };
        assert!(!format!("{method:?}").contains("s3cret"));
        let grant = grant_from_auth(
            &json!({"auth": {"client_token": "hvs.x", "lease_duration": 3, "renewable": true}}),
        )
        .expect("grant");
        assert!(!format!("{grant:?}").contains("hvs.x"));
        let session = Session::new(Secret::new("hvs.x"), &grant, Instant::now());
        assert!(!format!("{session:?}").contains("hvs.x"));
    }

    #[test]
    fn grants_from_answers() {
        let grant = grant_from_auth(
            &json!({"auth": {"client_token": "t", "lease_duration": 30, "renewable": true}}),
        );
        assert_eq!(
            grant,
            Some(Grant {
                token: Some(Secret::new("t")),
                ttl: Duration::from_secs(30),
                renewable: true
            })
        );
        assert_eq!(grant_from_auth(&json!({"auth": null})), None);
        let lookup = grant_from_lookup(&json!({"data": {"ttl": 0, "renewable": false, "id": "t"}}));
        assert_eq!(
            lookup,
            Some(Grant {
                token: None,
                ttl: Duration::ZERO,
                renewable: false
            })
        );
    }

    #[test]
    fn tokens_are_renewed_at_two_thirds_then_replaced_once_capped() {
        let now = Instant::now();
        let grant = Grant {
            token: None,
            ttl: Duration::from_secs(3),
            renewable: true,
        };
        let mut s = Session::new(Secret::new("t"), &grant, now);
        assert!(!s.due(now + Duration::from_millis(1999)));
        assert!(s.due(now + Duration::from_secs(2)));
        assert_eq!(s.next_step(true, now + Duration::from_secs(2)), Step::Renew);
        // The full lease again: keep renewing.
        s.renewed(Duration::from_secs(3), now + Duration::from_secs(2));
        assert_eq!(s.refresh_at, Some(now + Duration::from_secs(4)));
        assert_eq!(s.next_step(true, now + Duration::from_secs(4)), Step::Renew);
        // Cut short by the max TTL: log in again, or (a given token) renew
        // for as long as Vault allows.
        s.renewed(Duration::from_secs(1), now + Duration::from_secs(4));
        assert_eq!(s.next_step(true, now + Duration::from_secs(4)), Step::Login);
        assert_eq!(
            s.next_step(false, now + Duration::from_secs(4)),
            Step::Renew
        );
        // Expired: renewing is pointless.
        assert!(s.expired(now + Duration::from_secs(5)));
        assert_eq!(s.next_step(true, now + Duration::from_secs(5)), Step::Login);
        assert_eq!(
            s.next_step(false, now + Duration::from_secs(5)),
            Step::Nothing
        );
    }

    #[test]
    fn failed_refreshes_are_retried_with_growing_pauses() {
        let now = Instant::now();
        let grant = Grant {
            token: None,
            ttl: Duration::from_secs(60),
            renewable: true,
        };
        let mut s = Session::new(Secret::new("t"), &grant, now);
        let pauses: Vec<u64> = (0..7)
            .map(|_| {
                s.failed(now);
                s.refresh_at.map_or(0, |at| (at - now).as_secs())
            })
            .collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30]);
        s.renewed(Duration::from_secs(60), now);
        s.failed(now);
        assert_eq!(
            s.refresh_at,
            Some(now + RETRY_FIRST),
            "a success starts over"
        );
    }

    #[test]
    fn tokens_without_a_lease_are_left_alone() {
        let now = Instant::now();
        let root = Grant {
            token: None,
            ttl: Duration::ZERO,
            renewable: false,
        };
        let s = Session::new(Secret::new("root"), &root, now);
        assert_eq!((s.expires, s.refresh_at), (None, None));
        assert!(!s.due(now + Duration::from_secs(1_000_000)));
        let fixed = Grant {
            token: None,
            ttl: Duration::from_secs(9),
            renewable: false,
        };
        let s = Session::new(Secret::new("t"), &fixed, now);
        assert_eq!(s.next_step(true, now + Duration::from_secs(6)), Step::Login);
        assert_eq!(
            s.next_step(false, now + Duration::from_secs(6)),
            Step::Nothing
        );
    }
}

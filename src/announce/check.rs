//! The health check of `confd announce`: a GET that must answer 2xx
//! (`-check-http`) or a shell command that must exit 0 (`-check-cmd`), each
//! bounded in time, so a hung check counts as a failing one.

use std::time::Duration;

use reqwest::{Client, Url};

use crate::backend::http::redact_address;
use crate::error::ConfigError;

/// A health check.
#[derive(Debug)]
pub enum HealthCheck {
    /// GET this URL; 2xx passes.
    Http {
        /// The client (no proxy: the check is about this host).
        client: Client,
        /// What to GET.
        url: Url,
        /// The URL as messages show it (password masked).
        shown: String,
    },
    /// Run this with `/bin/sh -c`; exit status 0 passes.
    Command(String),
    /// Passes while the flag is up (the loop's tests).
    #[cfg(test)]
    Fake(std::sync::Arc<std::sync::atomic::AtomicBool>),
}

impl HealthCheck {
    /// An HTTP check of `url`.
    pub fn http(url: &str) -> Result<HealthCheck, ConfigError> {
        let shown = redact_address(url);
        let parsed = Url::parse(url)
            .map_err(|e| ConfigError::setting("-check-http", format!("{shown:?}: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::setting(
                "-check-http",
                format!("{shown:?}: the scheme must be http or https"),
            ));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                ConfigError::setting("-check-http", format!("cannot set up the HTTP client: {e}"))
            })?;
        Ok(HealthCheck::Http {
            client,
            url: parsed,
            shown,
        })
    }

    /// Runs the check once, within `limit`; `Err` says why it fails.
    pub async fn run(&self, limit: Duration) -> Result<(), String> {
        match self {
            HealthCheck::Http { client, url, shown } => {
                match client.get(url.clone()).timeout(limit).send().await {
                    Ok(response) if response.status().is_success() => Ok(()),
                    Ok(response) => Err(format!("{shown} answered {}", response.status())),
                    Err(e) => Err(format!(
                        "{shown}: {}",
                        crate::backend::http::describe_reqwest_error(&e)
                    )),
                }
            }
            HealthCheck::Command(command) => crate::command::run_shell(command, limit)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            #[cfg(test)]
            HealthCheck::Fake(up) => match up.load(std::sync::atomic::Ordering::SeqCst) {
                true => Ok(()),
                false => Err("fake check down".to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_urls_are_validated_and_their_passwords_never_shown() {
        let e = HealthCheck::http("ftp://u:s3cret@h/").expect_err("not http");
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("-check-http"), "{e}");
        let e = HealthCheck::http("http://u:s3cret@[bad/").expect_err("bad URL");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[tokio::test]
    async fn a_check_answers_with_the_reason_and_no_password() {
        let check = HealthCheck::http("http://u:s3cret@127.0.0.1:1/health").expect("valid");
        let why = check
            .run(Duration::from_secs(2))
            .await
            .expect_err("nothing listens on port 1");
        assert!(
            why.contains("127.0.0.1:1") && !why.contains("s3cret"),
            "{why}"
        );
        let why = HealthCheck::Command("echo sick; exit 3".into())
            .run(Duration::from_secs(5))
            .await
            .expect_err("exit 3");
        assert!(
            why.contains("exit status 3") && why.contains("sick"),
            "{why}"
        );
        let why = HealthCheck::Command("sleep 5".into())
            .run(Duration::from_millis(100))
            .await
            .expect_err("too slow");
        assert!(why.contains("did not finish"), "{why}");
    }
}

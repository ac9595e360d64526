//! The `env` backend: keys from the process environment. `/database/host` is
//! `DATABASE_HOST`; `__` in a variable name stands for a literal `_` in the key
//! (`DB_MAX__CONNS` is `/db/max_conns`). Unlike confd, `/app` reads `APP` and
//! `APP_*` but never `APPLE`.

use async_trait::async_trait;

use super::{Backend, BackendError, Fetched, within_roots};

/// Reads the environment at every pass (so `-interval` picks up nothing new
/// unless the process is restarted, exactly like confd).
#[derive(Debug, Default)]
pub struct EnvBackend;

impl EnvBackend {
    /// The environment backend.
    pub fn new() -> Self {
        EnvBackend
    }
}

/// Maps a variable name to its key, or `None` for names that map to no clean
/// key (a leading, trailing or doubled single `_`).
pub fn variable_to_key(name: &str) -> Option<String> {
    let mut key = String::with_capacity(name.len() + 1);
    key.push('/');
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            if chars.peek() == Some(&'_') {
                chars.next();
                key.push('_');
            } else {
                key.push('/');
            }
        } else {
            key.extend(c.to_lowercase());
        }
    }
    let clean = key.len() > 1 && !key.ends_with('/') && !key.contains("//");
    clean.then_some(key)
}

#[async_trait]
impl Backend for EnvBackend {
    fn name(&self) -> &'static str {
        "env"
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        let pairs = std::env::vars_os()
            .filter_map(|(name, value)| {
                let key = variable_to_key(name.to_str()?)?;
                let value = value.into_string().ok()?;
                within_roots(&key, roots).then_some((key, value))
            })
            .collect();
        Ok(Fetched {
            pairs,
            index: 0,
            root_indexes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_keys() {
        assert_eq!(
            variable_to_key("DATABASE_HOST").as_deref(),
            Some("/database/host")
        );
        assert_eq!(
            variable_to_key("DB_MAX__CONNS").as_deref(),
            Some("/db/max_conns")
        );
        assert_eq!(variable_to_key("APP").as_deref(), Some("/app"));
        assert_eq!(variable_to_key("_X"), None);
        assert_eq!(variable_to_key("X_"), None);
        assert_eq!(variable_to_key(""), None);
    }

    #[test]
    fn prefix_does_not_overmatch() {
        let roots = vec!["/app".to_string()];
        assert!(within_roots("/app", &roots));
        assert!(within_roots("/app/port", &roots));
        assert!(!within_roots("/apple", &roots));
    }
}

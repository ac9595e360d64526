//! The service instances templates asked for with `service(...)`: what is
//! known of each query, which resources asked for which, and fetching the
//! queries a render discovered. The daemon keeps them current with one
//! blocking query per distinct query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::backend::BackendError;
use crate::services::{Instance, ServiceClient, ServiceData, ServiceQuery};

/// The service catalog as the resources see it.
#[derive(Default)]
pub struct Catalog {
    client: Option<Arc<ServiceClient>>,
    /// The instances known for each query; shared with renders in flight.
    data: Mutex<Arc<ServiceData>>,
    /// The queries each resource made at its last render.
    asked_by: HashMap<String, Vec<ServiceQuery>>,
}

impl Catalog {
    /// A catalog that asks Consul through `client`.
    pub fn new(client: Option<ServiceClient>) -> Self {
        Catalog {
            client: client.map(Arc::new),
            ..Catalog::default()
        }
    }

    /// The client, when one is configured.
    pub fn client(&self) -> Option<&Arc<ServiceClient>> {
        self.client.as_ref()
    }

    /// The instances known now.
    pub fn snapshot(&self) -> Arc<ServiceData> {
        match self.data.lock() {
            Ok(data) => data.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records the instances of `query`; returns whether they changed.
    pub fn set(&self, query: ServiceQuery, instances: Vec<Instance>) -> bool {
        let mut data = match self.data.lock() {
            Ok(data) => data,
            Err(poisoned) => poisoned.into_inner(),
        };
        if data.get(&query) == Some(&instances) {
            return false;
        }
        Arc::make_mut(&mut data).insert(query, instances);
        true
    }

    /// Forgets the instances of a query no resource uses any more, so a
    /// template that asks again gets a fresh answer, not a stale one.
    pub fn forget(&self, query: &ServiceQuery) {
        let mut data = match self.data.lock() {
            Ok(data) => data,
            Err(poisoned) => poisoned.into_inner(),
        };
        if data.contains_key(query) {
            Arc::make_mut(&mut data).remove(query);
        }
    }

    /// Fetches the instances of `query` once and records them.
    pub async fn fetch(&self, query: ServiceQuery) -> Result<(), FetchError> {
        let Some(client) = &self.client else {
            return Err(FetchError::NoCatalog);
        };
        let instances = client.fetch(&query).await.map_err(FetchError::Backend)?;
        self.set(query, instances);
        Ok(())
    }

    /// Records the queries a resource made at its render.
    pub fn note_asked(&mut self, resource: &str, asked: Vec<ServiceQuery>) {
        self.asked_by.insert(resource.to_string(), asked);
    }

    /// Forgets what resources not in `names` asked for.
    pub fn retain_resources(&mut self, keep: impl Fn(&str) -> bool) {
        self.asked_by.retain(|name, _| keep(name));
    }

    /// Every distinct query the resources made at their last render.
    pub fn queries(&self) -> Vec<ServiceQuery> {
        let mut all: Vec<ServiceQuery> = self.asked_by.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// Whether resource `name`'s last render asked for `query`.
    pub fn asked(&self, name: &str, query: &ServiceQuery) -> bool {
        self.asked_by
            .get(name)
            .is_some_and(|asked| asked.contains(query))
    }
}

/// Why the instances of a query could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// No Consul agent is configured for `service(...)`.
    #[error("service(): no Consul catalog is configured")]
    NoCatalog,
    /// The agent did not answer, or refused.
    #[error("{0}")]
    Backend(BackendError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> ServiceQuery {
        ServiceQuery {
            name: name.to_string(),
            tag: None,
            passing: true,
        }
    }

    #[test]
    fn set_reports_only_real_changes() {
        let catalog = Catalog::new(None);
        assert!(catalog.set(query("web"), Vec::new()));
        assert!(!catalog.set(query("web"), Vec::new()));
        assert!(catalog.snapshot().contains_key(&query("web")));
        catalog.forget(&query("web"));
        assert!(!catalog.snapshot().contains_key(&query("web")));
    }

    #[test]
    fn queries_are_distinct_and_follow_resources() {
        let mut catalog = Catalog::new(None);
        catalog.note_asked("a.toml", vec![query("web"), query("db")]);
        catalog.note_asked("b.toml", vec![query("web")]);
        assert_eq!(catalog.queries(), vec![query("db"), query("web")]);
        assert!(catalog.asked("b.toml", &query("web")));
        catalog.retain_resources(|name| name == "b.toml");
        assert_eq!(catalog.queries(), vec![query("web")]);
    }
}

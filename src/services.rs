//! Consul's health-checked service catalog, for templates: `service(name=…,
//! tag=…, passing=true)` lists the instances of a service, so an HAProxy
//! backend can follow exactly the instances whose checks pass. It works with
//! any KV backend; Consul is asked at `-consul-addr` (or the consul backend's
//! nodes, or 127.0.0.1:8500).
//!
//! A template's queries are discovered while it renders: the first render
//! records which services it asked for, the engine fetches them, and the
//! template renders again. The daemon then keeps one blocking query per
//! distinct query on `/v1/health/service/<name>` and re-renders the resources
//! that use it when its list of instances changes.

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;
use serde::Deserialize;

use crate::backend::BackendError;
use crate::backend::consul::{ApiAnswer, Blocking, ConsulApi, ConsulConfig};
use crate::error::ConfigError;

/// One `service(...)` call's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceQuery {
    /// Service name.
    pub name: String,
    /// Only instances with this tag.
    pub tag: Option<String>,
    /// Only instances whose checks all pass.
    pub passing: bool,
}

impl std::fmt::Display for ServiceQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "service {}", self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, " tag {tag}")?;
        }
        if self.passing {
            write!(f, " (passing)")?;
        }
        Ok(())
    }
}

/// One instance of a service, as templates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The service instance's ID.
    pub id: String,
    /// The service name.
    pub name: String,
    /// The node it runs on.
    pub node: String,
    /// The service address (the node's when the service has none).
    pub address: String,
    /// The service port.
    pub port: u16,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// Service metadata.
    pub meta: BTreeMap<String, String>,
    /// Aggregated health: passing, warning or critical.
    pub status: String,
}

/// The instances known for each query.
pub type ServiceData = HashMap<ServiceQuery, Vec<Instance>>;

#[derive(Debug, Deserialize)]
struct HealthEntry {
    #[serde(rename = "Node")]
    node: HealthNode,
    #[serde(rename = "Service")]
    service: HealthService,
    #[serde(rename = "Checks", default)]
    checks: Vec<HealthCheck>,
}

#[derive(Debug, Deserialize)]
struct HealthNode {
    #[serde(rename = "Node", default)]
    node: String,
    #[serde(rename = "Address", default)]
    address: String,
}

#[derive(Debug, Deserialize)]
struct HealthService {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Service", default)]
    service: String,
    #[serde(rename = "Tags", default)]
    tags: Option<Vec<String>>,
    #[serde(rename = "Address", default)]
    address: String,
    #[serde(rename = "Port", default)]
    port: u16,
    #[serde(rename = "Meta", default)]
    meta: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct HealthCheck {
    #[serde(rename = "Status", default)]
    status: String,
}

/// What a blocking query on the catalog saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// The query's result at a new index.
    Changed(Vec<Instance>, u64),
    /// Nothing new before the wait ended.
    Quiet,
    /// The index went backwards: fetch again from scratch.
    Reset,
}

/// Asks Consul's health endpoint.
#[derive(Debug)]
pub struct ServiceClient {
    api: ConsulApi,
}

impl ServiceClient {
    /// Prepares the client (nothing is sent yet).
    pub fn new(config: &ConsulConfig) -> Result<ServiceClient, ConfigError> {
        Ok(ServiceClient {
            api: ConsulApi::new(config, "consul services")?,
        })
    }

    fn query_pairs(query: &ServiceQuery) -> Vec<(&str, &str)> {
        let mut pairs = Vec::new();
        if query.passing {
            pairs.push(("passing", "true"));
        }
        if let Some(tag) = &query.tag {
            pairs.push(("tag", tag.as_str()));
        }
        pairs
    }

    fn parse(&self, answer: &ApiAnswer) -> Result<Vec<Instance>, BackendError> {
        if answer.status != StatusCode::OK {
            return Ok(Vec::new());
        }
        let entries: Vec<HealthEntry> = serde_json::from_slice(&answer.body).map_err(|e| {
            self.api.error(
                answer.location.clone(),
                format!(
                    "unexpected response: {}",
                    crate::backend::http::quote_server(e)
                ),
            )
        })?;
        Ok(instances_from(entries))
    }

    /// Fetches the instances of `query` now.
    pub async fn fetch(&self, query: &ServiceQuery) -> Result<Vec<Instance>, BackendError> {
        let path = ["v1", "health", "service", query.name.as_str()];
        let answer = self
            .api
            .get(&path, &Self::query_pairs(query), None, &query.to_string())
            .await?;
        self.parse(&answer)
    }

    /// One blocking query after `index`, following Consul's index rules.
    pub async fn watch(
        &self,
        query: &ServiceQuery,
        index: u64,
    ) -> Result<ServiceEvent, BackendError> {
        let path = ["v1", "health", "service", query.name.as_str()];
        let (outcome, answer) = self
            .api
            .blocking_get(&path, &Self::query_pairs(query), index, &query.to_string())
            .await?;
        Ok(match outcome {
            Blocking::Changed(new_index) => ServiceEvent::Changed(self.parse(&answer)?, new_index),
            Blocking::Quiet => ServiceEvent::Quiet,
            Blocking::Reset => ServiceEvent::Reset,
        })
    }
}

/// Turns health entries into sorted instances.
fn instances_from(entries: Vec<HealthEntry>) -> Vec<Instance> {
    let mut instances: Vec<Instance> = entries
        .into_iter()
        .map(|entry| {
            let status = aggregate_status(&entry.checks);
            let address = if entry.service.address.is_empty() {
                entry.node.address
            } else {
                entry.service.address
            };
            let mut tags = entry.service.tags.unwrap_or_default();
            tags.sort();
            Instance {
                id: entry.service.id,
                name: entry.service.service,
                node: entry.node.node,
                address,
                port: entry.service.port,
                tags,
                meta: entry.service.meta.unwrap_or_default(),
                status,
            }
        })
        .collect();
    instances.sort_by(|a, b| {
        (&a.node, &a.id, &a.address, a.port).cmp(&(&b.node, &b.id, &b.address, b.port))
    });
    instances
}

/// The worst status among the checks (critical > warning > passing).
fn aggregate_status(checks: &[HealthCheck]) -> String {
    let worst = checks
        .iter()
        .map(|c| match c.status.as_str() {
            "critical" => 2,
            "warning" => 1,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    ["passing", "warning", "critical"][worst].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_sorted_instances_with_fallback_address() {
        let json = r#"[
          {"Node":{"Node":"n2","Address":"10.0.0.2"},"Service":{"ID":"web2","Service":"web","Tags":["b","a"],"Address":"","Port":81,"Meta":null},"Checks":[{"Status":"passing"},{"Status":"warning"}]},
          {"Node":{"Node":"n1","Address":"10.0.0.1"},"Service":{"ID":"web1","Service":"web","Tags":null,"Address":"192.168.1.1","Port":80,"Meta":{"v":"1"}},"Checks":[]}
        ]"#;
        let entries: Vec<HealthEntry> = serde_json::from_str(json).expect("parses");
        let instances = instances_from(entries);
        assert_eq!(instances[0].node, "n1");
        assert_eq!(instances[0].address, "192.168.1.1");
        assert_eq!(instances[0].status, "passing");
        assert_eq!(instances[1].address, "10.0.0.2");
        assert_eq!(instances[1].tags, vec!["a", "b"]);
        assert_eq!(instances[1].status, "warning");
    }
}

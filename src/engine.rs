//! One pass over every resource: read the backend once for the union of all
//! resources' subtrees, then render, guard, sync, and finally run each distinct
//! reload command once. Independent of which backend supplies the data and of
//! how passes are scheduled (one-shot or daemon).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::command;
use crate::resource::Resource;
use crate::snapshot::{Snapshot, View, minimal_roots};
use crate::sync::{SyncOptions, Synced, Target, sync_file};
use crate::template::{Template, TemplateCompiler, TemplateError};

/// What happened to one resource in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// dest already matched.
    Unchanged,
    /// dest was replaced (and reloaded, if it has a reload_cmd).
    Updated,
    /// `-noop`: dest would change as this diff shows.
    WouldUpdate(String),
    /// Nothing was written, or the reload failed; the failure says which.
    Failed(Failure),
}

/// Why a resource failed in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// One line naming what failed and where.
    pub message: String,
    /// True when waiting may fix it: the backend was unreachable, a key was
    /// missing, or a guard refused too little data (`-wait-keys` retries these).
    pub data_related: bool,
}

impl Failure {
    fn data(message: impl Into<String>) -> Outcome {
        Outcome::Failed(Failure {
            message: message.into(),
            data_related: true,
        })
    }

    fn other(message: impl Into<String>) -> Outcome {
        Outcome::Failed(Failure {
            message: message.into(),
            data_related: false,
        })
    }
}

impl Outcome {
    /// The word logs use for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Updated => "updated",
            Outcome::WouldUpdate(_) => "would-update",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The outcome of every resource of a pass, in resource order.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// `(resource name, outcome)`.
    pub outcomes: Vec<(String, Outcome)>,
}

impl PassReport {
    /// True when no resource failed.
    pub fn all_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed resources with their failures.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.outcomes.iter().filter_map(|(name, o)| match o {
            Outcome::Failed(f) => Some((name.as_str(), f)),
            _ => None,
        })
    }
}

/// A resource with its compiled template (or the reason it did not compile:
/// that resource fails every pass, the others go on).
struct Prepared {
    resource: Resource,
    template: Result<Template, TemplateError>,
}

/// Runs passes over a fixed set of resources against one backend.
pub struct Engine {
    resources: Vec<Prepared>,
    roots: Vec<String>,
    backend: Box<dyn Backend>,
    options: SyncOptions,
    /// Keys each resource saw at its last successful render (for max_shrink).
    last_good_counts: HashMap<String, usize>,
}

impl Engine {
    /// Compiles every resource's template and works out the subtrees to read.
    pub fn new(resources: Vec<Resource>, backend: Box<dyn Backend>, options: SyncOptions) -> Self {
        let compiler = TemplateCompiler::new();
        let mut compiled: HashMap<std::path::PathBuf, Result<Template, TemplateError>> =
            HashMap::new();
        let resources: Vec<Prepared> = resources
            .into_iter()
            .map(|resource| {
                let template = compiled
                    .entry(resource.src.clone())
                    .or_insert_with(|| compiler.load(&resource.src))
                    .clone();
                Prepared { resource, template }
            })
            .collect();
        let roots = minimal_roots(resources.iter().flat_map(|p| p.resource.roots()));
        Engine {
            resources,
            roots,
            backend,
            options,
            last_good_counts: HashMap::new(),
        }
    }

    /// The subtrees one pass reads from the backend.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// Reads the backend once and syncs every resource.
    pub async fn run_pass(&mut self) -> PassReport {
        let snapshot = match self.backend.read(&self.roots).await {
            Ok(fetched) => Arc::new(Snapshot::from_pairs(fetched.pairs)),
            Err(e) => {
                tracing::error!(backend = self.backend.name(), error = %e, "cannot read data; every destination is left as it is");
                let message = e.to_string();
                return PassReport {
                    outcomes: self
                        .resources
                        .iter()
                        .map(|p| (p.resource.name.clone(), Failure::data(message.clone())))
                        .collect(),
                };
            }
        };
        tracing::debug!(
            backend = self.backend.name(),
            keys = snapshot.len(),
            "read snapshot"
        );

        let mut outcomes: Vec<Outcome> = Vec::with_capacity(self.resources.len());
        let mut reloads: Vec<PendingReload> = Vec::new();
        let mut good_counts: Vec<(String, usize)> = Vec::new();
        for (index, prepared) in self.resources.iter().enumerate() {
            let (outcome, count) = self.sync_resource(prepared, &snapshot).await;
            if matches!(outcome, Outcome::Updated | Outcome::Unchanged) {
                good_counts.push((prepared.resource.name.clone(), count));
            }
            if outcome == Outcome::Updated && !self.options.sync_only {
                if let Some(reload) = &prepared.resource.reload_cmd {
                    let line = command::expand(
                        reload,
                        None,
                        &prepared.resource.dest.display().to_string(),
                    );
                    match reloads.iter_mut().find(|r| r.command == line) {
                        Some(pending) => pending.resources.push(index),
                        None => reloads.push(PendingReload {
                            command: line,
                            timeout: prepared.resource.command_timeout,
                            resources: vec![index],
                        }),
                    }
                }
            }
            outcomes.push(outcome);
        }

        self.last_good_counts.extend(good_counts);

        for reload in reloads {
            let names: Vec<&str> = reload
                .resources
                .iter()
                .map(|&i| self.resources[i].resource.name.as_str())
                .collect();
            match command::run_shell(&reload.command, reload.timeout).await {
                Ok(output) => tracing::info!(
                    resources = %names.join(","),
                    command = %reload.command,
                    output = %output.trim(),
                    "reloaded"
                ),
                Err(e) => {
                    let message = format!("reload_cmd failed after the new file was written: {e}");
                    for &i in &reload.resources {
                        outcomes[i] = Failure::other(message.clone());
                    }
                }
            }
        }

        let report = PassReport {
            outcomes: self
                .resources
                .iter()
                .zip(outcomes)
                .map(|(p, o)| (p.resource.name.clone(), o))
                .collect(),
        };
        for ((name, outcome), prepared) in report.outcomes.iter().zip(&self.resources) {
            let dest = prepared.resource.dest.display();
            match outcome {
                Outcome::Failed(failure) => {
                    tracing::error!(resource = %name, dest = %dest, outcome = %outcome.label(), error = %failure.message)
                }
                Outcome::Unchanged => {
                    tracing::debug!(resource = %name, dest = %dest, outcome = %outcome.label())
                }
                _ => tracing::info!(resource = %name, dest = %dest, outcome = %outcome.label()),
            }
        }
        report
    }

    /// Renders, guards and syncs one resource; returns the outcome and the
    /// number of keys the resource saw.
    async fn sync_resource(
        &self,
        prepared: &Prepared,
        snapshot: &Arc<Snapshot>,
    ) -> (Outcome, usize) {
        let resource = &prepared.resource;
        let view = View::new(snapshot.clone(), &resource.prefix, &resource.keys);
        let count = view.key_count();
        let template = match &prepared.template {
            Ok(t) => t,
            Err(e) => return (Failure::other(e.to_string()), count),
        };
        if let Err(refusal) = self.guard(resource, count, view.roots()) {
            return (Failure::data(refusal), count);
        }
        let content = match template.render(view) {
            Ok(text) => text,
            Err(e) => return (Failure::data(e.to_string()), count),
        };
        let target = Target {
            dest: &resource.dest,
            content: content.as_bytes(),
            mode: resource.mode,
            uid: resource.uid,
            gid: resource.gid,
            check_cmd: resource.check_cmd.as_deref(),
            command_timeout: resource.command_timeout,
        };
        let outcome = match sync_file(&target, self.options).await {
            Ok(Synced::Unchanged) => Outcome::Unchanged,
            Ok(Synced::Updated) => Outcome::Updated,
            Ok(Synced::WouldUpdate(diff)) => Outcome::WouldUpdate(diff),
            Err(e) => Failure::other(e.to_string()),
        };
        (outcome, count)
    }

    /// min_keys and max_shrink: refuse to render from suspiciously little data.
    fn guard(&self, resource: &Resource, count: usize, roots: &[String]) -> Result<(), String> {
        if let Some(min) = resource.min_keys {
            if count < min {
                return Err(format!(
                    "refusing to write: the resource sees {count} keys under {} but min_keys = {min}; dest left as it is",
                    roots.join(", ")
                ));
            }
        }
        if let (Some(max_shrink), Some(&previous)) = (
            resource.max_shrink,
            self.last_good_counts.get(&resource.name),
        ) {
            let floor = previous as f64 * (1.0 - max_shrink);
            if (count as f64) < floor {
                return Err(format!(
                    "refusing to write: the key count fell from {previous} to {count}, more than max_shrink = {:.0}%; dest left as it is",
                    max_shrink * 100.0
                ));
            }
        }
        Ok(())
    }
}

/// A reload command waiting for the end of the pass, with the resources that
/// asked for it.
struct PendingReload {
    command: String,
    timeout: Duration,
    resources: Vec<usize>,
}

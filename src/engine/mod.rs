//! One pass over resources: read the backend once for the union of their
//! subtrees (or take the daemon's kept data), then render (guards
//! included), [`sync`](crate::sync) each file, and finally run each distinct
//! reload command once. Independent of which backend supplies the data
//! and of how passes are scheduled (one-shot or daemon).

mod catalog;
mod guard;
mod outcome;
mod reload;
mod render;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

pub use catalog::{Catalog, FetchError};
pub use outcome::{Failure, Outcome, PassReport, Step};

use crate::backend::{Backend, BackendError, Fetched};
use crate::command;
use crate::ops::Metrics;
use crate::resource::Resource;
use crate::services::{Instance, ServiceClient, ServiceQuery};
use crate::snapshot::{Snapshot, View, minimal_roots};
use crate::sync::{SyncOptions, Synced, Target, sync_file};
use crate::template::{Template, TemplateCompiler, TemplateError};
use reload::Reloads;
use render::{SharedRenders, render_chunk};

/// A resource with its compiled template (or the reason it did not compile:
/// that resource fails every pass, the others go on).
struct Prepared {
    resource: Resource,
    template: Result<Template, TemplateError>,
}

impl Prepared {
    /// The resource's view of a snapshot.
    fn view(&self, snapshot: &Arc<Snapshot>) -> View {
        View::new(snapshot.clone(), &self.resource.prefix, &self.resource.keys)
    }
}

/// Runs passes over a set of resources against one backend.
pub struct Engine {
    resources: Vec<Prepared>,
    roots: Vec<String>,
    backend: Arc<dyn Backend>,
    options: SyncOptions,
    /// Keys each resource saw at its last successful render (for max_shrink).
    last_good_counts: HashMap<String, usize>,
    /// The backend failed its last read: the outage is logged once, at its
    /// start, and its end is logged too.
    backend_down: bool,
    /// Consul's service catalog, for `service(...)`.
    catalog: Catalog,
    /// Where reads, renders and commands are counted (a daemon with
    /// [`crate::ops::Ops`]).
    metrics: Option<Arc<Metrics>>,
}

impl Engine {
    /// Compiles every resource's template and works out the subtrees to read.
    pub fn new(
        resources: Vec<Resource>,
        backend: Arc<dyn Backend>,
        options: SyncOptions,
        services: Option<ServiceClient>,
    ) -> Self {
        let mut engine = Engine {
            resources: Vec::new(),
            roots: Vec::new(),
            backend,
            options,
            last_good_counts: HashMap::new(),
            backend_down: false,
            catalog: Catalog::new(services),
            metrics: None,
        };
        engine.replace_resources(resources);
        engine
    }

    /// Takes over what `previous` remembers (the last good key counts of
    /// resources that stay, and the service instances known) when a SIGHUP
    /// replaces the engine. The backend's outage state goes with the
    /// backend: a new backend starts as answering.
    pub fn inherit(&mut self, previous: Engine, same_backend: bool) {
        let names: HashSet<&str> = self
            .resources
            .iter()
            .map(|p| p.resource.name.as_str())
            .collect();
        self.last_good_counts = previous
            .last_good_counts
            .into_iter()
            .filter(|(name, _)| names.contains(name.as_str()))
            .collect();
        if same_backend {
            self.backend_down = previous.backend_down;
        }
        self.metrics = previous.metrics;
    }

    /// Counts reads, renders and commands into `metrics` from now on.
    pub fn set_metrics(&mut self, metrics: Option<Arc<Metrics>>) {
        self.metrics = metrics;
    }

    /// True while the backend is in an outage (its last read or watch failed).
    pub fn backend_down(&self) -> bool {
        self.backend_down
    }

    /// Swaps in a new set of resources, compiling each distinct template
    /// once and keeping what is remembered about resources that stay.
    fn replace_resources(&mut self, resources: Vec<Resource>) {
        let compiler = TemplateCompiler::new();
        let mut compiled: HashMap<PathBuf, Result<Template, TemplateError>> = HashMap::new();
        self.resources = resources
            .into_iter()
            .map(|resource| {
                let template = compiled
                    .entry(resource.src.clone())
                    .or_insert_with(|| compiler.load(&resource.src))
                    .clone();
                Prepared { resource, template }
            })
            .collect();
        self.roots = minimal_roots(self.resources.iter().flat_map(|p| p.resource.roots()));
        let names: HashSet<String> = self
            .resources
            .iter()
            .map(|p| p.resource.name.clone())
            .collect();
        self.last_good_counts
            .retain(|name, _| names.contains(name.as_str()));
        self.catalog.retain_resources(|name| names.contains(name));
    }

    /// The pass-wide sync switches.
    pub fn options(&self) -> SyncOptions {
        self.options
    }

    /// The backend passes read from.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The resources, in pass order.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().map(|p| &p.resource)
    }

    /// The subtrees a full pass reads from the backend.
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    /// The service catalog `service(...)` reads.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Records new instances of a service query; returns the resources whose
    /// last render asked for it when the instances changed (none otherwise).
    pub fn set_service_instances(
        &self,
        query: ServiceQuery,
        instances: Vec<Instance>,
    ) -> Vec<usize> {
        if !self.catalog.set(query.clone(), instances) {
            return Vec::new();
        }
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, p)| self.catalog.asked(&p.resource.name, &query))
            .map(|(i, _)| i)
            .collect()
    }

    /// Records a backend failure seen outside a pass (a watch), logging only
    /// the start of an outage.
    pub fn note_backend_error(&mut self, error: &BackendError) {
        if let Some(metrics) = &self.metrics {
            metrics.backend_error(self.backend.name());
        }
        if !self.backend_down {
            tracing::error!(backend = self.backend.name(), error = %error, "cannot read from the backend; destinations are left as they are until it answers");
            self.backend_down = true;
        } else {
            tracing::debug!(backend = self.backend.name(), error = %error, "backend still failing");
        }
    }

    fn note_backend_ok(&mut self) {
        if let Some(metrics) = &self.metrics {
            metrics.backend_ok(self.backend.name());
            if self.backend_down {
                metrics.reconnect(self.backend.name());
            }
        }
        if self.backend_down {
            tracing::info!(backend = self.backend.name(), "backend answers again");
            self.backend_down = false;
        }
    }

    /// Reads the backend once and syncs every resource.
    pub async fn run_pass(&mut self) -> PassReport {
        self.run_pass_for(None).await
    }

    /// Reads the backend once for the subtrees of the chosen resources (all
    /// when `only` is `None`) and syncs them.
    pub async fn run_pass_for(&mut self, only: Option<&[usize]>) -> PassReport {
        let chosen = self.chosen(only);
        let roots = if chosen.len() == self.resources.len() {
            self.roots.clone()
        } else {
            minimal_roots(
                chosen
                    .iter()
                    .flat_map(|&i| self.resources[i].resource.roots()),
            )
        };
        match self.read(&roots).await {
            Ok(fetched) => {
                let snapshot = Arc::new(Snapshot::from_list(fetched.pairs));
                self.sync_from(Some(&chosen), snapshot, fetched.index).await
            }
            Err(e) => self.failed_read_report(&chosen, e),
        }
    }

    /// The valid indices among `only` (every resource when `None`).
    fn chosen(&self, only: Option<&[usize]>) -> Vec<usize> {
        match only {
            Some(indices) => indices
                .iter()
                .copied()
                .filter(|&i| i < self.resources.len())
                .collect(),
            None => (0..self.resources.len()).collect(),
        }
    }

    /// Reads `roots` from the backend, logging the start and the end of an
    /// outage once each.
    pub async fn read(&mut self, roots: &[String]) -> Result<Fetched, BackendError> {
        if let Some(metrics) = &self.metrics {
            metrics.backend_read(self.backend.name());
        }
        match self.backend.read(roots).await {
            Ok(fetched) => {
                self.note_backend_ok();
                tracing::debug!(
                    backend = self.backend.name(),
                    keys = fetched.pairs.len(),
                    index = fetched.index,
                    prefixes = %roots.join(","),
                    "read snapshot"
                );
                Ok(fetched)
            }
            Err(e) => {
                self.note_backend_error(&e);
                Err(e)
            }
        }
    }

    /// The report of a pass whose read failed: every chosen resource failed
    /// with the backend's error, and nothing was written.
    pub fn failed_read_report(&self, chosen: &[usize], e: BackendError) -> PassReport {
        let failure = Failure::backend(&e);
        PassReport {
            outcomes: chosen
                .iter()
                .filter_map(|&i| self.resources.get(i))
                .map(|p| (p.resource.name.clone(), failure.clone().into()))
                .collect(),
            index: None,
            backend_error: Some(e),
        }
    }

    /// Syncs the chosen resources (all when `only` is `None`) from a
    /// snapshot read at `index`: render, guard, write, then run each distinct
    /// reload command once.
    pub async fn sync_from(
        &mut self,
        only: Option<&[usize]>,
        snapshot: Arc<Snapshot>,
        index: u64,
    ) -> PassReport {
        let chosen = self.chosen(only);
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(chosen.len());
        let mut reloads = Reloads::default();
        let mut good_counts: Vec<(String, usize)> = Vec::new();
        let mut asked_services: Vec<(String, Vec<ServiceQuery>)> = Vec::new();
        // Render a few resources at a time (in parallel), write them, and
        // only then render the next ones: memory holds a handful of outputs,
        // not all of them.
        let mut shared = SharedRenders::plan(self, &chosen, &snapshot);
        for chunk in chosen.chunks(render_chunk()) {
            let rendered = self.render_all(chunk, &snapshot, &mut shared).await;
            for (&index, step) in chunk.iter().zip(rendered) {
                let position = outcomes.len();
                let resource = &self.resources[index].resource;
                asked_services.push((resource.name.clone(), step.asked));
                let outcome = match step.text {
                    Ok(content) => self.write_resource(resource, &content).await,
                    Err(failure) => failure.into(),
                };
                if matches!(outcome, Outcome::Updated | Outcome::Unchanged) {
                    good_counts.push((resource.name.clone(), step.count));
                }
                if outcome == Outcome::Updated
                    && !self.options.sync_only
                    && let Some(reload) = &resource.reload_cmd
                {
                    let dest = resource.dest.display().to_string();
                    let line = command::expand(reload, None, &dest);
                    reloads.queue(line, resource.command_timeout, position);
                }
                outcomes.push(outcome);
            }
        }
        self.last_good_counts.extend(good_counts);
        for (name, asked) in asked_services {
            self.catalog.note_asked(&name, asked);
        }

        let names = |p: usize| self.resources[chosen[p]].resource.name.clone();
        for failed in reloads.run(names, self.metrics.as_deref()).await {
            for p in failed.positions {
                outcomes[p] = Failure::reload(failed.message.clone()).into();
            }
        }

        let report = PassReport {
            outcomes: chosen
                .iter()
                .zip(outcomes)
                .map(|(&i, o)| (self.resources[i].resource.name.clone(), o))
                .collect(),
            index: Some(index),
            backend_error: None,
        };
        for ((name, outcome), &i) in report.outcomes.iter().zip(&chosen) {
            let dest = self.resources[i].resource.dest.display();
            match outcome {
                Outcome::Failed(failure) => {
                    tracing::error!(resource = %name, dest = %dest, outcome = %outcome.label(), step = %failure.step, error = %failure.message)
                }
                Outcome::Unchanged => {
                    tracing::debug!(resource = %name, dest = %dest, outcome = %outcome.label())
                }
                _ => tracing::info!(resource = %name, dest = %dest, outcome = %outcome.label()),
            }
        }
        report
    }

    /// Writes one resource's rendered content to its destination.
    async fn write_resource(&self, resource: &Resource, content: &str) -> Outcome {
        // Before check_cmd and before anything is staged: dest stays as it is.
        if let Some(format) = resource.format
            && let Err(e) = format.validate(content)
        {
            return Failure::validate(format!("{}: {e}", resource.src.display())).into();
        }
        let target = Target {
            dest: &resource.dest,
            content: content.as_bytes(),
            mode: resource.mode,
            uid: resource.uid,
            gid: resource.gid,
            check_cmd: resource.check_cmd.as_deref(),
            command_timeout: resource.command_timeout,
            metrics: self.metrics.as_deref(),
        };
        match sync_file(&target, self.options).await {
            Ok(Synced::Unchanged) => Outcome::Unchanged,
            Ok(Synced::Updated) => Outcome::Updated,
            Ok(Synced::WouldUpdate(diff)) => Outcome::WouldUpdate(diff),
            Err(e) => Failure::sync(&e).into(),
        }
    }
}

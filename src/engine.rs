//! One pass over every resource: read the backend once for the union of all
//! resources' subtrees, then render, guard, sync, and finally run each distinct
//! reload command once. Independent of which backend supplies the data and of
//! how passes are scheduled (one-shot or daemon).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::{Backend, BackendError, Fetched};
use crate::command;
use crate::resource::Resource;
use crate::services::{Instance, ServiceClient, ServiceData, ServiceQuery};
use crate::snapshot::{Snapshot, View, minimal_roots};
use crate::sync::{SyncOptions, Synced, Target, sync_file};
use crate::template::{Rendered, Template, TemplateCompiler, TemplateError};

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
    /// The backend's index at the pass's read; `None` when the read failed.
    pub index: Option<u64>,
    /// Why the read failed, when it did.
    pub backend_error: Option<BackendError>,
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
    services: Option<Arc<ServiceClient>>,
    /// The instances known for each service query.
    service_data: Mutex<Arc<ServiceData>>,
    /// The service queries each resource made at its last render.
    asked_by: HashMap<String, Vec<ServiceQuery>>,
}

impl Engine {
    /// Compiles every resource's template and works out the subtrees to read.
    pub fn new(resources: Vec<Resource>, backend: Arc<dyn Backend>, options: SyncOptions) -> Self {
        let mut engine = Engine {
            resources: Vec::new(),
            roots: Vec::new(),
            backend,
            options,
            last_good_counts: HashMap::new(),
            backend_down: false,
            services: None,
            service_data: Mutex::new(Arc::default()),
            asked_by: HashMap::new(),
        };
        engine.replace_resources(resources);
        engine
    }

    /// Swaps in a new set of resources (SIGHUP), recompiling templates and
    /// keeping what is remembered about resources that stay.
    pub fn replace_resources(&mut self, resources: Vec<Resource>) {
        let compiler = TemplateCompiler::new();
        let mut compiled: HashMap<std::path::PathBuf, Result<Template, TemplateError>> =
            HashMap::new();
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
        let names: std::collections::HashSet<&str> = self
            .resources
            .iter()
            .map(|p| p.resource.name.as_str())
            .collect();
        self.last_good_counts
            .retain(|name, _| names.contains(name.as_str()));
    }

    /// Reads from another backend from now on (SIGHUP with new settings).
    pub fn replace_backend(&mut self, backend: Arc<dyn Backend>) {
        self.backend = backend;
        self.backend_down = false;
    }

    /// Lets templates use `service(...)` through this client.
    pub fn with_services(mut self, client: ServiceClient) -> Self {
        self.services = Some(Arc::new(client));
        self
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

    /// Records a backend failure seen outside a pass (a watch), logging only
    /// the start of an outage.
    pub fn note_backend_error(&mut self, error: &BackendError) {
        if !self.backend_down {
            tracing::error!(backend = self.backend.name(), error = %error, "cannot read from the backend; destinations are left as they are until it answers");
            self.backend_down = true;
        } else {
            tracing::debug!(backend = self.backend.name(), error = %error, "backend still failing");
        }
    }

    fn note_backend_ok(&mut self) {
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
                let snapshot = Arc::new(Snapshot::from_pairs(fetched.pairs));
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
        let message = e.to_string();
        let failure = || {
            if e.transient {
                Failure::data(message.clone())
            } else {
                Failure::other(message.clone())
            }
        };
        PassReport {
            outcomes: chosen
                .iter()
                .filter_map(|&i| self.resources.get(i))
                .map(|p| (p.resource.name.clone(), failure()))
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
        let mut reloads: Vec<PendingReload> = Vec::new();
        let mut good_counts: Vec<(String, usize)> = Vec::new();
        let mut asked_services: Vec<(String, Vec<ServiceQuery>)> = Vec::new();
        // Render a few resources at a time (in parallel), write them, and
        // only then render the next ones: memory holds a handful of outputs,
        // not all of them.
        let mut shared = SharedRenders::plan(self, &chosen, &snapshot);
        for (chunk_number, chunk) in chosen.chunks(render_chunk()).enumerate() {
            let rendered = self.render_all(chunk, &snapshot, &mut shared).await;
            let first = chunk_number * render_chunk();
            for (offset, (&index, step)) in chunk.iter().zip(rendered).enumerate() {
                let position = first + offset;
                let prepared = &self.resources[index];
                asked_services.push((prepared.resource.name.clone(), step.asked));
                let outcome = match step.text {
                    Ok(content) => self.write_resource(&prepared.resource, &content).await,
                    Err(failure) => failure,
                };
                if matches!(outcome, Outcome::Updated | Outcome::Unchanged) {
                    good_counts.push((prepared.resource.name.clone(), step.count));
                }
                if outcome == Outcome::Updated && !self.options.sync_only {
                    if let Some(reload) = &prepared.resource.reload_cmd {
                        let line = command::expand(
                            reload,
                            None,
                            &prepared.resource.dest.display().to_string(),
                        );
                        match reloads.iter_mut().find(|r| r.command == line) {
                            Some(pending) => pending.positions.push(position),
                            None => reloads.push(PendingReload {
                                command: line,
                                timeout: prepared.resource.command_timeout,
                                positions: vec![position],
                            }),
                        }
                    }
                }
                outcomes.push(outcome);
            }
        }
        self.last_good_counts.extend(good_counts);
        self.asked_by.extend(asked_services);

        for reload in reloads {
            let names: Vec<&str> = reload
                .positions
                .iter()
                .map(|&p| self.resources[chosen[p]].resource.name.as_str())
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
                    for &p in &reload.positions {
                        outcomes[p] = Failure::other(message.clone());
                    }
                }
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

    /// Guards and renders the chosen resources: independent renders run on
    /// every core, and resources whose template text, prefix and keys are the
    /// same share one render (kept in `shared` while later resources of the
    /// pass still need it). Templates that asked for services not fetched
    /// yet are rendered again once those are fetched.
    async fn render_all(
        &self,
        chosen: &[usize],
        snapshot: &Arc<Snapshot>,
        shared: &mut SharedRenders,
    ) -> Vec<RenderStep> {
        let services = self.service_snapshot();
        let mut steps: Vec<RenderStep> = Vec::with_capacity(chosen.len());
        let mut keys: Vec<Option<RenderKey>> = Vec::with_capacity(chosen.len());
        let mut jobs: Vec<RenderJob<'_>> = Vec::new();
        let mut job_keys: Vec<RenderKey> = Vec::new();
        for &i in chosen {
            let prepared = &self.resources[i];
            let resource = &prepared.resource;
            let view = View::new(snapshot.clone(), &resource.prefix, &resource.keys);
            let count = view.key_count();
            let refusal = match &prepared.template {
                Err(e) => Some(Failure::other(e.to_string())),
                Ok(_) => self
                    .guard(resource, count, view.roots())
                    .err()
                    .map(Failure::data),
            };
            let (Ok(template), None) = (&prepared.template, &refusal) else {
                steps.push(RenderStep {
                    text: Err(refusal.unwrap_or_else(|| Failure::other("no template"))),
                    count,
                    asked: Vec::new(),
                });
                keys.push(None);
                continue;
            };
            let key = render_key(template, resource, &view);
            if !shared.results.contains_key(&key) && !job_keys.contains(&key) {
                jobs.push(RenderJob { template, view });
                job_keys.push(key.clone());
            }
            steps.push(RenderStep {
                text: Ok(Arc::from("")),
                count,
                asked: Vec::new(),
            });
            keys.push(Some(key));
        }
        for (key, rendered) in job_keys.into_iter().zip(render_parallel(&jobs, &services)) {
            let template = jobs
                .iter()
                .find(|j| render_key_of(j) == key)
                .map(|j| j.template.name().to_string())
                .unwrap_or_default();
            shared.results.insert(
                key,
                SharedRender {
                    text: rendered.text.map(Arc::from),
                    asked: rendered.services_asked,
                    template,
                },
            );
        }

        let mut out = Vec::with_capacity(chosen.len());
        for ((&i, mut step), key) in chosen.iter().zip(steps).zip(keys) {
            if let Some(key) = key {
                let Some(render) = shared.take(&key) else {
                    out.push(step);
                    continue;
                };
                let missing = render.asked.iter().any(|q| !services.contains_key(q));
                let own = self.resources[i].template.as_ref().ok();
                let shared_error =
                    render.text.is_err() && own.is_some_and(|t| t.name() != render.template);
                match (missing || shared_error, own) {
                    // Render this resource on its own: to fetch the services
                    // it needs, or so an error names its own template file.
                    (true, Some(template)) => {
                        let view = View::new(
                            snapshot.clone(),
                            &self.resources[i].resource.prefix,
                            &self.resources[i].resource.keys,
                        );
                        match self.render_discovering_services(template, &view).await {
                            Ok((text, asked)) => {
                                step.text = text
                                    .map(Arc::from)
                                    .map_err(|e| Failure::data(e.to_string()));
                                step.asked = asked;
                            }
                            Err(failure) => step.text = Err(failure),
                        }
                    }
                    _ => {
                        step.text = render.text.map_err(|e| Failure::data(e.to_string()));
                        step.asked = render.asked;
                    }
                }
            }
            out.push(step);
        }
        out
    }

    /// Writes one resource's rendered content to its destination.
    async fn write_resource(&self, resource: &Resource, content: &str) -> Outcome {
        let target = Target {
            dest: &resource.dest,
            content: content.as_bytes(),
            mode: resource.mode,
            uid: resource.uid,
            gid: resource.gid,
            check_cmd: resource.check_cmd.as_deref(),
            command_timeout: resource.command_timeout,
        };
        match sync_file(&target, self.options).await {
            Ok(Synced::Unchanged) => Outcome::Unchanged,
            Ok(Synced::Updated) => Outcome::Updated,
            Ok(Synced::WouldUpdate(diff)) => Outcome::WouldUpdate(diff),
            Err(e) => Failure::other(e.to_string()),
        }
    }

    /// Renders; when the template asks for services not fetched yet, fetches
    /// them and renders again (a few rounds at most, for templates whose
    /// queries depend on other queries' answers).
    async fn render_discovering_services(
        &self,
        template: &Template,
        view: &View,
    ) -> Result<(Result<String, TemplateError>, Vec<ServiceQuery>), Outcome> {
        const ROUNDS: usize = 3;
        let mut round = 0;
        loop {
            let known = self.service_snapshot();
            let rendered = template.render_with(view.clone(), known.clone());
            let missing: Vec<ServiceQuery> = rendered
                .services_asked
                .iter()
                .filter(|q| !known.contains_key(*q))
                .cloned()
                .collect();
            round += 1;
            if missing.is_empty() || round >= ROUNDS {
                return Ok((rendered.text, rendered.services_asked));
            }
            let Some(client) = &self.services else {
                return Err(Failure::data("service(): no Consul catalog is configured"));
            };
            for query in missing {
                match client.fetch(&query).await {
                    Ok(instances) => {
                        self.set_service_instances(query, instances);
                    }
                    Err(e) => return Err(Failure::data(e.to_string())),
                }
            }
        }
    }

    /// The service instances known now.
    fn service_snapshot(&self) -> Arc<ServiceData> {
        match self.service_data.lock() {
            Ok(data) => data.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records the instances of `query`; returns whether they changed.
    pub fn set_service_instances(&self, query: ServiceQuery, instances: Vec<Instance>) -> bool {
        let mut data = match self.service_data.lock() {
            Ok(data) => data,
            Err(poisoned) => poisoned.into_inner(),
        };
        if data.get(&query) == Some(&instances) {
            return false;
        }
        Arc::make_mut(&mut data).insert(query, instances);
        true
    }

    /// Forgets the instances of a query no resource uses any more.
    pub fn forget_service(&self, query: &ServiceQuery) {
        let mut data = match self.service_data.lock() {
            Ok(data) => data,
            Err(poisoned) => poisoned.into_inner(),
        };
        if data.contains_key(query) {
            Arc::make_mut(&mut data).remove(query);
        }
    }

    /// Every distinct service query the resources made at their last render.
    pub fn service_queries(&self) -> Vec<ServiceQuery> {
        let mut all: Vec<ServiceQuery> = self.asked_by.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// The resources whose last render asked for `query`.
    pub fn resources_asking(&self, query: &ServiceQuery) -> Vec<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                self.asked_by
                    .get(&p.resource.name)
                    .is_some_and(|asked| asked.contains(query))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The client of the service catalog, when one is configured.
    pub fn service_client(&self) -> Option<&Arc<ServiceClient>> {
        self.services.as_ref()
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

/// One resource's render, before writing.
struct RenderStep {
    /// The content, or why there is none.
    text: Result<Arc<str>, Outcome>,
    /// Keys the resource saw.
    count: usize,
    /// Service queries the template made.
    asked: Vec<ServiceQuery>,
}

/// One distinct render of a pass.
struct RenderJob<'a> {
    template: &'a Template,
    view: View,
}

/// What makes two renders equal: the template text, the prefix and the roots.
type RenderKey = (u64, String, Vec<String>);

fn render_key(template: &Template, resource: &Resource, view: &View) -> RenderKey {
    (
        template.fingerprint(),
        resource.prefix.clone(),
        view.roots().to_vec(),
    )
}

fn render_key_of(job: &RenderJob<'_>) -> RenderKey {
    (
        job.template.fingerprint(),
        job.view.prefix().to_string(),
        job.view.roots().to_vec(),
    )
}

/// A render shared by resources of one pass.
struct SharedRender {
    text: Result<Arc<str>, TemplateError>,
    asked: Vec<ServiceQuery>,
    /// The template file that produced it (errors name it).
    template: String,
}

/// Renders of a pass that later resources will reuse, with how many
/// resources still need each.
struct SharedRenders {
    results: HashMap<RenderKey, SharedRender>,
    users: HashMap<RenderKey, usize>,
}

impl SharedRenders {
    /// Counts, for the whole pass, how many resources need each render.
    fn plan(engine: &Engine, chosen: &[usize], snapshot: &Arc<Snapshot>) -> Self {
        let mut users: HashMap<RenderKey, usize> = HashMap::new();
        for &i in chosen {
            let prepared = &engine.resources[i];
            if let Ok(template) = &prepared.template {
                let view = View::new(
                    snapshot.clone(),
                    &prepared.resource.prefix,
                    &prepared.resource.keys,
                );
                *users
                    .entry(render_key(template, &prepared.resource, &view))
                    .or_default() += 1;
            }
        }
        SharedRenders {
            results: HashMap::new(),
            users,
        }
    }

    /// Hands out a render, forgetting it once its last user has it.
    fn take(&mut self, key: &RenderKey) -> Option<SharedRender> {
        let remaining = self.users.get_mut(key)?;
        *remaining = remaining.saturating_sub(1);
        if *remaining == 0 {
            self.users.remove(key);
            self.results.remove(key)
        } else {
            self.results.get(key).map(|r| SharedRender {
                text: r.text.clone(),
                asked: r.asked.clone(),
                template: r.template.clone(),
            })
        }
    }
}

/// How many resources are rendered together before being written.
fn render_chunk() -> usize {
    cores() * 2
}

/// The cores this process may use, asked once: the answer reads cgroup
/// files, which is not free on the path of every change.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Renders `jobs` on up to one thread per core (none when there is one job).
fn render_parallel(jobs: &[RenderJob<'_>], services: &Arc<ServiceData>) -> Vec<Rendered> {
    let threads = cores().min(jobs.len());
    let render = |job: &RenderJob<'_>| job.template.render_with(job.view.clone(), services.clone());
    if threads <= 1 {
        return jobs.iter().map(render).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Mutex<Option<Rendered>>> = Vec::with_capacity(jobs.len());
    slots.resize_with(jobs.len(), || Mutex::new(None));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let rendered = render(job);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(rendered);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(jobs)
        .map(|(slot, job)| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| render(job))
        })
        .collect()
}

/// A reload command waiting for the end of the pass, with the resources that
/// asked for it.
struct PendingReload {
    command: String,
    timeout: Duration,
    /// Positions in the pass's list of chosen resources.
    positions: Vec<usize>,
}

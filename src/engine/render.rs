//! The render stage of a pass: guards, then templates rendered off the event
//! loop on every core, with equal renders shared. Resources whose template
//! text, prefix and keys are equal share one render; a template that asked
//! for services not fetched yet is rendered again once they are.

use std::collections::HashMap;
use std::sync::Arc;

use super::catalog::FetchError;
use super::outcome::Failure;
use super::{Engine, guard};
use crate::resource::Resource;
use crate::services::{ServiceData, ServiceQuery};
use crate::snapshot::{Snapshot, View};
use crate::template::{RenderLimits, Rendered, Template, TemplateError, render_bounded};

/// One resource's render, before writing.
pub(super) struct RenderStep {
    /// The content, or why there is none.
    pub text: Result<Arc<str>, Failure>,
    /// Keys the resource saw.
    pub count: usize,
    /// Service queries the template made.
    pub asked: Vec<ServiceQuery>,
}

/// One distinct render of a pass; owned, so it can run on another thread.
struct RenderJob {
    key: RenderKey,
    template: Template,
    view: View,
    limits: RenderLimits,
}

/// What makes two renders equal: the template text, the prefix, the roots,
/// and the limits it runs under (resources with other limits render alone).
type RenderKey = (u64, String, Vec<String>, RenderLimits);

fn render_key(template: &Template, resource: &Resource, view: &View) -> RenderKey {
    (
        template.fingerprint(),
        resource.prefix.clone(),
        view.roots().to_vec(),
        resource.render_limits,
    )
}

/// A render shared by resources of one pass.
#[derive(Clone)]
struct SharedRender {
    text: Result<Arc<str>, TemplateError>,
    asked: Vec<ServiceQuery>,
    /// The template file that produced it (errors name it).
    template: String,
}

/// Renders of a pass that later resources will reuse, with how many
/// resources still need each.
pub(super) struct SharedRenders {
    results: HashMap<RenderKey, SharedRender>,
    users: HashMap<RenderKey, usize>,
}

impl SharedRenders {
    /// Counts, for the whole pass, how many resources need each render.
    pub fn plan(engine: &Engine, chosen: &[usize], snapshot: &Arc<Snapshot>) -> Self {
        let mut users: HashMap<RenderKey, usize> = HashMap::new();
        for &i in chosen {
            let prepared = &engine.resources[i];
            if let Ok(template) = &prepared.template {
                let view = prepared.view(snapshot);
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
            self.results.get(key).cloned()
        }
    }
}

impl Engine {
    /// Guards and renders the chosen resources; see the module docs.
    pub(super) async fn render_all(
        &self,
        chosen: &[usize],
        snapshot: &Arc<Snapshot>,
        shared: &mut SharedRenders,
    ) -> Vec<RenderStep> {
        let services = self.catalog.snapshot();
        let mut steps: Vec<RenderStep> = Vec::with_capacity(chosen.len());
        let mut keys: Vec<Option<RenderKey>> = Vec::with_capacity(chosen.len());
        let mut jobs: Vec<RenderJob> = Vec::new();
        for &i in chosen {
            let prepared = &self.resources[i];
            let resource = &prepared.resource;
            let view = prepared.view(snapshot);
            let count = view.key_count();
            let template = match &prepared.template {
                Ok(template) => template,
                Err(e) => {
                    steps.push(RenderStep::failed(Failure::compile(e.to_string()), count));
                    keys.push(None);
                    continue;
                }
            };
            let last_good = self.last_good_counts.get(&resource.name).copied();
            if let Err(refusal) = guard::check(resource, count, view.roots(), last_good) {
                steps.push(RenderStep::failed(Failure::guard(refusal), count));
                keys.push(None);
                continue;
            }
            let key = render_key(template, resource, &view);
            if !shared.results.contains_key(&key) && !jobs.iter().any(|j| j.key == key) {
                jobs.push(RenderJob {
                    key: key.clone(),
                    template: template.clone(),
                    view,
                    limits: resource.render_limits,
                });
            }
            // Replaced by the render below; stays a failure if it was lost.
            steps.push(RenderStep::failed(
                Failure::render(format!("{}: the render did not complete", template.name())),
                count,
            ));
            keys.push(Some(key));
        }
        let metrics = self.metrics.clone();
        for (job, rendered) in render_off_loop(jobs, services.clone(), metrics).await {
            shared.results.insert(
                job.key,
                SharedRender {
                    text: rendered.text.map(Arc::from),
                    asked: rendered.services_asked,
                    template: job.template.name().to_string(),
                },
            );
        }

        let mut out = Vec::with_capacity(chosen.len());
        for ((&i, mut step), key) in chosen.iter().zip(steps).zip(keys) {
            let Some(render) = key.and_then(|key| shared.take(&key)) else {
                out.push(step);
                continue;
            };
            let prepared = &self.resources[i];
            let missing = render.asked.iter().any(|q| !services.contains_key(q));
            let own = prepared.template.as_ref().ok();
            let shared_error =
                render.text.is_err() && own.is_some_and(|t| t.name() != render.template);
            match (missing || shared_error, own) {
                // Render this resource on its own: to fetch the services it
                // needs, or so an error names its own template file.
                (true, Some(template)) => {
                    let view = prepared.view(snapshot);
                    let limits = prepared.resource.render_limits;
                    match self
                        .render_discovering_services(template, view, limits)
                        .await
                    {
                        Ok((text, asked)) => {
                            step.text = text.map(Arc::from).map_err(|e| Failure::template(&e));
                            step.asked = asked;
                        }
                        Err(failure) => step.text = Err(failure),
                    }
                }
                _ => {
                    step.text = render.text.map_err(|e| Failure::template(&e));
                    step.asked = render.asked;
                }
            }
            out.push(step);
        }
        out
    }

    /// Renders; when the template asks for services not fetched yet, fetches
    /// them and renders again (a few rounds at most, for templates whose
    /// queries depend on other queries' answers).
    async fn render_discovering_services(
        &self,
        template: &Template,
        view: View,
        limits: RenderLimits,
    ) -> Result<(Result<String, TemplateError>, Vec<ServiceQuery>), Failure> {
        const ROUNDS: usize = 3;
        let mut round = 0;
        loop {
            let known = self.catalog.snapshot();
            let started = tokio::time::Instant::now();
            let rendered =
                render_bounded(template.clone(), view.clone(), known.clone(), limits).await;
            if let Some(metrics) = &self.metrics {
                metrics.render_took(started.elapsed());
            }
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
            for query in missing {
                match self.catalog.fetch(query).await {
                    Ok(()) => {}
                    Err(FetchError::Backend(e)) => return Err(Failure::backend(&e)),
                    Err(e @ FetchError::NoCatalog) => return Err(Failure::compile(e.to_string())),
                }
            }
        }
    }
}

impl RenderStep {
    fn failed(failure: Failure, count: usize) -> Self {
        RenderStep {
            text: Err(failure),
            count,
            asked: Vec::new(),
        }
    }
}

/// How many resources are rendered together before being written.
pub(super) fn render_chunk() -> usize {
    cores() * 2
}

/// The cores this process may use, asked once: the answer reads cgroup
/// files, which is not free on the path of every change.
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Renders `jobs` on render threads, one per core at a time, each within
/// its limits; the event loop's thread only waits, so signals and watch
/// events are taken while templates render.
async fn render_off_loop(
    jobs: Vec<RenderJob>,
    services: Arc<ServiceData>,
    metrics: Option<Arc<crate::ops::Metrics>>,
) -> Vec<(RenderJob, Rendered)> {
    let mut done: Vec<Option<Rendered>> = Vec::new();
    done.resize_with(jobs.len(), || None);
    let mut running = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < jobs.len() || !running.is_empty() {
        while next < jobs.len() && running.len() < cores() {
            let job = &jobs[next];
            let render = render_bounded(
                job.template.clone(),
                job.view.clone(),
                services.clone(),
                job.limits,
            );
            let position = next;
            let metrics = metrics.clone();
            running.spawn(async move {
                let started = tokio::time::Instant::now();
                let rendered = render.await;
                if let Some(metrics) = metrics {
                    metrics.render_took(started.elapsed());
                }
                (position, rendered)
            });
            next += 1;
        }
        match running.join_next().await {
            Some(Ok((position, rendered))) => done[position] = Some(rendered),
            Some(Err(e)) => tracing::error!(error = %e, "a render task failed"),
            None => break,
        }
    }
    jobs.into_iter()
        .zip(done)
        .map(|(job, rendered)| {
            let rendered = rendered.unwrap_or_else(|| Rendered {
                text: Err(TemplateError::Render(
                    format!("{}: the render did not complete", job.template.name()).into(),
                )),
                services_asked: Vec::new(),
            });
            (job, rendered)
        })
        .collect()
}

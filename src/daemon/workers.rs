//! The watch workers of a daemon: one task per watched prefix and one per
//! `service(...)` query, all in one `JoinSet` under a name. Each reports to
//! the event loop through one channel. A worker that ends or panics is
//! logged and started again after a backoff, never silently lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;

use crate::backend::{Backend, BackendError, Change, WatchEvent};
use crate::backoff::Backoff;
use crate::services::{Instance, ServiceClient, ServiceEvent, ServiceQuery};

/// First pause after a failed watch request.
const WATCH_RETRY_START: Duration = Duration::from_millis(100);
/// Longest pause between failed watch requests.
const WATCH_RETRY_MAX: Duration = Duration::from_secs(1);
/// First pause before starting a worker that ended again.
const RESTART_START: Duration = Duration::from_millis(500);
/// Longest pause before starting a worker that ended again.
const RESTART_MAX: Duration = Duration::from_secs(30);

/// What a worker follows; also its name in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkerId {
    /// The watch of one prefix.
    Prefix(String),
    /// The blocking query of one `service(...)` call.
    Service(ServiceQuery),
}

impl std::fmt::Display for WorkerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkerId::Prefix(root) => write!(f, "watch {root}"),
            WorkerId::Service(query) => write!(f, "{query}"),
        }
    }
}

/// What workers tell the event loop.
#[derive(Debug)]
pub enum Notice {
    /// Something under `root` changed; the store is at `index`. `changes`
    /// says what, when the backend reports it.
    Changed {
        /// The watched prefix.
        root: String,
        /// The store's index after the change.
        index: u64,
        /// The changes, when the backend reports them.
        changes: Option<Vec<Change>>,
    },
    /// The backend lost the history of `root`: read it again.
    Resync {
        /// The watched prefix.
        root: String,
    },
    /// The watch of `root` failed; it retries by itself.
    Failed {
        /// The watched prefix.
        root: String,
        /// Why.
        error: BackendError,
    },
    /// A service query has a new answer.
    Service {
        /// The query.
        query: ServiceQuery,
        /// Its instances now.
        instances: Vec<Instance>,
    },
}

struct Running {
    abort: AbortHandle,
    started: Instant,
    /// Tells a prefix's watch the index of the latest read of its prefix.
    read_index: Option<watch::Sender<u64>>,
}

/// Every watch worker of the daemon.
pub struct Workers {
    set: JoinSet<()>,
    running: HashMap<WorkerId, Running>,
    tasks: HashMap<Id, WorkerId>,
    restarts: HashMap<WorkerId, Backoff>,
    notices: mpsc::UnboundedSender<Notice>,
}

impl Workers {
    /// Workers reporting to `notices`.
    pub fn new(notices: mpsc::UnboundedSender<Notice>) -> Self {
        Workers {
            set: JoinSet::new(),
            running: HashMap::new(),
            tasks: HashMap::new(),
            restarts: HashMap::new(),
            notices,
        }
    }

    /// Keeps exactly one watch per prefix of `roots` (those already running
    /// stay as they are), starting new ones after `index_of(root)`.
    pub fn follow_prefixes(
        &mut self,
        backend: &Arc<dyn Backend>,
        roots: &[String],
        index_of: impl Fn(&str) -> u64,
    ) {
        self.retain(|id| match id {
            WorkerId::Prefix(root) => roots.contains(root),
            WorkerId::Service(_) => true,
        });
        for root in roots {
            let id = WorkerId::Prefix(root.clone());
            if !self.running.contains_key(&id) {
                self.start_prefix(
                    backend.clone(),
                    root.clone(),
                    index_of(root),
                    Duration::ZERO,
                );
            }
        }
    }

    /// Keeps exactly one blocking query per query of `queries`. Returns the
    /// queries whose worker stopped (no resource uses them any more).
    pub fn follow_services(
        &mut self,
        client: &Arc<ServiceClient>,
        queries: &[ServiceQuery],
    ) -> Vec<ServiceQuery> {
        let mut dropped = Vec::new();
        self.retain(|id| match id {
            WorkerId::Service(query) if !queries.contains(query) => {
                dropped.push(query.clone());
                false
            }
            _ => true,
        });
        for query in queries {
            if !self.running.contains_key(&WorkerId::Service(query.clone())) {
                self.start_service(client.clone(), query.clone(), Duration::ZERO);
            }
        }
        dropped
    }

    /// Stops every worker.
    pub fn stop_all(&mut self) {
        self.retain(|_| false);
    }

    /// Stops the watch of `root` (it is started again by the next
    /// `follow_prefixes`).
    pub fn stop_prefix(&mut self, root: &str) {
        self.retain(|id| *id != WorkerId::Prefix(root.to_string()));
    }

    /// Tells the watch of `root` that its prefix was read at `index`.
    pub fn note_read(&self, root: &str, index: u64) {
        if let Some(sender) = self
            .running
            .get(&WorkerId::Prefix(root.to_string()))
            .and_then(|r| r.read_index.as_ref())
        {
            let _ = sender.send(index);
        }
    }

    /// The names of the running workers.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.running.keys().map(|id| id.to_string()).collect();
        names.sort();
        names
    }

    fn retain(&mut self, mut keep: impl FnMut(&WorkerId) -> bool) {
        self.running.retain(|id, running| {
            let kept = keep(id);
            if !kept {
                running.abort.abort();
            }
            kept
        });
        self.restarts.retain(|id, _| self.running.contains_key(id));
    }

    fn start_prefix(
        &mut self,
        backend: Arc<dyn Backend>,
        root: String,
        index: u64,
        delay: Duration,
    ) {
        let (read_index, receiver) = watch::channel(index);
        let notices = self.notices.clone();
        let task = watch_prefix(backend, root.clone(), receiver, notices);
        self.spawn(WorkerId::Prefix(root), Some(read_index), delay, task);
    }

    fn start_service(&mut self, client: Arc<ServiceClient>, query: ServiceQuery, delay: Duration) {
        let task = watch_service(client, query.clone(), self.notices.clone());
        self.spawn(WorkerId::Service(query), None, delay, task);
    }

    fn spawn(
        &mut self,
        id: WorkerId,
        read_index: Option<watch::Sender<u64>>,
        delay: Duration,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let abort = self.set.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            task.await;
        });
        self.tasks.insert(abort.id(), id.clone());
        self.running.insert(
            id,
            Running {
                abort,
                started: Instant::now(),
                read_index,
            },
        );
    }

    /// Waits until a worker ends. Pending forever when there are none, so it
    /// can sit in a `select!` beside the other event sources.
    pub async fn ended(&mut self) -> Ended {
        loop {
            match self.set.join_next_with_id().await {
                Some(Ok((id, ()))) => {
                    if let Some(worker) = self.tasks.remove(&id) {
                        return Ended {
                            worker,
                            error: None,
                        };
                    }
                }
                Some(Err(error)) => {
                    let id = error.id();
                    if let Some(worker) = self.tasks.remove(&id)
                        && !error.is_cancelled()
                    {
                        return Ended {
                            worker,
                            error: Some(error),
                        };
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    /// A worker ended on its own (the loop stops workers only by aborting
    /// them): log it and start it again after a backoff. `backend` and
    /// `client` are what the replacement watches.
    pub fn restart(
        &mut self,
        ended: Ended,
        backend: &Arc<dyn Backend>,
        client: Option<&Arc<ServiceClient>>,
        index_of: impl Fn(&str) -> u64,
    ) {
        let Some(running) = self.running.remove(&ended.worker) else {
            return; // Stopped on purpose meanwhile.
        };
        let mut backoff = self
            .restarts
            .remove(&ended.worker)
            .unwrap_or_else(|| Backoff::new(RESTART_START, RESTART_MAX));
        // A worker that ran well for a while starts again quickly.
        if running.started.elapsed() > RESTART_MAX {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        let how = match &ended.error {
            Some(e) if e.is_panic() => "panicked",
            Some(_) => "failed",
            None => "ended",
        };
        tracing::error!(worker = %ended.worker, restart_in = ?delay, "watch worker {how}; starting it again");
        match ended.worker.clone() {
            WorkerId::Prefix(root) => {
                let index = index_of(&root);
                self.start_prefix(backend.clone(), root, index, delay);
            }
            WorkerId::Service(query) => match client {
                Some(client) => self.start_service(client.clone(), query, delay),
                None => return,
            },
        }
        self.restarts.insert(ended.worker, backoff);
    }
}

/// A worker that ended, and how.
#[derive(Debug)]
pub struct Ended {
    /// Which worker.
    pub worker: WorkerId,
    /// Its panic or cancellation; `None` when it returned.
    pub error: Option<JoinError>,
}

/// One prefix's watch loop: waits for changes after the last index it knows
/// (its own or the latest read's, whichever is newer) and reports them.
async fn watch_prefix(
    backend: Arc<dyn Backend>,
    root: String,
    mut read_index: watch::Receiver<u64>,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let mut index = *read_index.borrow_and_update();
    let mut retry = Backoff::new(WATCH_RETRY_START, WATCH_RETRY_MAX);
    loop {
        index = index.max(*read_index.borrow_and_update());
        let notice = match backend.watch(&root, index).await {
            Ok(WatchEvent::Changed {
                index: changed,
                changes,
            }) => {
                retry.reset();
                index = index.max(changed);
                Notice::Changed {
                    root: root.clone(),
                    index: changed,
                    changes,
                }
            }
            Ok(WatchEvent::Quiet) => {
                retry.reset();
                continue;
            }
            Ok(WatchEvent::Resync) => {
                // Forget the old index: after a reset (Consul) it may be
                // higher than anything the store will reach again.
                index = 0;
                if notices.send(Notice::Resync { root: root.clone() }).is_err() {
                    return;
                }
                // Resume from the index of the read the resync causes.
                if read_index.changed().await.is_err() {
                    return;
                }
                continue;
            }
            Err(error) => {
                let notice = Notice::Failed {
                    root: root.clone(),
                    error,
                };
                if notices.send(notice).is_err() {
                    return;
                }
                tokio::time::sleep(retry.next_delay()).await;
                continue;
            }
        };
        if notices.send(notice).is_err() {
            return;
        }
    }
}

/// One service query's blocking-query loop: reports every new answer (the
/// loop compares it with what is known and re-renders only on a difference).
async fn watch_service(
    client: Arc<ServiceClient>,
    query: ServiceQuery,
    notices: mpsc::UnboundedSender<Notice>,
) {
    let mut index = 0;
    let mut retry = Backoff::new(WATCH_RETRY_START, WATCH_RETRY_MAX);
    let mut failing = false;
    loop {
        match client.watch(&query, index).await {
            Ok(ServiceEvent::Changed(instances, new_index)) => {
                if failing {
                    tracing::info!(%query, "service catalog reachable again");
                    failing = false;
                }
                retry.reset();
                index = new_index;
                let notice = Notice::Service {
                    query: query.clone(),
                    instances,
                };
                if notices.send(notice).is_err() {
                    return;
                }
            }
            Ok(ServiceEvent::Quiet) => retry.reset(),
            Ok(ServiceEvent::Reset) => index = 0,
            Err(error) => {
                if !failing {
                    tracing::error!(%query, error = %error, "service catalog unreachable; files keep the last instances seen");
                    failing = true;
                }
                tokio::time::sleep(retry.next_delay()).await;
            }
        }
    }
}

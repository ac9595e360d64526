//! An in-tree Consul for tests: no Consul can be installed here, so this
//! server speaks the parts of Consul's HTTP API that the `consul` backend
//! uses, as Consul's API documentation describes them (KV store, blocking
//! queries, health of services, ACL tokens, datacenters), on a free
//! 127.0.0.1 port, until stopped or dropped.
//!
//! Documented behaviour it follows (developer.hashicorp.com/consul/api-docs):
//!
//! * `kv`: `GET /v1/kv/<key>` answers a JSON array of one entry
//!   (`LockIndex`, `Key`, `Flags`, `Value` in base64, `CreateIndex`,
//!   `ModifyIndex`; `Session` only when a lock is held), 404
//!   with an empty body when missing. `?recurse` lists every key that starts
//!   with the key as a plain string (so `app` also matches `apple`), sorted;
//!   `?keys` lists only names, and `&separator=/` rolls names up at the next
//!   separator (`["/web/bar", "/web/foo", "/web/subdir/"]`); `?raw` answers
//!   the bare value. An entry put with an empty body (a "folder" such as
//!   `app/`) has `"Value": null`. `PUT` (`?flags=`, `?cas=`) and `DELETE`
//!   (`?recurse`, `?cas=`) answer `true` or `false`. Values are limited to
//!   512 KiB (413 above).
//! * `features/blocking`: every read carries `X-Consul-Index`; with
//!   `?index=N` the request is held until the index of *its* result goes
//!   above N or `wait` (default 5m, at most 10m, Go duration syntax) passes,
//!   plus a random jitter of up to wait/16; the index is never 0. A recursive
//!   read's index is the highest `ModifyIndex` under the prefix, including
//!   deleted keys (Consul keeps tombstones so that a delete also wakes a
//!   prefix watch); a missing key's index is the KV store's index.
//!   [`ConsulServer::set_index_backwards`] plays a snapshot restore: the
//!   index goes down, every held request is answered at once, and clients
//!   must reset to 0 as the docs advise.
//! * `health`: `GET /v1/health/service/<name>` answers
//!   `[{"Node": {…}, "Service": {…}, "Checks": […]}]`; `?passing` keeps
//!   instances whose checks (the service's and the node's `serfHealth`) all
//!   pass; `?tag=` (repeatable, all must match) filters by tag; an unknown
//!   service is `[]`; the index is that of the last change to the service's
//!   instances or checks.
//! * `api-structure` (authentication): the token comes from `?token=`,
//!   `X-Consul-Token` or `Authorization: Bearer`; with a required token, a
//!   request without one is 403 `Permission denied: …` and an unknown token
//!   is 403 `ACL not found`.
//! * `?dc=` other than the server's datacenter: 500 `No path to datacenter`.
//! * `session`, and `kv` with `?acquire=`/`?release=`: see [`session`].
//!
//! Headers use Go's canonical spelling, as a real Consul sends them
//! (`X-Consul-Knownleader`, `X-Consul-Lastcontact`); HTTP header names are
//! case-insensitive, so clients must not care.

#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::BuildHasher;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

// Spelled out: the file is also included by path from examples/.
#[path = "consul/session.rs"]
mod session;

/// Consul's default blocking wait when `wait` is not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5 * 60);
/// Consul's cap on a blocking wait.
pub const MAX_WAIT: Duration = Duration::from_secs(10 * 60);
/// The jitter added to a wait is at most wait / JITTER_FRACTION.
pub const JITTER_FRACTION: u32 = 16;
/// Consul's default limit on a KV value (`kv_max_value_size`).
pub const MAX_VALUE_SIZE: usize = 512 * 1024;
/// The AccessorID of Consul's anonymous token (used when a request has none).
pub const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// How often a held request looks for its client having gone away.
const HELD_POLL: Duration = Duration::from_millis(100);
/// How often an idle connection looks for the server stopping.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Request lines kept for [`ConsulServer::request_log`].
const LOG_LIMIT: usize = 10_000;
/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ConsulOptions {
    /// When set, every request must carry this ACL token.
    pub token: Option<String>,
    /// The server's datacenter (`?dc=` must be this or absent); "dc1" by default.
    pub datacenter: String,
    /// Listen on this port instead of a free one (e.g. to start again on the
    /// port of a stopped server).
    pub port: Option<u16>,
}

impl Default for ConsulOptions {
    fn default() -> ConsulOptions {
        ConsulOptions {
            token: None,
            datacenter: "dc1".to_string(),
            port: None,
        }
    }
}

/// A health check status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

impl CheckStatus {
    /// The status as Consul spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }
}

/// One service instance to register in the catalog. Empty `node` means
/// "node1"; empty `node_address` means 127.0.0.1. Its service check
/// (`service:<id>`) and its node's `serfHealth` check start passing.
#[derive(Debug, Clone, Default)]
pub struct ServiceInstance {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    /// The service address; may be empty (clients then use the node's).
    pub address: String,
    pub port: u16,
    pub meta: BTreeMap<String, String>,
    /// The node name.
    pub node: String,
    /// The node address.
    pub node_address: String,
}

impl ServiceInstance {
    /// An instance `id` of service `name` at `address:port` on node1.
    pub fn new(id: &str, name: &str, address: &str, port: u16) -> ServiceInstance {
        ServiceInstance {
            id: id.to_string(),
            name: name.to_string(),
            address: address.to_string(),
            port,
            ..ServiceInstance::default()
        }
    }

    /// The same instance with `tags`.
    pub fn tags(mut self, tags: &[&str]) -> ServiceInstance {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    /// The same instance on node `name` at `address`.
    pub fn on_node(mut self, name: &str, address: &str) -> ServiceInstance {
        self.node = name.to_string();
        self.node_address = address.to_string();
        self
    }

    /// The same instance with one more meta pair.
    pub fn meta(mut self, key: &str, value: &str) -> ServiceInstance {
        self.meta.insert(key.to_string(), value.to_string());
        self
    }
}

/// Requests served, by kind (every request counts once in `total`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    /// KV reads without `?index` (or with index 0).
    pub kv_reads: u64,
    /// KV reads with `?index` > 0 (blocking queries).
    pub kv_blocking: u64,
    /// KV PUTs and DELETEs.
    pub kv_writes: u64,
    /// Health reads (blocking or not).
    pub health: u64,
    /// Requests answered 403.
    pub denied: u64,
    /// Anything else (unknown paths, bad methods, bad requests).
    pub other: u64,
}

/// A running test Consul.
pub struct ConsulServer {
    shared: Arc<Shared>,
    port: u16,
    accept: Option<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
}

impl ConsulServer {
    /// Starts a server in datacenter "dc1" without ACLs.
    pub fn start() -> ConsulServer {
        ConsulServer::start_with(ConsulOptions::default())
    }

    /// Starts a server with `options`.
    pub fn start_with(options: ConsulOptions) -> ConsulServer {
        let listener = TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0)))
            .expect("bind the test Consul's port");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State::new()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            connections: Mutex::new(Connections::default()),
            held: AtomicU64::new(0),
            hook: Mutex::new(None),
        });
        let accepting = shared.clone();
        let accept = std::thread::Builder::new()
            .name("consul-accept".to_string())
            .spawn(move || accept_loop(listener, accepting))
            .expect("spawn the accept thread");
        let reaping = shared.clone();
        let reaper = std::thread::Builder::new()
            .name("consul-sessions".to_string())
            .spawn(move || session::reap_loop(&reaping))
            .expect("spawn the session reaper");
        ConsulServer {
            shared,
            port,
            accept: Some(accept),
            reaper: Some(reaper),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address())
    }

    /// `127.0.0.1:<port>` (the form of `-node` and `CONSUL_HTTP_ADDR`).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn datacenter(&self) -> &str {
        &self.shared.options.datacenter
    }

    /// Sets `key` (leading slashes dropped: Consul keys have none) to
    /// `value`, as `PUT /v1/kv/<key>` would: an empty value is stored as no
    /// value (`"Value": null`), which is what a folder such as `app/` is.
    /// Returns the index of the write.
    pub fn put(&self, key: &str, value: &str) -> u64 {
        self.put_bytes(key, value.as_bytes(), 0)
    }

    /// [`ConsulServer::put`] with raw bytes and flags.
    pub fn put_bytes(&self, key: &str, value: &[u8], flags: u64) -> u64 {
        let mut state = self.shared.lock();
        let index = state.put(&consul_key(key), value_of(value), flags);
        drop(state);
        self.shared.changed.notify_all();
        index
    }

    /// Sets every pair in one write (one index, like a Consul transaction).
    pub fn put_many(&self, pairs: &[(&str, &str)]) -> u64 {
        let mut state = self.shared.lock();
        let index = state.bump();
        for (key, value) in pairs {
            state.put_at(index, &consul_key(key), value_of(value.as_bytes()), 0);
        }
        drop(state);
        self.shared.changed.notify_all();
        index
    }

    /// The value of `key`, if it exists (`Some("")` for a null value).
    pub fn get(&self, key: &str) -> Option<String> {
        let state = self.shared.lock();
        state
            .kv
            .get(&consul_key(key))
            .map(|e| String::from_utf8_lossy(e.value.as_deref().unwrap_or_default()).into_owned())
    }

    /// The session holding `key`'s lock, if any.
    pub fn lock_holder(&self, key: &str) -> Option<String> {
        let state = self.shared.lock();
        state
            .kv
            .get(&consul_key(key))
            .and_then(|e| session::holder(e).map(str::to_string))
    }

    /// How many sessions are alive.
    pub fn session_count(&self) -> usize {
        self.shared.lock().sessions.len()
    }

    /// Deletes `key`; false when it did not exist.
    pub fn delete(&self, key: &str) -> bool {
        let mut state = self.shared.lock();
        let deleted = state.delete(&consul_key(key), false) > 0;
        drop(state);
        self.shared.changed.notify_all();
        deleted
    }

    /// Deletes every key starting with `prefix` (a plain string prefix, as
    /// `DELETE ?recurse`); returns how many went.
    pub fn delete_prefix(&self, prefix: &str) -> usize {
        let mut state = self.shared.lock();
        let deleted = state.delete(&consul_key(prefix), true);
        drop(state);
        self.shared.changed.notify_all();
        deleted
    }

    /// Registers (or replaces, by id) a service instance.
    pub fn register_service(&self, instance: ServiceInstance) -> u64 {
        assert!(!instance.id.is_empty(), "a service instance needs an id");
        assert!(!instance.name.is_empty(), "a service instance needs a name");
        let mut state = self.shared.lock();
        let index = state.register(instance);
        drop(state);
        self.shared.changed.notify_all();
        index
    }

    /// Removes a service instance; false when there was none.
    pub fn deregister_service(&self, id: &str) -> bool {
        let mut state = self.shared.lock();
        let done = state.deregister(id);
        drop(state);
        self.shared.changed.notify_all();
        done
    }

    /// Sets the status of a service instance's check. Setting the status it
    /// already has writes nothing (the index stays). False when no such
    /// instance exists.
    pub fn set_check(&self, service_id: &str, status: CheckStatus) -> bool {
        let mut state = self.shared.lock();
        let done = state.set_check(service_id, status);
        drop(state);
        self.shared.changed.notify_all();
        done
    }

    /// Sets the status of a node's `serfHealth` check (every instance on the
    /// node is affected). False when the node has no instance.
    pub fn set_node_check(&self, node: &str, status: CheckStatus) -> bool {
        let mut state = self.shared.lock();
        let done = state.set_node_check(node, status);
        drop(state);
        self.shared.changed.notify_all();
        done
    }

    /// The current Raft-like index (raised by every write).
    pub fn index(&self) -> u64 {
        self.shared.lock().index
    }

    /// Plays a snapshot restore to an older state: the index goes back to
    /// `index` (every stored index is capped at it), and every held blocking
    /// request is answered at once, as Consul does on a restore. Per
    /// Consul's docs, clients must notice the lower `X-Consul-Index` and
    /// start again from 0.
    pub fn set_index_backwards(&self, index: u64) {
        let mut state = self.shared.lock();
        assert!(
            index >= 1 && index < state.index,
            "set_index_backwards({index}) must go below the current index {}",
            state.index
        );
        state.restore_to(index);
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Total HTTP requests served (parsed and answered or held).
    pub fn requests(&self) -> u64 {
        self.shared.lock().counts.total
    }

    /// Requests served, by kind.
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.lock().counts
    }

    /// The first 10 000 request lines (`GET /v1/kv/app?recurse=true`), in
    /// the order they arrived, with any `token=` value masked.
    pub fn request_log(&self) -> Vec<String> {
        self.shared.lock().log.clone()
    }

    /// Calls `hook` with each request line (`GET /v1/kv/app?recurse=true`,
    /// token masked) when the request arrives, and puts the `(key, value)`
    /// pairs it returns, one write each, before the request is served: a
    /// test's way to change the data between two requests of one pass.
    /// Replaces any previous hook.
    pub fn on_request(&self, hook: impl Fn(&str) -> Vec<(String, String)> + Send + Sync + 'static) {
        *self.shared.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    /// Blocking queries being held right now.
    pub fn held_requests(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Stops listening, drops every connection (held requests get no
    /// answer) and waits for the server's threads. Idempotent.
    pub fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        self.shared.changed.notify_all();
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.join();
        }
        let handles = {
            let mut connections = self.shared.lock_connections();
            for stream in connections.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut connections.threads)
        };
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for ConsulServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Parses a Go duration (`300ms`, `5s`, `1m30s`, `1.5h`, `0`), as Consul
/// does for `wait`. Negative durations are refused.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total as u64))
}

/// The longest a blocking query with `wait` may be held before jitter:
/// the default when zero or absent, the cap when above it.
pub fn effective_wait(wait: Option<Duration>) -> Duration {
    match wait {
        None => DEFAULT_WAIT,
        Some(w) if w.is_zero() => DEFAULT_WAIT,
        Some(w) => w.min(MAX_WAIT),
    }
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct Shared {
    options: ConsulOptions,
    state: Mutex<State>,
    /// Signalled after every write, restore and stop.
    changed: Condvar,
    stopping: AtomicBool,
    connections: Mutex<Connections>,
    held: AtomicU64,
    /// Called with each request line before the request is served.
    hook: Mutex<Option<RequestHook>>,
}

/// See [`ConsulServer::on_request`].
type RequestHook = Arc<dyn Fn(&str) -> Vec<(String, String)> + Send + Sync>;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug, Clone)]
struct KvEntry {
    value: Option<Vec<u8>>,
    flags: u64,
    /// The session holding the key's lock.
    session: Option<String>,
    lock_index: u64,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Clone)]
struct Check {
    status: CheckStatus,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Clone)]
struct Service {
    instance: ServiceInstance,
    check: Check,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug, Clone)]
struct Node {
    address: String,
    serf: Check,
    create_index: u64,
    modify_index: u64,
}

struct State {
    /// The Raft-like index: raised by every write.
    index: u64,
    /// The KV table's index (last put or delete).
    kv_index: u64,
    kv: BTreeMap<String, KvEntry>,
    /// Deleted keys and the index of their deletion.
    tombstones: BTreeMap<String, u64>,
    /// Service instances by id.
    services: BTreeMap<String, Service>,
    /// Per service name: the index of the last change to its instances or
    /// their checks (kept after the last instance goes).
    service_index: BTreeMap<String, u64>,
    /// The catalog's index (last catalog write).
    catalog_index: u64,
    nodes: BTreeMap<String, Node>,
    sessions: BTreeMap<String, session::Session>,
    /// Raised by a restore: held requests answer at once.
    restores: u64,
    counts: RequestCounts,
    log: Vec<String>,
}

impl State {
    fn new() -> State {
        State {
            index: 1,
            kv_index: 0,
            kv: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            services: BTreeMap::new(),
            service_index: BTreeMap::new(),
            catalog_index: 0,
            nodes: BTreeMap::new(),
            sessions: BTreeMap::new(),
            restores: 0,
            counts: RequestCounts::default(),
            log: Vec::new(),
        }
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    fn put(&mut self, key: &str, value: Option<Vec<u8>>, flags: u64) -> u64 {
        let index = self.bump();
        self.put_at(index, key, value, flags);
        index
    }

    fn put_at(&mut self, index: u64, key: &str, value: Option<Vec<u8>>, flags: u64) {
        let old = self.kv.get(key);
        let create_index = old.map_or(index, |e| e.create_index);
        // A plain write keeps the lock (Consul's rule).
        let session = old.and_then(|e| e.session.clone());
        let lock_index = old.map_or(0, |e| e.lock_index);
        self.kv.insert(
            key.to_string(),
            KvEntry {
                value,
                flags,
                session,
                lock_index,
                create_index,
                modify_index: index,
            },
        );
        self.kv_index = index;
    }

    /// Deletes `key` (every key with that prefix when `recurse`); one index
    /// for the lot, none when nothing matched.
    fn delete(&mut self, key: &str, recurse: bool) -> usize {
        let doomed: Vec<String> = if recurse {
            self.kv
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(k, _)| k.clone())
                .collect()
        } else if self.kv.contains_key(key) {
            vec![key.to_string()]
        } else {
            Vec::new()
        };
        if doomed.is_empty() {
            return 0;
        }
        let index = self.bump();
        for k in &doomed {
            self.kv.remove(k);
            self.tombstones.insert(k.clone(), index);
        }
        self.kv_index = index;
        doomed.len()
    }

    /// The highest index under `prefix`, Consul's rule for a recursive read.
    fn prefix_index(&self, prefix: &str) -> u64 {
        let entries = self
            .kv
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e.modify_index)
            .max()
            .unwrap_or(0);
        let graves = self
            .tombstones
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        match entries.max(graves) {
            0 => self.kv_index,
            i => i,
        }
    }

    fn touch_service(&mut self, name: &str, index: u64) {
        self.service_index.insert(name.to_string(), index);
        self.catalog_index = index;
    }

    fn register(&mut self, mut instance: ServiceInstance) -> u64 {
        if instance.node.is_empty() {
            instance.node = "node1".to_string();
        }
        if instance.node_address.is_empty() {
            instance.node_address = "127.0.0.1".to_string();
        }
        let index = self.bump();
        let node = self.nodes.entry(instance.node.clone()).or_insert(Node {
            address: instance.node_address.clone(),
            serf: Check {
                status: CheckStatus::Passing,
                create_index: index,
                modify_index: index,
            },
            create_index: index,
            modify_index: index,
        });
        if node.address != instance.node_address {
            node.address = instance.node_address.clone();
            node.modify_index = index;
            let touched: Vec<String> = self
                .services
                .values()
                .filter(|s| s.instance.node == instance.node)
                .map(|s| s.instance.name.clone())
                .collect();
            for name in touched {
                self.touch_service(&name, index);
            }
        }
        let (create_index, check) = match self.services.get(&instance.id) {
            Some(old) => {
                let old_name = old.instance.name.clone();
                let out = (old.create_index, old.check.clone());
                self.touch_service(&old_name, index);
                out
            }
            None => (
                index,
                Check {
                    status: CheckStatus::Passing,
                    create_index: index,
                    modify_index: index,
                },
            ),
        };
        self.touch_service(&instance.name, index);
        self.services.insert(
            instance.id.clone(),
            Service {
                instance,
                check,
                create_index,
                modify_index: index,
            },
        );
        index
    }

    fn deregister(&mut self, id: &str) -> bool {
        let Some(old) = self.services.remove(id) else {
            return false;
        };
        let index = self.bump();
        self.touch_service(&old.instance.name, index);
        true
    }

    fn set_check(&mut self, id: &str, status: CheckStatus) -> bool {
        let Some(service) = self.services.get(id) else {
            return false;
        };
        if service.check.status == status {
            return true;
        }
        let name = service.instance.name.clone();
        let index = self.bump();
        if let Some(service) = self.services.get_mut(id) {
            service.check.status = status;
            service.check.modify_index = index;
        }
        self.touch_service(&name, index);
        true
    }

    fn set_node_check(&mut self, node: &str, status: CheckStatus) -> bool {
        let Some(entry) = self.nodes.get(node) else {
            return false;
        };
        if entry.serf.status == status {
            return true;
        }
        let index = self.bump();
        if let Some(entry) = self.nodes.get_mut(node) {
            entry.serf.status = status;
            entry.serf.modify_index = index;
        }
        let touched: Vec<String> = self
            .services
            .values()
            .filter(|s| s.instance.node == node)
            .map(|s| s.instance.name.clone())
            .collect();
        for name in touched {
            self.touch_service(&name, index);
        }
        true
    }

    /// A restore to an older snapshot: every index is capped at `index`.
    fn restore_to(&mut self, index: u64) {
        let cap = |i: &mut u64| *i = (*i).min(index);
        self.index = index;
        cap(&mut self.kv_index);
        cap(&mut self.catalog_index);
        for entry in self.kv.values_mut() {
            cap(&mut entry.create_index);
            cap(&mut entry.modify_index);
        }
        self.tombstones.values_mut().for_each(cap);
        self.service_index.values_mut().for_each(cap);
        for service in self.services.values_mut() {
            cap(&mut service.create_index);
            cap(&mut service.modify_index);
            cap(&mut service.check.create_index);
            cap(&mut service.check.modify_index);
        }
        for node in self.nodes.values_mut() {
            cap(&mut node.create_index);
            cap(&mut node.modify_index);
            cap(&mut node.serf.create_index);
            cap(&mut node.serf.modify_index);
        }
        self.restores += 1;
    }

    fn record(&mut self, request: &Request) {
        self.counts.total += 1;
        if self.log.len() < LOG_LIMIT {
            self.log.push(format!(
                "{} {}",
                request.method,
                mask_token(&request.target)
            ));
        }
    }
}

fn consul_key(key: &str) -> String {
    key.trim_start_matches('/').to_string()
}

/// Consul stores an empty body as no value at all.
fn value_of(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.is_empty() {
        None
    } else {
        Some(bytes.to_vec())
    }
}

fn mask_token(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|p| {
            if p.starts_with("token=") {
                "token=<hidden>".to_string()
            } else {
                p.to_string()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct KvJson<'a> {
    lock_index: u64,
    key: &'a str,
    flags: u64,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    create_index: u64,
    modify_index: u64,
}

impl<'a> KvJson<'a> {
    fn new(key: &'a str, entry: &'a KvEntry) -> KvJson<'a> {
        KvJson {
            lock_index: entry.lock_index,
            key,
            flags: entry.flags,
            value: entry.value.as_ref().map(|v| BASE64.encode(v)),
            session: entry.session.as_deref(),
            create_index: entry.create_index,
            modify_index: entry.modify_index,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HealthJson {
    node: NodeJson,
    service: ServiceJson,
    checks: Vec<CheckJson>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeJson {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    meta: BTreeMap<String, String>,
    create_index: u64,
    modify_index: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceJson {
    #[serde(rename = "ID")]
    id: String,
    service: String,
    tags: Vec<String>,
    address: String,
    meta: BTreeMap<String, String>,
    port: u16,
    weights: WeightsJson,
    enable_tag_override: bool,
    create_index: u64,
    modify_index: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WeightsJson {
    passing: u32,
    warning: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CheckJson {
    node: String,
    #[serde(rename = "CheckID")]
    check_id: String,
    name: String,
    status: &'static str,
    notes: String,
    output: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    #[serde(rename = "Type")]
    kind: String,
    create_index: u64,
    modify_index: u64,
}

/// A UUID-shaped node ID derived from the node name (stable across runs).
fn node_id(name: &str) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in name.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        b = (b ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3 ^ 0x10);
    }
    let hex = format!("{a:016x}{b:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn health_json(state: &State, service: &Service, datacenter: &str) -> Option<HealthJson> {
    let instance = &service.instance;
    let node = state.nodes.get(&instance.node)?;
    let address_map: BTreeMap<String, String> = [
        ("lan".to_string(), node.address.clone()),
        ("wan".to_string(), node.address.clone()),
    ]
    .into_iter()
    .collect();
    let node_meta: BTreeMap<String, String> =
        [("consul-network-segment".to_string(), String::new())]
            .into_iter()
            .collect();
    Some(HealthJson {
        node: NodeJson {
            id: node_id(&instance.node),
            node: instance.node.clone(),
            address: node.address.clone(),
            datacenter: datacenter.to_string(),
            tagged_addresses: address_map,
            meta: node_meta,
            create_index: node.create_index,
            modify_index: node.modify_index,
        },
        service: ServiceJson {
            id: instance.id.clone(),
            service: instance.name.clone(),
            tags: instance.tags.clone(),
            address: instance.address.clone(),
            meta: instance.meta.clone(),
            port: instance.port,
            weights: WeightsJson {
                passing: 1,
                warning: 1,
            },
            enable_tag_override: false,
            create_index: service.create_index,
            modify_index: service.modify_index,
        },
        checks: vec![
            CheckJson {
                node: instance.node.clone(),
                check_id: format!("service:{}", instance.id),
                name: format!("Service '{}' check", instance.name),
                status: service.check.status.as_str(),
                notes: String::new(),
                output: String::new(),
                service_id: instance.id.clone(),
                service_name: instance.name.clone(),
                service_tags: instance.tags.clone(),
                kind: "ttl".to_string(),
                create_index: service.check.create_index,
                modify_index: service.check.modify_index,
            },
            CheckJson {
                node: instance.node.clone(),
                check_id: "serfHealth".to_string(),
                name: "Serf Health Status".to_string(),
                status: node.serf.status.as_str(),
                notes: String::new(),
                output: "Agent alive and reachable".to_string(),
                service_id: String::new(),
                service_name: String::new(),
                service_tags: Vec::new(),
                kind: String::new(),
                create_index: node.serf.create_index,
                modify_index: node.serf.modify_index,
            },
        ],
    })
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

struct Request {
    method: String,
    /// The request target as sent (path and query).
    target: String,
    /// The percent-decoded path.
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Present at all (`?recurse`, `?recurse=`, `?recurse=true`): Consul's
    /// KV endpoint looks only at presence.
    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(n, _)| n == name)
    }

    fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The ACL token, in Consul's order: `?token=`, `X-Consul-Token`,
    /// `Authorization: Bearer`.
    fn token(&self) -> Option<String> {
        if let Some(t) = self.param("token").filter(|t| !t.is_empty()) {
            return Some(t.to_string());
        }
        if let Some(t) = self.header("X-Consul-Token").map(str::trim)
            && !t.is_empty()
        {
            return Some(t.to_string());
        }
        let auth = self.header("Authorization")?.trim();
        let (scheme, token) = auth.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
    }
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            body: body.as_bytes().to_vec(),
            close: false,
        }
    }

    fn json(status: u16, body: String) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".to_string())],
            body: body.into_bytes(),
            close: false,
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// Adds the query meta headers of a read.
    fn with_meta(mut self, index: u64) -> Response {
        self.headers.push(("X-Consul-Index", index.to_string()));
        self.headers
            .push(("X-Consul-Effective-Consistency", "leader".to_string()));
        self.headers
            .push(("X-Consul-Knownleader", "true".to_string()));
        self.headers.push(("X-Consul-Lastcontact", "0".to_string()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let mut connections = shared.lock_connections();
        connections.threads.retain(|h| !h.is_finished());
        let id = connections.next_id;
        connections.next_id += 1;
        connections.open.insert(id, clone);
        let serving = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("consul-conn-{id}"))
            .spawn(move || {
                serve_connection(stream, &serving);
                serving.lock_connections().open.remove(&id);
            });
        match spawned {
            Ok(handle) => connections.threads.push(handle),
            Err(_) => {
                connections.open.remove(&id);
            }
        }
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_POLL));
    let mut buffer: Vec<u8> = Vec::new();
    while !shared.stopping() {
        let request = match read_request(&mut stream, &mut buffer, shared) {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(response) => {
                let _ = write_response(&mut stream, &response, true);
                return;
            }
        };
        let Some(mut response) = handle(shared, &request, &stream) else {
            return;
        };
        response.close |= request.close;
        if write_response(&mut stream, &response, response.close).is_err() || response.close {
            return;
        }
    }
}

/// Reads one request; `Ok(None)` when the client closed or the server is
/// stopping, `Err` with the answer to give before closing on a bad request.
fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    shared: &Shared,
) -> Result<Option<Request>, Response> {
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > MAX_HEAD {
            return Err(Response::text(431, "request head too large"));
        }
        match fill(stream, buffer, shared) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(()) => return Ok(None),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::text(400, "malformed request line"));
    };
    let mut headers = Vec::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if header("Transfer-Encoding").is_some_and(|v| v.contains("chunked")) {
        return Err(Response::text(
            501,
            "chunked request bodies are not supported by the test server",
        ));
    }
    let length: usize = match header("Content-Length") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| Response::text(400, "bad Content-Length"))?,
        None => 0,
    };
    if length > MAX_VALUE_SIZE {
        // Read and drop the body first (up to a bound), so the client, still
        // sending it, is not reset before it reads the 413.
        if length <= 16 * MAX_VALUE_SIZE {
            while buffer.len() < length {
                match fill(stream, buffer, shared) {
                    Ok(true) => {}
                    _ => break,
                }
            }
            let drained = length.min(buffer.len());
            buffer.drain(..drained);
        }
        return Err(Response::text(
            413,
            &format!("Request body({length} bytes) too large, max size: {MAX_VALUE_SIZE} bytes."),
        ));
    }
    let connection = header("Connection").unwrap_or_default();
    let close = if version.eq_ignore_ascii_case("HTTP/1.0") {
        !connection.contains("keep-alive")
    } else {
        connection.contains("close")
    };
    if length > 0 && header("Expect").is_some_and(|v| v == "100-continue") && buffer.is_empty() {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    while buffer.len() < length {
        match fill(stream, buffer, shared) {
            Ok(true) => {}
            _ => return Ok(None),
        }
    }
    let body: Vec<u8> = buffer.drain(..length).collect();
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let query = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (decode(name, true), decode(value, true))
        })
        .collect();
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        path: decode(raw_path, false),
        query,
        headers,
        body,
        close,
    }))
}

/// Reads more bytes; false at end of stream, Err on an error or a stop.
fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>, shared: &Shared) -> Result<bool, ()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if shared.stopping() {
            return Err(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-decoding (and `+` as space in a query, as Go's ParseQuery does).
fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_response(stream: &mut TcpStream, response: &Response, close: bool) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason(response.status)
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&response.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

// ---------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------

enum Endpoint<'a> {
    Kv(&'a str),
    Health(&'a str),
    Session(&'a str),
}

/// Answers one request; `None` when the server stopped while it was held.
fn handle(shared: &Shared, request: &Request, stream: &TcpStream) -> Option<Response> {
    let endpoint = if let Some(key) = request.path.strip_prefix("/v1/kv/") {
        Some(Endpoint::Kv(key))
    } else if let Some(rest) = request.path.strip_prefix("/v1/session/") {
        Some(Endpoint::Session(rest))
    } else {
        request
            .path
            .strip_prefix("/v1/health/service/")
            .map(Endpoint::Health)
    };
    let hook = shared
        .hook
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if let Some(hook) = hook {
        let writes = hook(&format!(
            "{} {}",
            request.method,
            mask_token(&request.target)
        ));
        if !writes.is_empty() {
            let mut state = shared.lock();
            for (key, value) in writes {
                state.put(&consul_key(&key), value_of(value.as_bytes()), 0);
            }
            drop(state);
            shared.changed.notify_all();
        }
    }
    let mut response = match endpoint {
        None => {
            let mut state = shared.lock();
            state.record(request);
            state.counts.other += 1;
            Some(Response::text(404, "404 page not found\n"))
        }
        Some(endpoint) => {
            shared.lock().record(request);
            serve(shared, request, endpoint, stream)
        }
    }?;
    let policy = if shared.options.token.is_some() {
        "deny"
    } else {
        "allow"
    };
    response
        .headers
        .push(("X-Consul-Default-Acl-Policy", policy.to_string()));
    Some(response)
}

fn count(shared: &Shared, bump: impl FnOnce(&mut RequestCounts)) {
    bump(&mut shared.lock().counts);
}

fn serve(
    shared: &Shared,
    request: &Request,
    endpoint: Endpoint<'_>,
    stream: &TcpStream,
) -> Option<Response> {
    let allowed: &[&str] = match endpoint {
        Endpoint::Kv(_) => &["GET", "PUT", "DELETE"],
        Endpoint::Health(_) => &["GET"],
        Endpoint::Session(_) => &["GET", "PUT"],
    };
    if !allowed.contains(&request.method.as_str()) {
        count(shared, |c| c.other += 1);
        let mut response = Response::text(405, &format!("method {} not allowed", request.method));
        response.headers.push(("Allow", allowed.join(",")));
        return Some(response);
    }
    // Query options, as Consul parses them before anything else.
    let blocking = if request.method == "GET" {
        match blocking_options(request) {
            Ok(b) => b,
            Err(response) => {
                count(shared, |c| c.other += 1);
                return Some(response);
            }
        }
    } else {
        None
    };
    if let Some(dc) = request.param("dc").filter(|d| !d.is_empty())
        && dc != shared.options.datacenter
    {
        count(shared, |c| c.other += 1);
        return Some(Response::text(500, "No path to datacenter"));
    }
    if let Some(required) = &shared.options.token {
        let denied = match request.token() {
            Some(token) if &token == required => None,
            Some(_) => Some("ACL not found".to_string()),
            None => Some(permission_denied(request, &endpoint)),
        };
        if let Some(message) = denied {
            count(shared, |c| c.denied += 1);
            return Some(Response::text(403, &message));
        }
    }
    match endpoint {
        Endpoint::Kv(key) => match request.method.as_str() {
            "GET" => {
                count(shared, |c| {
                    if blocking.is_some() {
                        c.kv_blocking += 1
                    } else {
                        c.kv_reads += 1
                    }
                });
                kv_get(shared, request, key, blocking, stream)
            }
            _ => {
                count(shared, |c| c.kv_writes += 1);
                Some(kv_write(shared, request, key))
            }
        },
        Endpoint::Session(rest) => {
            count(shared, |c| c.other += 1);
            Some(session::serve(shared, request, rest))
        }
        Endpoint::Health(name) => {
            count(shared, |c| c.health += 1);
            health_service(shared, request, name, blocking, stream)
        }
    }
}

/// Consul's message for the anonymous token lacking a permission.
fn permission_denied(request: &Request, endpoint: &Endpoint<'_>) -> String {
    let (permission, resource) = match endpoint {
        Endpoint::Kv(key) if request.method == "GET" => ("key:read", *key),
        Endpoint::Kv(key) => ("key:write", *key),
        Endpoint::Health(name) => ("service:read", *name),
        Endpoint::Session(rest) => ("session:write", *rest),
    };
    format!(
        "Permission denied: token with AccessorID '{ANONYMOUS_ACCESSOR}' lacks permission '{permission}' on \"{resource}\""
    )
}

/// A blocking query: wait for an index above `min_index`, for at most
/// `timeout` (jitter included).
#[derive(Debug, Clone, Copy)]
struct Blocking {
    min_index: u64,
    timeout: Duration,
}

fn blocking_options(request: &Request) -> Result<Option<Blocking>, Response> {
    let wait = match request.param("wait").filter(|w| !w.is_empty()) {
        Some(w) => {
            Some(parse_go_duration(w).ok_or_else(|| Response::text(400, "Invalid wait time"))?)
        }
        None => None,
    };
    let min_index = match request.param("index").filter(|i| !i.is_empty()) {
        Some(i) => i
            .parse::<u64>()
            .map_err(|_| Response::text(400, "Invalid index"))?,
        None => 0,
    };
    if min_index == 0 {
        return Ok(None);
    }
    let wait = effective_wait(wait);
    Ok(Some(Blocking {
        min_index,
        timeout: wait + jitter(wait / JITTER_FRACTION),
    }))
}

/// A random duration in [0, max).
fn jitter(max: Duration) -> Duration {
    let nanos = max.as_nanos() as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(RandomState::new().hash_one(Instant::now()) % nanos)
}

/// Whether the client of a held request has hung up.
fn peer_closed(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut probe = [0u8; 1];
    let closed = match stream.peek(&mut probe) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    let _ = stream.set_nonblocking(false);
    closed
}

/// Runs `query` against the state, holding the request while its index is
/// not above the asked one (Consul's blocking query). `None` when the
/// server stopped or the client left.
fn run_query<T>(
    shared: &Shared,
    blocking: Option<Blocking>,
    stream: &TcpStream,
    query: impl Fn(&State) -> (u64, T),
) -> Option<(u64, T)> {
    let mut state = shared.lock();
    let Some(blocking) = blocking else {
        let (index, result) = query(&state);
        return Some((index.max(1), result));
    };
    let deadline = Instant::now() + blocking.timeout;
    let restores = state.restores;
    shared.held.fetch_add(1, Ordering::SeqCst);
    let answer = loop {
        if shared.stopping() {
            break None;
        }
        let (index, result) = query(&state);
        let index = index.max(1);
        let now = Instant::now();
        if index > blocking.min_index || state.restores != restores || now >= deadline {
            break Some((index, result));
        }
        let pause = (deadline - now).min(HELD_POLL);
        state = shared
            .changed
            .wait_timeout(state, pause)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if Instant::now() < deadline && peer_closed(stream) {
            break None;
        }
    };
    shared.held.fetch_sub(1, Ordering::SeqCst);
    answer
}

enum KvResult {
    One(Option<(String, KvEntry)>),
    List(Vec<(String, KvEntry)>),
    Keys(Vec<String>),
}

fn kv_get(
    shared: &Shared,
    request: &Request,
    key: &str,
    blocking: Option<Blocking>,
    stream: &TcpStream,
) -> Option<Response> {
    let keys = request.has("keys");
    let recurse = request.has("recurse");
    let separator = request.param("separator").unwrap_or_default().to_string();
    let (index, result) = run_query(shared, blocking, stream, |state| {
        if keys {
            (
                state.prefix_index(key),
                KvResult::Keys(list_keys(state, key, &separator)),
            )
        } else if recurse {
            let list: Vec<(String, KvEntry)> = state
                .kv
                .range(key.to_string()..)
                .take_while(|(k, _)| k.starts_with(key))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect();
            (state.prefix_index(key), KvResult::List(list))
        } else {
            match state.kv.get(key) {
                Some(e) => (
                    e.modify_index,
                    KvResult::One(Some((key.to_string(), e.clone()))),
                ),
                None => (state.kv_index, KvResult::One(None)),
            }
        }
    })?;
    let response = match result {
        KvResult::Keys(names) if names.is_empty() && !key.is_empty() => Response::empty(404),
        KvResult::Keys(names) => Response::json(200, to_json(request, &names)),
        KvResult::List(list) if list.is_empty() => Response::empty(404),
        KvResult::List(list) => {
            let items: Vec<KvJson<'_>> = list.iter().map(|(k, e)| KvJson::new(k, e)).collect();
            Response::json(200, to_json(request, &items))
        }
        KvResult::One(None) => Response::empty(404),
        KvResult::One(Some((_, e))) if request.has("raw") => Response {
            status: 200,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".to_string())],
            body: e.value.unwrap_or_default(),
            close: false,
        },
        KvResult::One(Some((k, e))) => {
            Response::json(200, to_json(request, &[KvJson::new(&k, &e)]))
        }
    };
    Some(response.with_meta(index))
}

/// `?keys` with an optional separator: names under `prefix`, each cut just
/// after the first separator that follows the prefix, without repeats.
fn list_keys(state: &State, prefix: &str, separator: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (key, _) in state
        .kv
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
    {
        let name = if separator.is_empty() {
            key.clone()
        } else {
            match key[prefix.len()..].find(separator) {
                Some(at) => key[..prefix.len() + at + separator.len()].to_string(),
                None => key.clone(),
            }
        };
        if out.last() != Some(&name) {
            out.push(name);
        }
    }
    out
}

/// Minimised JSON, or indented with four spaces under `?pretty`.
fn to_json<T: Serialize + ?Sized>(request: &Request, value: &T) -> String {
    if request.has("pretty") {
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        if value.serialize(&mut serializer).is_err() {
            return "null".to_string();
        }
        out.push(b'\n');
        String::from_utf8_lossy(&out).into_owned()
    } else {
        serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
    }
}

fn kv_write(shared: &Shared, request: &Request, key: &str) -> Response {
    let recurse = request.has("recurse");
    if key.is_empty() && !(request.method == "DELETE" && recurse) {
        return Response::text(400, "Missing key name");
    }
    if request.method == "PUT" && (request.has("acquire") || request.has("release")) {
        return session::kv_lock(shared, request, key);
    }
    let cas = match request.param("cas") {
        Some(c) => match c.parse::<u64>() {
            Ok(c) => Some(c),
            Err(_) => return Response::text(400, "Invalid cas index"),
        },
        None => None,
    };
    let mut state = shared.lock();
    let done = if request.method == "PUT" {
        let flags = match request.param("flags") {
            Some(f) => match f.parse::<u64>() {
                Ok(f) => f,
                Err(_) => return Response::text(400, "Invalid flags"),
            },
            None => 0,
        };
        let current = state.kv.get(key).map(|e| e.modify_index);
        let allowed = match cas {
            None => true,
            Some(0) => current.is_none(),
            Some(c) => current == Some(c),
        };
        if allowed {
            state.put(key, value_of(&request.body), flags);
        }
        allowed
    } else {
        match cas {
            Some(0) => false,
            Some(c) if !recurse => {
                let current = state.kv.get(key).map(|e| e.modify_index);
                if current == Some(c) {
                    state.delete(key, false);
                    true
                } else {
                    false
                }
            }
            _ => {
                state.delete(key, recurse);
                true
            }
        }
    };
    drop(state);
    shared.changed.notify_all();
    Response::json(200, if done { "true" } else { "false" }.to_string())
}

fn health_service(
    shared: &Shared,
    request: &Request,
    name: &str,
    blocking: Option<Blocking>,
    stream: &TcpStream,
) -> Option<Response> {
    let passing = match request.param("passing") {
        None => false,
        Some("") | Some("true") | Some("1") | Some("True") | Some("TRUE") | Some("t") => true,
        Some("false") | Some("0") | Some("False") | Some("FALSE") | Some("f") => false,
        Some(_) => return Some(Response::text(400, "Invalid value for ?passing")),
    };
    let tags: Vec<String> = request
        .params("tag")
        .into_iter()
        .map(str::to_lowercase)
        .collect();
    let datacenter = shared.options.datacenter.clone();
    let (index, entries) = run_query(shared, blocking, stream, |state| {
        let index = state
            .service_index
            .get(name)
            .copied()
            .unwrap_or(state.catalog_index);
        let mut instances: Vec<&Service> = state
            .services
            .values()
            .filter(|s| s.instance.name == name)
            .collect();
        instances.sort_by(|a, b| {
            (&a.instance.node, &a.instance.id).cmp(&(&b.instance.node, &b.instance.id))
        });
        let entries: Vec<HealthJson> = instances
            .into_iter()
            .filter(|s| {
                let own: BTreeSet<String> =
                    s.instance.tags.iter().map(|t| t.to_lowercase()).collect();
                tags.iter().all(|t| own.contains(t))
            })
            .filter_map(|s| health_json(state, s, &datacenter))
            .filter(|h| !passing || h.checks.iter().all(|c| c.status == "passing"))
            .collect();
        (index, entries)
    })?;
    Some(Response::json(200, to_json(request, &entries)).with_meta(index))
}

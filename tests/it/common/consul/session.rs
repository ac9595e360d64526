//! Sessions and locks of the test Consul, as Consul's API documentation
//! describes them (api-docs/session, api-docs/kv `?acquire`/`?release`):
//!
//! * `PUT /v1/session/create` with a JSON body (`Name`, `TTL`, `Behavior`
//!   `release` (default) or `delete`, `LockDelay`) answers `{"ID": "…"}`. A
//!   `TTL` must be between 10s and 24h (Consul's bounds), else 400.
//! * `PUT /v1/session/renew/<id>` answers a JSON array holding the session,
//!   or 404 `Session id '<id>' not found` once it is gone.
//! * `PUT /v1/session/destroy/<id>` answers `true` (also for an unknown id).
//! * `GET /v1/session/info/<id>` answers `[session]`, or `[]` when gone.
//! * `PUT /v1/kv/<key>?acquire=<id>` writes the value and takes the lock
//!   (`true`), unless another session holds it (`false`); an unknown session
//!   is 500 `invalid session "<id>"`. `?release=<id>` writes the value and
//!   lets the lock go (`false` if `<id>` does not hold it). Taking a lock
//!   raises the entry's `LockIndex`; a held entry shows `Session`.
//! * A session not renewed within its TTL is invalidated, as is a destroyed
//!   one: with `Behavior=delete` the keys it holds are deleted, with
//!   `release` they stay, unlocked. Consul documents the TTL as a lower
//!   bound (it may wait up to twice as long); this server invalidates at the
//!   TTL, checked every [`REAP_EVERY`], so tests of expiry stay short.
//!   `LockDelay` is accepted and not enforced (announce asks for 0s).

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{KvEntry, Request, Response, Shared, State, value_of};

/// How often expired sessions are looked for.
pub const REAP_EVERY: Duration = Duration::from_millis(50);
/// Consul's bounds for a session TTL.
const MIN_TTL: Duration = Duration::from_secs(10);
const MAX_TTL: Duration = Duration::from_secs(86_400);

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    name: String,
    ttl: Option<Duration>,
    delete: bool,
    expires: Option<Instant>,
    create_index: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    #[serde(rename = "TTL")]
    ttl: String,
    behavior: String,
    lock_delay: String,
}

fn session_json(id: &str, s: &Session) -> serde_json::Value {
    serde_json::json!({
        "ID": id,
        "Name": s.name,
        "TTL": s.ttl.map(|t| format!("{}s", t.as_secs())).unwrap_or_default(),
        "Behavior": if s.delete { "delete" } else { "release" },
        "CreateIndex": s.create_index,
        "ModifyIndex": s.create_index,
    })
}

/// A fresh session id in Consul's UUID form.
fn new_id(state: &State) -> String {
    let random = std::collections::hash_map::RandomState::new();
    let a = std::hash::BuildHasher::hash_one(&random, state.index);
    let b = std::hash::BuildHasher::hash_one(&random, a);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// `/v1/session/<rest>`.
pub fn serve(shared: &Shared, request: &Request, rest: &str) -> Response {
    let (verb, id) = rest.split_once('/').unwrap_or((rest, ""));
    let mut state = shared.lock();
    let response = match (request.method.as_str(), verb) {
        ("PUT", "create") => create(&mut state, request),
        ("PUT", "renew") => match state.sessions.get_mut(id) {
            Some(session) => {
                if let Some(ttl) = session.ttl {
                    session.expires = Some(Instant::now() + ttl);
                }
                let body = serde_json::json!([session_json(id, session)]);
                Response::json(200, body.to_string())
            }
            None => Response::text(404, &format!("Session id '{id}' not found")),
        },
        ("PUT", "destroy") => {
            invalidate(&mut state, id);
            Response::json(200, "true".to_string())
        }
        ("GET", "info") => {
            let body = match state.sessions.get(id) {
                Some(s) => serde_json::json!([session_json(id, s)]),
                None => serde_json::json!([]),
            };
            Response::json(200, body.to_string()).with_meta(state.index)
        }
        _ => Response::text(404, "404 page not found\n"),
    };
    drop(state);
    shared.changed.notify_all();
    response
}

fn create(state: &mut State, request: &Request) -> Response {
    let body: CreateBody = if request.body.is_empty() {
        CreateBody::default()
    } else {
        match serde_json::from_slice(&request.body) {
            Ok(b) => b,
            Err(e) => return Response::text(400, &format!("Request decode failed: {e}")),
        }
    };
    let ttl = if body.ttl.is_empty() {
        None
    } else {
        match super::parse_go_duration(&body.ttl) {
            Some(t) if (MIN_TTL..=MAX_TTL).contains(&t) => Some(t),
            Some(_) => {
                return Response::text(
                    400,
                    &format!(
                        "Invalid session: TTL '{}' must be between [10s=24h0m0s]",
                        body.ttl
                    ),
                );
            }
            None => {
                return Response::text(
                    400,
                    &format!("Request decode failed: invalid TTL {:?}", body.ttl),
                );
            }
        }
    };
    if !body.lock_delay.is_empty() && super::parse_go_duration(&body.lock_delay).is_none() {
        return Response::text(400, "Request decode failed: invalid LockDelay");
    }
    let delete = match body.behavior.as_str() {
        "" | "release" => false,
        "delete" => true,
        other => return Response::text(400, &format!("Invalid Behavior setting '{other}'")),
    };
    let create_index = state.bump();
    let id = new_id(state);
    state.sessions.insert(
        id.clone(),
        Session {
            name: body.name,
            ttl,
            delete,
            expires: ttl.map(|t| Instant::now() + t),
            create_index,
        },
    );
    Response::json(200, serde_json::json!({ "ID": id }).to_string())
}

/// Ends session `id`: the keys it holds are deleted or released, by its
/// behavior. Unknown ids are ignored.
pub fn invalidate(state: &mut State, id: &str) {
    let Some(session) = state.sessions.remove(id) else {
        return;
    };
    let held: Vec<String> = state
        .kv
        .iter()
        .filter(|(_, e)| e.session.as_deref() == Some(id))
        .map(|(k, _)| k.clone())
        .collect();
    for key in held {
        if session.delete {
            state.delete(&key, false);
        } else {
            let index = state.bump();
            if let Some(entry) = state.kv.get_mut(&key) {
                entry.session = None;
                entry.modify_index = index;
            }
            state.kv_index = index;
        }
    }
}

/// Invalidates every session whose TTL ran out; true when any did.
pub fn reap(state: &mut State, now: Instant) -> bool {
    let expired: Vec<String> = state
        .sessions
        .iter()
        .filter(|(_, s)| s.expires.is_some_and(|e| e <= now))
        .map(|(id, _)| id.clone())
        .collect();
    for id in &expired {
        invalidate(state, id);
    }
    !expired.is_empty()
}

/// The reaper thread's loop: until the server stops.
pub fn reap_loop(shared: &Shared) {
    while !shared.stopping() {
        std::thread::sleep(REAP_EVERY);
        let reaped = reap(&mut shared.lock(), Instant::now());
        if reaped {
            shared.changed.notify_all();
        }
    }
}

/// `PUT /v1/kv/<key>?acquire=<id>` or `?release=<id>`.
pub fn kv_lock(shared: &Shared, request: &Request, key: &str) -> Response {
    let (acquire, id) = match (request.param("acquire"), request.param("release")) {
        (Some(id), _) => (true, id),
        (None, Some(id)) => (false, id),
        (None, None) => return Response::text(400, "no session"),
    };
    let mut state = shared.lock();
    if !state.sessions.contains_key(id) {
        return Response::text(500, &format!("invalid session {id:?}"));
    }
    let holder = state.kv.get(key).and_then(|e| e.session.clone());
    let done = match (acquire, holder.as_deref()) {
        (true, Some(other)) if other != id => false,
        (true, held) => {
            let newly = held.is_none();
            state.put(key, value_of(&request.body), 0);
            if let Some(entry) = state.kv.get_mut(key) {
                entry.session = Some(id.to_string());
                if newly {
                    entry.lock_index += 1;
                }
            }
            true
        }
        (false, Some(holder)) if holder == id => {
            state.put(key, value_of(&request.body), 0);
            if let Some(entry) = state.kv.get_mut(key) {
                entry.session = None;
            }
            true
        }
        (false, _) => false,
    };
    drop(state);
    shared.changed.notify_all();
    Response::json(200, if done { "true" } else { "false" }.to_string())
}

/// The session holding `entry`'s lock, if any.
pub fn holder(entry: &KvEntry) -> Option<&str> {
    entry.session.as_deref()
}

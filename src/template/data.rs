//! The data helpers (`getv`, `get`, `getvs`, `gets`, `exists`, `ls`, `lsdir`,
//! `getenv`, `service`): template functions that read the snapshot of the
//! resource being rendered and the service catalog.
//!
//! Tera functions are registered once per engine, but each resource renders
//! against its own [`View`]. What the render in progress reads is held in a
//! thread-local for exactly the duration of [`with_context`]: rendering is
//! synchronous, so that is the render's thread, and one compiled template set
//! serves every resource and every pass.
//!
//! The same context carries the render's [`Budget`] when it has limits: every
//! helper (these and the ones in `funcs`) calls [`check_limits`] first, so a
//! loop that calls any helper stops soon after its deadline or cancellation.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use tera::{Error, Kwargs, State, TeraResult, Value};

use super::limits::Budget;
use crate::services::{ServiceData, ServiceQuery};
use crate::snapshot::{Pair, View};

/// What one render reads, and what it asked of the service catalog.
pub(crate) struct RenderContext {
    view: View,
    services: Arc<ServiceData>,
    asked: Vec<ServiceQuery>,
    budget: Option<Rc<Budget>>,
    /// `ls` and `lsdir` answers of this render, by directory as written:
    /// templates list the same directory in several loops (the HAProxy one
    /// lists its top directory twice), and the view cannot change during a
    /// render, so each directory is walked and turned into a list once.
    listed: HashMap<String, [Option<Value>; 2], ahash::RandomState>,
}

/// Which of the two listing helpers an answer belongs to (its place in
/// [`RenderContext::listed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listing {
    All = 0,
    DirsOnly = 1,
}

impl RenderContext {
    fn check(&self) -> TeraResult<()> {
        match &self.budget {
            Some(budget) => budget
                .check()
                // The text is replaced by the limit's own message once Tera
                // gives the render up: the budget remembers which limit it was.
                .map_err(|limit| Error::message(limit.to_string())),
            None => Ok(()),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<RenderContext>> = const { RefCell::new(None) };
}

/// Runs `render` with `view` and `services` visible to the helpers, and the
/// helpers checking `budget` when there is one; returns its result and the
/// service queries the template made.
pub(crate) fn with_context<T>(
    view: View,
    services: Arc<ServiceData>,
    budget: Option<Rc<Budget>>,
    render: impl FnOnce() -> T,
) -> (T, Vec<ServiceQuery>) {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CURRENT.with(|cell| cell.borrow_mut().take());
        }
    }
    CURRENT.with(|cell| {
        *cell.borrow_mut() = Some(RenderContext {
            view,
            services,
            asked: Vec::new(),
            budget,
            listed: HashMap::default(),
        })
    });
    let clear = Clear;
    let result = render();
    let asked = CURRENT.with(|cell| {
        cell.borrow_mut()
            .as_mut()
            .map(|c| std::mem::take(&mut c.asked))
            .unwrap_or_default()
    });
    drop(clear);
    (result, asked)
}

/// Fails when the render in progress ran out of time or was cancelled; every
/// helper calls it first. Outside a render, or in a render without limits,
/// it always passes.
pub(crate) fn check_limits() -> TeraResult<()> {
    CURRENT.with(|cell| match cell.borrow().as_ref() {
        Some(context) => context.check(),
        None => Ok(()),
    })
}

/// Checks the limits and reads the view of the render in progress, with one
/// access to the thread-local (this runs for every `getv`).
pub(crate) fn read_view<T>(read: impl FnOnce(&View) -> TeraResult<T>) -> TeraResult<T> {
    CURRENT.with(|cell| match cell.borrow().as_ref() {
        Some(context) => {
            context.check()?;
            read(&context.view)
        }
        None => Err(outside_render()),
    })
}

fn outside_render() -> Error {
    Error::message("data helpers can only be used while rendering a resource")
}

/// The names `ls` (every child) or `lsdir` (children with children) give
/// for `key`, computed once per render and directory.
fn listing(which: Listing, key: &str) -> TeraResult<Value> {
    CURRENT.with(|cell| {
        let mut borrowed = cell.borrow_mut();
        let context = borrowed.as_mut().ok_or_else(outside_render)?;
        context.check()?;
        if let Some(found) = context
            .listed
            .get(key)
            .and_then(|answers| answers[which as usize].as_ref())
        {
            return Ok(found.clone());
        }
        let names: Vec<Value> = context
            .view
            .children(key)
            .into_iter()
            .filter(|c| which == Listing::All || c.is_dir)
            .map(|c| Value::from(c.name))
            .collect();
        let names = Value::from(names);
        context.listed.entry(key.to_string()).or_default()[which as usize] = Some(names.clone());
        Ok(names)
    })
}

/// `service(name=S[, tag=T][, passing=true])`: the instances of service S
/// (only those whose checks all pass unless `passing=false`), sorted by node
/// and ID, as `{id, name, node, address, port, tags, meta, status}`. Unknown
/// until fetched: the first render of a template asks, the engine fetches,
/// and the template renders again.
pub(crate) fn service(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    check_limits()?;
    let query = ServiceQuery {
        name: kwargs.must_get::<&str>("name")?.to_string(),
        tag: kwargs.get::<&str>("tag")?.map(str::to_string),
        passing: kwargs.get::<bool>("passing")?.unwrap_or(true),
    };
    if query.name.is_empty() {
        return Err(Error::message("service: name must not be empty"));
    }
    CURRENT.with(|cell| {
        let mut borrowed = cell.borrow_mut();
        let context = borrowed.as_mut().ok_or_else(outside_render)?;
        let instances = context.services.get(&query).cloned().unwrap_or_default();
        if !context.asked.contains(&query) {
            context.asked.push(query);
        }
        Ok(Value::from(
            instances
                .into_iter()
                .map(|i| {
                    let mut map: BTreeMap<&str, Value> = BTreeMap::new();
                    map.insert("id", Value::from(i.id));
                    map.insert("name", Value::from(i.name));
                    map.insert("node", Value::from(i.node));
                    map.insert("address", Value::from(i.address));
                    map.insert("port", Value::from(i.port));
                    map.insert("tags", Value::from(i.tags));
                    map.insert("meta", Value::from(i.meta));
                    map.insert("status", Value::from(i.status));
                    Value::from(map)
                })
                .collect::<Vec<_>>(),
        ))
    })
}

fn pair_value(pair: Pair) -> Value {
    let mut map = std::collections::BTreeMap::new();
    map.insert("key", Value::from(pair.key));
    map.insert("value", Value::from(pair.value));
    Value::from(map)
}

/// `getv(key=K[, default=D])`: the value of K; an error naming K unless a
/// default is given (an empty default counts).
pub(crate) fn getv(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = kwargs.must_get::<&str>("key")?;
    let default = kwargs.get::<&str>("default")?;
    read_view(|view| match (view.get(key), default) {
        (Some(value), _) => Ok(Value::from(value)),
        (None, Some(default)) => Ok(Value::from(default)),
        (None, None) => Err(Error::message(format!(
            "getv: key {key} not found (give default=\"…\" to allow a missing key)"
        ))),
    })
}

/// `get(key=K)`: `{key, value}` for K; an error when K is missing.
pub(crate) fn get(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = kwargs.must_get::<&str>("key")?;
    read_view(|view| match view.get(key) {
        Some(value) => Ok(pair_value(Pair {
            key: crate::snapshot::clean_key(key),
            value: value.to_string(),
        })),
        None => Err(Error::message(format!("get: key {key} not found"))),
    })
}

/// `gets(key=PATTERN)`: `[{key, value}]` of every key matching the glob, sorted
/// by key (as confd sorts them).
pub(crate) fn gets(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let pattern = kwargs.must_get::<&str>("key")?;
    read_view(|view| {
        Ok(Value::from(
            view.glob(pattern)
                .into_iter()
                .map(pair_value)
                .collect::<Vec<_>>(),
        ))
    })
}

/// `getvs(key=PATTERN)`: the values of every key matching the glob, sorted by
/// value (as confd sorts them).
pub(crate) fn getvs(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let pattern = kwargs.must_get::<&str>("key")?;
    read_view(|view| {
        let mut values: Vec<String> = view.glob(pattern).into_iter().map(|p| p.value).collect();
        values.sort();
        Ok(Value::from(values))
    })
}

/// `exists(key=K)`: true when K holds a value (a bare directory does not).
pub(crate) fn exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    let key = kwargs.must_get::<&str>("key")?;
    read_view(|view| Ok(view.get(key).is_some()))
}

/// `ls(key=K)`: names of K's direct children, leaves and directories.
pub(crate) fn ls(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    listing(Listing::All, kwargs.must_get::<&str>("key")?)
}

/// `lsdir(key=K)`: names of K's direct children that have children.
pub(crate) fn lsdir(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    listing(Listing::DirsOnly, kwargs.must_get::<&str>("key")?)
}

/// `getenv(key=NAME[, default=D])`: an environment variable; D (or "") when it
/// is unset or empty, as confd does.
pub(crate) fn getenv(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    check_limits()?;
    let name = kwargs.must_get::<&str>("key")?;
    let default = kwargs.get::<&str>("default")?.unwrap_or("");
    Ok(match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => default.to_string(),
    })
}

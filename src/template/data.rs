//! The data helpers (`getv`, `get`, `getvs`, `gets`, `exists`, `ls`, `lsdir`,
//! `getenv`): template functions that read the snapshot of the resource being
//! rendered.
//!
//! Tera functions are registered once per engine, but each resource renders
//! against its own [`View`]. The view of the render in progress is held in a
//! thread-local for exactly the duration of [`with_view`]: rendering is
//! synchronous, so that is the render's thread, and one compiled template set
//! serves every resource and every pass.

use std::cell::RefCell;

use tera::{Error, Kwargs, State, TeraResult, Value};

use crate::snapshot::{Pair, View};

thread_local! {
    static CURRENT_VIEW: RefCell<Option<View>> = const { RefCell::new(None) };
}

/// Runs `render` with `view` visible to the data helpers, and clears it after.
pub(crate) fn with_view<T>(view: View, render: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CURRENT_VIEW.with(|cell| cell.borrow_mut().take());
        }
    }
    CURRENT_VIEW.with(|cell| *cell.borrow_mut() = Some(view));
    let _clear = Clear;
    render()
}

fn read_view<T>(read: impl FnOnce(&View) -> TeraResult<T>) -> TeraResult<T> {
    CURRENT_VIEW.with(|cell| match cell.borrow().as_ref() {
        Some(view) => read(view),
        None => Err(Error::message(
            "data helpers can only be used while rendering a resource",
        )),
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
    let key = kwargs.must_get::<&str>("key")?;
    read_view(|view| {
        Ok(Value::from(
            view.children(key)
                .into_iter()
                .map(|c| c.name)
                .collect::<Vec<_>>(),
        ))
    })
}

/// `lsdir(key=K)`: names of K's direct children that have children.
pub(crate) fn lsdir(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = kwargs.must_get::<&str>("key")?;
    read_view(|view| {
        Ok(Value::from(
            view.children(key)
                .into_iter()
                .filter(|c| c.is_dir)
                .map(|c| c.name)
                .collect::<Vec<_>>(),
        ))
    })
}

/// `getenv(key=NAME[, default=D])`: an environment variable; D (or "") when it
/// is unset or empty, as confd does.
pub(crate) fn getenv(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let name = kwargs.must_get::<&str>("key")?;
    let default = kwargs.get::<&str>("default")?.unwrap_or("");
    Ok(match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => default.to_string(),
    })
}

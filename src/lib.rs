//! confd: keeps configuration files in step with data held in a key/value
//! store (etcd, Consul, the environment, YAML/JSON files) and reloads the
//! programs that own them. A drop-in for the Go confd's flags and file layout.
//!
//! The pipeline, one module per stage:
//!
//! - [`cli`] and [`config`]: flags, `CONFD_*` variables and confd.toml → [`config::Settings`];
//! - [`resource`]: `conf.d/*.toml` → [`resource::Resource`]s;
//! - [`setup`]: everything a run needs, built in one place (startup and SIGHUP);
//! - [`backend`]: where data comes from, one file per backend behind one trait;
//! - [`snapshot`]: the sorted key space of a pass and each resource's view of it;
//! - [`template`]: Tera with confd's helpers; [`services`] and [`dns`]: what helpers ask;
//! - [`engine`]: one pass — render (with guards), sync, reload;
//! - [`sync`]: stage, compare, check, swap; [`command`]: check and reload commands;
//! - [`daemon`]: when passes run — the schedule, the kept data, the watch workers, the loop;
//! - [`ops`]: systemd notification, `/metrics`, `/health` and `/ready`;
//! - [`check`]: linting for CI; [`output_format`]: a resource's declared syntax;
//!   [`announce`]: a host keeps its own key alive; [`app`]: the entry point and
//!   exit statuses.

pub mod announce;
pub mod app;
pub mod backend;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod command;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod engine;
pub mod error;
pub mod logging;
pub mod migrate;
pub mod ops;
pub mod output_format;
pub mod resource;
pub mod services;
pub mod setup;
pub mod size;
pub mod snapshot;
pub mod sync;
pub mod template;

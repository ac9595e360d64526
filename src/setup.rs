//! Everything a run needs, built in one place from flags, `CONFD_*` and
//! confd.toml: the settings, the backend, the resources with their compiled
//! templates, the sync switches and the service catalog client. Startup and
//! SIGHUP both call [`build`], so a reload applies every setting a restart
//! would, and an invalid new configuration is refused whole.

use std::sync::Arc;

use crate::backend::{self, Backend, BackendConfig};
use crate::cli::Flags;
use crate::config::{self, Settings};
use crate::engine::Engine;
use crate::error::ConfigError;
use crate::resource;
use crate::services::ServiceClient;
use crate::sync::SyncOptions;

/// A run's configuration, ready to run.
pub struct Setup {
    /// The flags it was built from (a reload reads the files again under
    /// the same flags).
    pub flags: Flags,
    /// The resolved settings.
    pub settings: Settings,
    /// The backend's typed settings.
    pub backend_config: BackendConfig,
    /// The resources, their templates, the backend and the service catalog.
    pub engine: Engine,
}

/// Builds a setup from `flags`. With `previous` (a reload), a backend whose
/// settings did not change is kept, with its connections and watches.
/// Returns every configuration problem found.
pub fn build(flags: &Flags, previous: Option<&Setup>) -> Result<Setup, Vec<ConfigError>> {
    let settings = config::resolve(flags.clone()).map_err(|e| vec![e])?;
    let (resources, errors) = resource::load_all(&settings.confdir, &settings.prefix);
    if !errors.is_empty() {
        return Err(errors);
    }
    let backend_config = settings.backend_config().map_err(|e| vec![e])?;
    let backend: Arc<dyn Backend> = match previous {
        Some(p) if p.backend_config == backend_config => p.engine.backend().clone(),
        _ => backend::build(&backend_config).map_err(|e| vec![e])?,
    };
    let services = ServiceClient::new(&settings.services_config()).map_err(|e| vec![e])?;
    let options = SyncOptions {
        noop: settings.noop,
        sync_only: settings.sync_only,
        keep_stage_file: settings.keep_stage_file,
    };
    if resources.is_empty() {
        tracing::warn!(confdir = %settings.confdir.display(), "no template resources found in conf.d");
    }
    let engine = Engine::new(resources, backend, options, Some(services));
    Ok(Setup {
        flags: flags.clone(),
        settings,
        backend_config,
        engine,
    })
}

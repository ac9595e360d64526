//! Log output: one line per event on stderr, as text or JSON, with fields
//! (`resource=…, dest=…, outcome=…`) rather than string prefixes.

use std::sync::OnceLock;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::Layered;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry, reload};

use crate::config::{LogFormat, LogLevel};

/// What sits under the output: the registry and the level filter.
type Filtered = Layered<reload::Layer<Targets, Registry>, Registry>;
/// The installed output, replaced as a whole when a SIGHUP changes the
/// format.
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

/// How to change the installed level filter and output.
struct Handles {
    filter: reload::Handle<Targets, Registry>,
    output: reload::Handle<Output, Filtered>,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Installs the global subscriber, or, when it is installed already (a
/// SIGHUP), switches it to this level and format.
pub fn apply(level: LogLevel, format: LogFormat) {
    let (filter, output) = (filter(level), output(format));
    if let Some(handles) = HANDLES.get() {
        if let Err(e) = handles
            .filter
            .reload(filter)
            .and_then(|()| handles.output.reload(output))
        {
            tracing::error!(error = %e, "cannot apply the new log settings");
        }
        return;
    }
    let (filter, filter_handle) = reload::Layer::new(filter);
    let (output, output_handle) = reload::Layer::new(output);
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = HANDLES.set(Handles {
            filter: filter_handle,
            output: output_handle,
        });
    }
}

/// Our own events at the chosen level; the libraries underneath (HTTP, TLS)
/// only when they warn, so debug output stays about confd's work.
fn filter(level: LogLevel) -> Targets {
    let max = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warning => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    Targets::new()
        .with_target("confd", max)
        .with_default(LevelFilter::WARN.min(LevelFilter::from_level(max)))
}

fn output(format: LogFormat) -> Output {
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Text => Box::new(layer),
        LogFormat::Json => Box::new(layer.json().flatten_event(true)),
    }
}

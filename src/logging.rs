//! Log output: one line per event on stderr, as text or JSON, with fields
//! (`resource=…, dest=…, outcome=…`) rather than string prefixes.

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogLevel};

/// Installs the global subscriber. Calling it twice is harmless (the second
/// call is ignored), which keeps tests that run the app in-process simple.
pub fn init(level: LogLevel, format: LogFormat) {
    let max = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warning => tracing::Level::WARN,
        LogLevel::Error => tracing::Level::ERROR,
    };
    // Our own events at the chosen level; the libraries underneath (HTTP,
    // TLS) only when they warn, so debug output stays about confd's work.
    let filter = Targets::new()
        .with_target("confd", max)
        .with_default(LevelFilter::WARN.min(LevelFilter::from_level(max)));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_filter(filter))
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_filter(filter))
            .try_init(),
    };
}

//! Log output: one line per event on stderr, as text or JSON, with fields
//! (`resource=…, dest=…, outcome=…`) rather than string prefixes.

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
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(max)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

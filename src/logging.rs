//! Log output: one line per event on stderr, as text or JSON, with fields
//! (`resource=…, dest=…, outcome=…`) rather than string prefixes.
//!
//! Logged text often comes from elsewhere: a server's error message, a
//! command's output, a key name. A newline in it would start a line of its
//! own that log readers take for a real event, and a terminal escape would
//! act on the terminal. The text format therefore escapes every control
//! character of an event, in the message and in the field values alike
//! (`\n`, `\r`, `\t`, `\u{1b}`), leaving only the newline that ends the
//! event; JSON strings are escaped by the JSON encoder already.

use std::io::Write;
use std::sync::OnceLock;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
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
    let (filter, output) = (filter(level), output(format, std::io::stderr));
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

/// The formatting layer writing to `sink`.
fn output<S, W>(format: LogFormat, sink: W) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Text => layer.with_writer(Escaping(sink)).boxed(),
        LogFormat::Json => layer.with_writer(sink).json().flatten_event(true).boxed(),
    }
}

/// Hands each formatted event to the inner writer in one piece, its control
/// characters escaped.
struct Escaping<W>(W);

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Escaping<W> {
    type Writer = EscapedEvent<W::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        EscapedEvent {
            event: Vec::new(),
            sink: self.0.make_writer(),
        }
    }
}

/// One event: collected whole (the formatter may write it in pieces), then
/// escaped and written when the formatter is done with it.
struct EscapedEvent<W: Write> {
    event: Vec<u8>,
    sink: W,
}

impl<W: Write> Write for EscapedEvent<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.event.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // The event is written whole, on drop.
        Ok(())
    }
}

impl<W: Write> Drop for EscapedEvent<W> {
    fn drop(&mut self) {
        let line = escape_event(&self.event);
        // Nowhere to report a failure to write a log line; the formatter
        // ignores them too.
        let _ = self.sink.write_all(line.as_bytes());
        let _ = self.sink.flush();
    }
}

/// An event's text with every control character escaped, except the one
/// newline that ends it.
fn escape_event(event: &[u8]) -> String {
    let text = String::from_utf8_lossy(event);
    let (body, ending) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (&*text, ""),
    };
    let mut line = String::with_capacity(text.len() + 1);
    for c in body.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => line.extend(c.escape_unicode()),
            c => line.push(c),
        }
    }
    line.push_str(ending);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn control_characters_are_escaped_but_the_final_newline() {
        assert_eq!(escape_event(b"plain text\n"), "plain text\n");
        assert_eq!(
            escape_event(b"a\nb\r\tc\x1b[31md\x7f\n"),
            "a\\nb\\r\\tc\\u{1b}[31md\\u{7f}\n"
        );
        assert_eq!(escape_event("C1 \u{9b}2J\n".as_bytes()), "C1 \\u{9b}2J\n");
        assert_eq!(escape_event(b"two\n\n"), "two\\n\n");
        assert_eq!(escape_event("héllo, 日本\n".as_bytes()), "héllo, 日本\n");
        assert_eq!(escape_event(b"no newline"), "no newline");
    }

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            match self.0.lock() {
                Ok(mut out) => out.extend_from_slice(bytes),
                Err(poisoned) => poisoned.into_inner().extend_from_slice(bytes),
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        fn text(&self) -> String {
            let out = match self.0.lock() {
                Ok(out) => out.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            String::from_utf8(out).expect("UTF-8 log")
        }
    }

    fn log_forgery_attempt(format: LogFormat) -> String {
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::registry()
            .with(filter(LogLevel::Info))
            .with(output(format, move || sink.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let output = "ok\n2024-01-01T00:00:00Z ERROR forged=1\x1b[2J";
            tracing::info!(output = %output, debug = ?"x\ny", "message\nINFO forged message");
        });
        capture.text()
    }

    #[test]
    fn text_events_stay_on_one_line() {
        let text = log_forgery_attempt(LogFormat::Text);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.ends_with('\n'));
        assert!(text.contains("message\\nINFO forged message"), "{text}");
        assert!(
            text.contains("output=ok\\n2024-01-01T00:00:00Z ERROR forged=1\\u{1b}[2J"),
            "{text}"
        );
        // Debug-formatted values were escaped by Debug already.
        assert!(text.contains("debug=\"x\\ny\""), "{text}");
    }

    #[test]
    fn json_events_stay_on_one_line() {
        let text = log_forgery_attempt(LogFormat::Json);
        assert_eq!(text.lines().count(), 1, "{text}");
        let event: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(event["message"], "message\nINFO forged message");
        assert_eq!(
            event["output"],
            "ok\n2024-01-01T00:00:00Z ERROR forged=1\u{1b}[2J"
        );
    }
}

//! A resource's declared output format (`format = "json" | "yaml" | "toml"`):
//! the rendered text is parsed before `check_cmd` runs, by `confd check` and
//! at every sync, so that a template producing broken JSON, YAML or TOML is
//! stopped with the line and column of the error in the rendered text, and
//! the destination is never handed a file its program cannot read.
//!
//! Only the syntax is checked (the values are read into nothing): what the
//! owning program makes of the content is `check_cmd`'s job.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The syntax a resource's rendered text must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One JSON value (RFC 8259), as serde_json reads it.
    Json,
    /// One or more YAML documents.
    Yaml,
    /// A TOML document.
    Toml,
}

/// Why the rendered text is not of its declared format; the position is
/// in the rendered text, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the rendered text is not valid {} ({}): {message}", format.label(), position(*at))]
pub struct SyntaxError {
    /// The declared format.
    pub format: OutputFormat,
    /// Line and column in the rendered text, when the parser gave one.
    pub at: Option<(usize, usize)>,
    /// The parser's message, without its own position.
    pub message: String,
}

fn position(at: Option<(usize, usize)>) -> String {
    match at {
        Some((line, col)) => format!("rendered line {line}, column {col}"),
        None => "no position given".to_string(),
    }
}

impl OutputFormat {
    /// The spellings a resource may use: `json`, `yaml` (or `yml`), `toml`.
    pub fn parse(text: &str) -> Option<OutputFormat> {
        match text.trim().to_ascii_lowercase().as_str() {
            "json" => Some(OutputFormat::Json),
            "yaml" | "yml" => Some(OutputFormat::Yaml),
            "toml" => Some(OutputFormat::Toml),
            _ => None,
        }
    }

    /// The format's name in messages.
    pub fn label(self) -> &'static str {
        match self {
            OutputFormat::Json => "JSON",
            OutputFormat::Yaml => "YAML",
            OutputFormat::Toml => "TOML",
        }
    }

    /// Parses `text` as this format and reports the first syntax error.
    pub fn validate(self, text: &str) -> Result<(), SyntaxError> {
        let error = |at: Option<(usize, usize)>, message: String| SyntaxError {
            format: self,
            at,
            // One line: these messages end up in logs and CI annotations.
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        match self {
            OutputFormat::Json => serde_json::from_str::<IgnoredAny>(text)
                .map(drop)
                .map_err(|e| {
                    // serde_json says column 0 for an error at a line's start
                    // (an empty text, for one); editors count from 1.
                    let at = (e.line(), e.column().max(1));
                    let full = e.to_string();
                    let suffix = format!(" at line {} column {}", e.line(), e.column());
                    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
                    error(Some(at), message)
                }),
            OutputFormat::Yaml => {
                // Every document of a multi-document stream (`---`).
                for document in serde_yaml_ng::Deserializer::from_str(text) {
                    IgnoredAny::deserialize(document).map_err(|e| {
                        let at = e.location().map(|l| (l.line(), l.column()));
                        let mut message = e.to_string();
                        if let Some((line, col)) = at {
                            message =
                                message.replacen(&format!(" at line {line} column {col}"), "", 1);
                        }
                        error(at, message)
                    })?;
                }
                Ok(())
            }
            OutputFormat::Toml => toml::from_str::<toml::Table>(text).map(drop).map_err(|e| {
                let at = e.span().map(|s| crate::error::line_col(text, s.start));
                error(at, e.message().trim().to_string())
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(format: OutputFormat, text: &str) -> (Option<(usize, usize)>, String) {
        match format.validate(text) {
            Ok(()) => panic!("{text:?} passed as {}", format.label()),
            Err(e) => (e.at, e.to_string()),
        }
    }

    #[test]
    fn spellings() {
        assert_eq!(OutputFormat::parse("json"), Some(OutputFormat::Json));
        assert_eq!(OutputFormat::parse("YAML"), Some(OutputFormat::Yaml));
        assert_eq!(OutputFormat::parse("yml"), Some(OutputFormat::Yaml));
        assert_eq!(OutputFormat::parse("toml"), Some(OutputFormat::Toml));
        assert_eq!(OutputFormat::parse("ini"), None);
    }

    #[test]
    fn good_texts_pass() {
        assert_eq!(OutputFormat::Json.validate("{\"a\": [1, 2]}\n"), Ok(()));
        assert_eq!(OutputFormat::Yaml.validate("a: 1\n---\nb: [1]\n"), Ok(()));
        assert_eq!(OutputFormat::Toml.validate("[s]\na = 1\n"), Ok(()));
    }

    #[test]
    fn json_error_has_rendered_line_and_column() {
        let (position, message) = at(OutputFormat::Json, "{\n  \"a\": 1,\n  \"b\": ,\n}\n");
        assert_eq!(position, Some((3, 8)));
        assert!(
            message.starts_with(
                "the rendered text is not valid JSON (rendered line 3, column 8): expected value"
            ),
            "{message}"
        );
        assert!(!message.contains(" at line "), "{message}");
        // Trailing content is an error too: one value per file.
        assert_eq!(at(OutputFormat::Json, "{}\n{}").0, Some((2, 1)));
        assert_eq!(at(OutputFormat::Json, "").0, Some((1, 1)));
    }

    #[test]
    fn yaml_error_has_rendered_line() {
        let (position, message) = at(OutputFormat::Yaml, "a: 1\nb: [1, 2\nc: 3\n");
        assert!(
            matches!(position, Some((line, _)) if line >= 2),
            "{position:?}"
        );
        assert!(message.contains("not valid YAML"), "{message}");
        // The error's own position is said once (the context's stays).
        assert!(!message.contains("at line 3 column 2"), "{message}");
        assert!(message.contains("(rendered line 3, column 2)"), "{message}");
        // A broken second document is found as well.
        let (position, _) = at(OutputFormat::Yaml, "a: 1\n---\nb: : :\n");
        assert!(matches!(position, Some((3, _))), "{position:?}");
    }

    #[test]
    fn toml_error_has_rendered_line_and_column() {
        let (position, message) = at(OutputFormat::Toml, "[s]\na = 1\nb = \n");
        assert_eq!(position.map(|p| p.0), Some(3), "{message}");
        assert!(
            message.contains("not valid TOML (rendered line 3"),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(
            at(OutputFormat::Toml, "a = 1\na = 2\n").0.map(|p| p.0),
            Some(2)
        );
    }
}

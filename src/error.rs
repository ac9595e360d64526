//! Configuration errors, and the helpers that turn library errors into the
//! one-line, file-naming messages users see (`path:line:col: message`).

use std::path::{Path, PathBuf};

/// A configuration problem (exit status 2: nothing was attempted). It names
/// where the problem is: the flag or setting, or the file with the line and
/// column when known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A flag, its `CONFD_*` variable or its confd.toml setting has a value
    /// that cannot work.
    #[error("{flag}: {message}")]
    Setting {
        /// The flag as users write it (`-interval`).
        flag: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file (confd.toml, a resource, a template folder, a data or PEM
    /// file) is missing or invalid.
    #[error("{}{}: {message}", path.display(), position(*at))]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line and column, when the problem is at one place.
        at: Option<(usize, usize)>,
        /// What is wrong and what to do.
        message: String,
    },
}

fn position(at: Option<(usize, usize)>) -> String {
    at.map(|(line, col)| format!(":{line}:{col}"))
        .unwrap_or_default()
}

impl ConfigError {
    /// A bad flag or setting.
    pub fn setting(flag: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Setting {
            flag: flag.into(),
            message: message.into(),
        }
    }

    /// A problem with a whole file.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError::File {
            path: path.into(),
            at: None,
            message: message.into(),
        }
    }

    /// A problem at a line and column of a file.
    pub fn at(path: impl Into<PathBuf>, at: (usize, usize), message: impl Into<String>) -> Self {
        ConfigError::File {
            path: path.into(),
            at: Some(at),
            message: message.into(),
        }
    }

    /// A TOML parse error, at its position when the parser gives one.
    pub fn toml(path: &Path, source: &str, error: &toml::de::Error) -> Self {
        let message = error
            .message()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        ConfigError::File {
            path: path.to_path_buf(),
            at: error.span().map(|span| line_col(source, span.start)),
            message,
        }
    }
}

/// An I/O error as a short phrase ("permission denied", "no such file or
/// directory"), without Rust's "(os error N)" suffix.
pub fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn io_reason_is_short() {
        let e = std::io::Error::from_raw_os_error(13);
        assert_eq!(io_reason(&e), "permission denied");
    }
}

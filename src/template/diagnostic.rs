//! Template problems as data: each one a file, a 1-based line and column
//! when known, and a one-line message. Logs print them as
//! `file:line:col: message` joined by `; `; `confd check` prints each in the
//! format CI asks for (text, GitHub annotations, JSON lines) from the same
//! fields rather than by reading text back.

/// One problem at one place in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The template's name (its path); empty when the message names it.
    pub file: String,
    /// 1-based line and column, when the problem is at one place.
    pub at: Option<(usize, usize)>,
    /// What is wrong, on one line.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.file.is_empty(), self.at) {
            (true, _) => f.write_str(&self.message),
            (false, None) => write!(f, "{}: {}", self.file, self.message),
            (false, Some((line, col))) => {
                write!(f, "{}:{line}:{col}: {}", self.file, self.message)
            }
        }
    }
}

/// The problems one compile or render found (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// A problem at a position in `file`.
    pub fn at(file: &str, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostics(vec![Diagnostic {
            file: file.to_string(),
            at: Some((line, col)),
            message: message.into(),
        }])
    }

    /// Adds `hint` to the message of the last problem.
    pub fn with_hint(mut self, hint: &str) -> Self {
        if let Some(last) = self.0.last_mut() {
            last.message.push_str(hint);
        }
        self
    }
}

/// A message that already names its template and has no position.
impl From<String> for Diagnostics {
    fn from(message: String) -> Self {
        Diagnostics(vec![Diagnostic {
            file: String::new(),
            at: None,
            message,
        }])
    }
}

impl std::fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

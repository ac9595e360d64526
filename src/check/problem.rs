//! A problem `confd check` found, as data (file, line, column, severity,
//! message, resource), and the three ways of printing it: plain text, GitHub
//! Actions workflow commands (an annotation on the line of the pull
//! request), and JSON lines. All three print the same fields.

use std::path::Path;

use serde::Serialize;

use crate::cli::CheckFormat;
use crate::error::ConfigError;
use crate::template::{Diagnostic, TemplateError};

/// How bad a problem is. Every problem `confd check` reports today fails the
/// check; the field is there so that CI tools need not assume it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the check (exit 1).
    Error,
}

/// One problem, at a place in a file when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file at fault, as found under the confdir (or the fixture file).
    pub file: String,
    /// 1-based line, when the problem is at one place.
    pub line: Option<usize>,
    /// 1-based column, when the problem is at one place.
    pub col: Option<usize>,
    /// Always `error` for now.
    pub severity: Severity,
    /// What is wrong, on one line.
    pub message: String,
    /// The resource (its file under conf.d) whose render found it, if any.
    pub resource: Option<String>,
}

impl Problem {
    /// A problem in `file`, at `at` when known.
    pub fn new(file: impl Into<String>, at: Option<(usize, usize)>, message: String) -> Problem {
        Problem {
            file: file.into(),
            line: at.map(|a| a.0),
            col: at.map(|a| a.1),
            severity: Severity::Error,
            message,
            resource: None,
        }
    }

    /// The same problem, found while rendering `resource`.
    pub fn of(mut self, resource: &str) -> Problem {
        self.resource = Some(resource.to_string());
        self
    }

    /// A resource file's or fixture file's problem.
    pub fn from_config(error: &ConfigError) -> Problem {
        match error {
            ConfigError::File { path, at, message } => {
                Problem::new(path.display().to_string(), *at, message.clone())
            }
            ConfigError::Setting { flag, message } => {
                Problem::new(flag.clone(), None, message.clone())
            }
        }
    }

    /// A template's problems; `template` names the file for the ones whose
    /// message already names it.
    pub fn from_template(error: &TemplateError, template: &Path) -> Vec<Problem> {
        let name = template.display().to_string();
        match error {
            TemplateError::Compile(found) | TemplateError::Render(found) => found
                .0
                .iter()
                .map(|d| Problem::from_diagnostic(d, &name))
                .collect(),
            TemplateError::Read { path, reason } => vec![Problem::new(
                path.display().to_string(),
                None,
                format!("cannot read template: {reason}"),
            )],
            TemplateError::Limit { exceeded, .. } => {
                vec![Problem::new(name, None, exceeded.to_string())]
            }
        }
    }

    /// One template diagnostic; one without a file is `template`'s, and its
    /// message loses the `template: ` it starts with.
    pub fn from_diagnostic(d: &Diagnostic, template: &str) -> Problem {
        if d.file.is_empty() {
            let prefix = format!("{template}: ");
            let message = d.message.strip_prefix(&prefix).unwrap_or(&d.message);
            Problem::new(template, d.at, message.to_string())
        } else {
            Problem::new(d.file.clone(), d.at, d.message.clone())
        }
    }

    /// The problem in the chosen format, as one line without its newline.
    pub fn format(&self, format: CheckFormat) -> String {
        match format {
            CheckFormat::Text => self.text(),
            CheckFormat::Github => self.github(),
            // A struct of strings and numbers always serializes.
            CheckFormat::Json => serde_json::to_string(self).unwrap_or_default(),
        }
    }

    fn message_with_resource(&self) -> String {
        match &self.resource {
            Some(r) => format!("{} (resource {r})", self.message),
            None => self.message.clone(),
        }
    }

    /// `path:line:col: message`, or `path: message` without a position.
    fn text(&self) -> String {
        let at = match (self.line, self.col) {
            (Some(line), Some(col)) => format!(":{line}:{col}"),
            (Some(line), None) => format!(":{line}"),
            _ => String::new(),
        };
        format!("{}{at}: {}", self.file, self.message_with_resource())
    }

    /// `::error file=PATH,line=N,col=M::message`, escaped as GitHub
    /// documents for workflow commands. A leading `./` is dropped: GitHub
    /// matches the path against the repository's files.
    fn github(&self) -> String {
        let file = self.file.trim_start_matches("./");
        let mut properties = format!("file={}", escape_property(file));
        if let Some(line) = self.line {
            properties.push_str(&format!(",line={line}"));
        }
        if let Some(col) = self.col {
            properties.push_str(&format!(",col={col}"));
        }
        format!(
            "::error {properties}::{}",
            escape_data(&self.message_with_resource())
        )
    }
}

/// A workflow command's message: `%`, `\r` and `\n` percent-encoded.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, plus `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Problem {
        Problem::new(
            "./confd/templates/a,b:c%.tmpl",
            Some((3, 7)),
            "getv: 100% wrong\r\nreally: yes, really".to_string(),
        )
        .of("a.toml")
    }

    #[test]
    fn text_line() {
        assert_eq!(
            sample().format(CheckFormat::Text),
            "./confd/templates/a,b:c%.tmpl:3:7: getv: 100% wrong\r\nreally: yes, really (resource a.toml)"
        );
        assert_eq!(
            Problem::new("f.yaml", None, "bad".into()).format(CheckFormat::Text),
            "f.yaml: bad"
        );
    }

    #[test]
    fn github_escapes_data_and_properties() {
        assert_eq!(
            sample().format(CheckFormat::Github),
            "::error file=confd/templates/a%2Cb%3Ac%25.tmpl,line=3,col=7::getv: 100%25 wrong%0D%0Areally: yes, really (resource a.toml)"
        );
        assert_eq!(
            Problem::new("f.yaml", None, "bad".into()).format(CheckFormat::Github),
            "::error file=f.yaml::bad"
        );
    }

    #[test]
    fn json_line_parses_back() {
        let line = sample().format(CheckFormat::Json);
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(value["file"], "./confd/templates/a,b:c%.tmpl");
        assert_eq!(value["line"], 3);
        assert_eq!(value["col"], 7);
        assert_eq!(value["severity"], "error");
        assert_eq!(value["message"], "getv: 100% wrong\r\nreally: yes, really");
        assert_eq!(value["resource"], "a.toml");
        let bare = Problem::new("f.yaml", None, "bad".into()).format(CheckFormat::Json);
        assert_eq!(
            bare,
            r#"{"file":"f.yaml","line":null,"col":null,"severity":"error","message":"bad","resource":null}"#
        );
    }
}

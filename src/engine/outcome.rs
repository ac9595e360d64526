//! What a pass reports: each resource's [`Outcome`], and for a failure the
//! [`Step`] that failed, so callers (the exit status, `-wait-keys`, the
//! daemon's retries, logs) tell a backend outage from a rejected check
//! without reading message text.

use crate::backend::BackendError;
use crate::sync::SyncError;
use crate::template::TemplateError;

/// What happened to one resource in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// dest already matched.
    Unchanged,
    /// dest was replaced (and reloaded, if it has a reload_cmd).
    Updated,
    /// `-noop`: dest would change as this diff shows.
    WouldUpdate(String),
    /// Nothing was written, or the reload failed; the failure says which.
    Failed(Failure),
}

impl Outcome {
    /// The word logs use for this outcome.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Updated => "updated",
            Outcome::WouldUpdate(_) => "would-update",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// The step of a resource's sync that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Reading the backend (or the service catalog).
    Backend,
    /// Compiling or rendering the template (a missing key, a bad helper
    /// argument, a limit reached).
    Render,
    /// `min_keys` or `max_shrink` refused the data.
    Guard,
    /// The rendered text is not of the resource's declared `format`.
    Validate,
    /// `check_cmd` rejected the staged file.
    Check,
    /// Inspecting dest, staging or swapping the file.
    Write,
    /// `reload_cmd` failed after the new file was written.
    Reload,
}

impl Step {
    /// The word logs use for this step.
    pub fn label(self) -> &'static str {
        match self {
            Step::Backend => "backend",
            Step::Render => "render",
            Step::Guard => "guard",
            Step::Validate => "validate",
            Step::Check => "check",
            Step::Write => "write",
            Step::Reload => "reload",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a resource failed in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The step that failed.
    pub step: Step,
    /// One line naming what failed and where.
    pub message: String,
    /// True when waiting may fix it: the backend was unreachable, a key was
    /// missing, or a guard refused too little data (`-wait-keys` retries these).
    pub data_related: bool,
}

impl Failure {
    /// A failed backend read; transient errors are worth waiting for.
    pub fn backend(error: &BackendError) -> Failure {
        Failure {
            step: Step::Backend,
            message: error.to_string(),
            data_related: error.transient,
        }
    }

    /// A render that failed: for want of data (a missing key) as far as
    /// confd can tell, so `-wait-keys` waits for it.
    pub fn render(message: impl Into<String>) -> Failure {
        Failure {
            step: Step::Render,
            message: message.into(),
            data_related: true,
        }
    }

    /// A failed render, classified by its cause: a limit reached or a
    /// template that does not load will not cure itself by waiting.
    pub fn template(error: &TemplateError) -> Failure {
        match error {
            TemplateError::Render(_) => Failure::render(error.to_string()),
            TemplateError::Read { .. }
            | TemplateError::Compile(_)
            | TemplateError::Limit { .. } => Failure::compile(error.to_string()),
        }
    }

    /// A template that does not compile (waiting cannot fix it).
    pub fn compile(message: impl Into<String>) -> Failure {
        Failure {
            step: Step::Render,
            message: message.into(),
            data_related: false,
        }
    }

    /// A guard's refusal.
    pub fn guard(message: impl Into<String>) -> Failure {
        Failure {
            step: Step::Guard,
            message: message.into(),
            data_related: true,
        }
    }

    /// Rendered text that is not of the resource's declared `format`
    /// (the template's fault: waiting for data cannot fix it).
    pub fn validate(message: impl Into<String>) -> Failure {
        Failure {
            step: Step::Validate,
            message: message.into(),
            data_related: false,
        }
    }

    /// A failed sync: the check command, or the file system.
    pub fn sync(error: &SyncError) -> Failure {
        let step = match error {
            SyncError::Check { .. } => Step::Check,
            SyncError::Inspect { .. } | SyncError::Stage { .. } | SyncError::Swap { .. } => {
                Step::Write
            }
        };
        Failure {
            step,
            message: error.to_string(),
            data_related: false,
        }
    }

    /// A failed reload command.
    pub fn reload(message: impl Into<String>) -> Failure {
        Failure {
            step: Step::Reload,
            message: message.into(),
            data_related: false,
        }
    }
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Outcome {
        Outcome::Failed(failure)
    }
}

/// The outcome of every resource of a pass, in resource order.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// `(resource name, outcome)`.
    pub outcomes: Vec<(String, Outcome)>,
    /// The backend's index at the pass's read; `None` when the read failed.
    pub index: Option<u64>,
    /// Why the read failed, when it did.
    pub backend_error: Option<BackendError>,
}

impl PassReport {
    /// True when no resource failed.
    pub fn all_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The failed resources with their failures.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.outcomes.iter().filter_map(|(name, o)| match o {
            Outcome::Failed(f) => Some((name.as_str(), f)),
            _ => None,
        })
    }

    /// The `-noop` diffs of the pass, in resource order.
    pub fn diffs(&self) -> impl Iterator<Item = &str> {
        self.outcomes.iter().filter_map(|(_, o)| match o {
            Outcome::WouldUpdate(diff) => Some(diff.as_str()),
            _ => None,
        })
    }
}

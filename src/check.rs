//! `confd check`: lints a confdir for CI without a live backend and without
//! touching any destination. Parses every resource, compiles every template
//! and, given fixture data (`-file`), renders each resource to memory and
//! applies its min_keys guard. Every problem is one `path:line:col: message`
//! line on stdout; the exit status is 0 when clean, 1 otherwise.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::file::parse_file;
use crate::cli::CheckArgs;
use crate::resource;
use crate::snapshot::{Snapshot, View};
use crate::template::{Template, TemplateCompiler, TemplateError};

/// Runs the checks and returns the exit status.
pub fn run(args: &CheckArgs) -> u8 {
    let problems = problems(args);
    for problem in &problems {
        println!("{problem}");
    }
    u8::from(!problems.is_empty())
}

/// Every problem found, one line each.
pub fn problems(args: &CheckArgs) -> Vec<String> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    // Every resource, even one sharing its dest with another, so that its
    // template is checked too; the shared dest is a problem of its own.
    let (resources, errors) = resource::load_each(&args.confdir, prefix);
    let mut problems: Vec<String> = errors.into_iter().map(|e| e.to_string()).collect();
    problems.extend(
        resource::shared_dests(&resources)
            .into_iter()
            .map(|(_, e)| e.to_string()),
    );

    let fixtures = match load_fixtures(&args.files) {
        Ok(f) => f,
        Err(e) => {
            problems.push(e);
            None
        }
    };

    let compiler = TemplateCompiler::new();
    let mut compiled: HashMap<PathBuf, Result<Template, TemplateError>> = HashMap::new();
    for r in &resources {
        let template = compiled
            .entry(r.src.clone())
            .or_insert_with(|| {
                let result = compiler.load(&r.src);
                if let Err(e) = &result {
                    problems.push(e.to_string());
                }
                result
            })
            .clone();
        let (Some(snapshot), Ok(template)) = (&fixtures, template) else {
            continue;
        };
        let view = View::new(snapshot.clone(), &r.prefix, &r.keys);
        if let Some(min) = r.min_keys {
            let count = view.key_count();
            if count < min {
                let (line, col) = r.min_keys_position.unwrap_or((1, 1));
                problems.push(format!(
                    "{}:{line}:{col}: the fixtures give {count} keys under {}, fewer than min_keys = {min}",
                    r.file.display(),
                    view.roots().join(", ")
                ));
                continue;
            }
        }
        // The resource's own limits: CI must not hang on a runaway template.
        let rendered = template.render_limited(view, Arc::default(), r.render_limits);
        if let Err(e) = rendered.text {
            problems.push(format!("{e} (resource {})", r.name));
        }
    }
    problems
}

fn load_fixtures(files: &[PathBuf]) -> Result<Option<Arc<Snapshot>>, String> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut pairs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{}: {}", file.display(), crate::error::io_reason(&e)))?;
        pairs.extend(parse_file(file, &text).map_err(|e| format!("{}: {e}", file.display()))?);
    }
    Ok(Some(Arc::new(Snapshot::from_pairs(pairs))))
}

//! `confd check`: lints a confdir for CI without a live backend and without
//! touching any destination. Parses every resource, compiles every template
//! and looks for keyword arguments confd's helpers do not take; given
//! fixture data (`-file`), renders each resource to memory, applies its
//! min_keys guard and parses the output of a resource that declares a
//! `format`. Every problem is reported, each as one line in the chosen
//! format ([`CheckFormat`](crate::cli::CheckFormat)); the exit status is 0 when clean, 1 otherwise.

mod problem;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use problem::{Problem, Severity};

use crate::backend::file::parse_file;
use crate::cli::CheckArgs;
use crate::resource::{self, Resource};
use crate::snapshot::{Snapshot, View};
use crate::template::{Template, TemplateCompiler, TemplateError};

/// Runs the checks, prints every problem and returns the exit status.
pub fn run(args: &CheckArgs) -> u8 {
    let problems = problems(args);
    for problem in &problems {
        println!("{}", problem.format(args.format));
    }
    u8::from(!problems.is_empty())
}

/// Every problem found, in the order: resource files, shared dests, fixture
/// files, then per resource its template (once per template) and its render.
pub fn problems(args: &CheckArgs) -> Vec<Problem> {
    let prefix = args.prefix.as_deref().unwrap_or("");
    // Every resource, even one sharing its dest with another, so that its
    // template is checked too; the shared dest is a problem of its own.
    let (resources, errors) = resource::load_each(&args.confdir, prefix);
    let mut problems: Vec<Problem> = errors.iter().map(Problem::from_config).collect();
    problems.extend(
        resource::shared_dests(&resources)
            .iter()
            .map(|(_, e)| Problem::from_config(e)),
    );

    let fixtures = match load_fixtures(&args.files) {
        Ok(f) => f,
        Err(problem) => {
            problems.push(problem);
            None
        }
    };

    let compiler = TemplateCompiler::new();
    let mut compiled: HashMap<PathBuf, Result<Template, TemplateError>> = HashMap::new();
    for r in &resources {
        let template = compiled
            .entry(r.src.clone())
            .or_insert_with(|| {
                let (result, unknown) = compiler.load_linted(&r.src);
                if let Err(e) = &result {
                    problems.extend(Problem::from_template(e, &r.src));
                }
                let name = r.src.display().to_string();
                problems.extend(unknown.iter().map(|d| Problem::from_diagnostic(d, &name)));
                result
            })
            .clone();
        if let (Some(snapshot), Ok(template)) = (&fixtures, template) {
            problems.extend(render_problems(r, &template, snapshot));
        }
    }
    problems
}

/// What rendering `r` against the fixtures finds: too few keys, a render
/// error (a missing key, at its template position), output that is not of
/// the declared format.
fn render_problems(r: &Resource, template: &Template, snapshot: &Arc<Snapshot>) -> Vec<Problem> {
    let view = View::new(snapshot.clone(), &r.prefix, &r.keys);
    if let Some(min) = r.min_keys {
        let count = view.key_count();
        if count < min {
            let message = format!(
                "the fixtures give {count} keys under {}, fewer than min_keys = {min}",
                view.roots().join(", ")
            );
            let at = Some(r.min_keys_position.unwrap_or((1, 1)));
            return vec![Problem::new(r.file.display().to_string(), at, message).of(&r.name)];
        }
    }
    // The resource's own limits: CI must not hang on a runaway template.
    let rendered = template.render_limited(view, Arc::default(), r.render_limits);
    let text = match rendered.text {
        Ok(text) => text,
        Err(e) => {
            return Problem::from_template(&e, &r.src)
                .into_iter()
                .map(|p| p.of(&r.name))
                .collect();
        }
    };
    match r.format.map(|f| f.validate(&text)) {
        // The position is in the rendered text, not in the template: the
        // template file is named, without a line.
        Some(Err(e)) => {
            vec![Problem::new(r.src.display().to_string(), None, e.to_string()).of(&r.name)]
        }
        _ => Vec::new(),
    }
}

fn load_fixtures(files: &[PathBuf]) -> Result<Option<Arc<Snapshot>>, Problem> {
    if files.is_empty() {
        return Ok(None);
    }
    let problem =
        |file: &Path, message: String| Problem::new(file.display().to_string(), None, message);
    let mut pairs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| problem(file, crate::error::io_reason(&e)))?;
        pairs.extend(parse_file(file, &text).map_err(|e| {
            let mut found = problem(file, e);
            let at = first_position(&found.message);
            (found.line, found.col) = (at.map(|a| a.0), at.map(|a| a.1));
            found
        })?);
    }
    Ok(Some(Arc::new(Snapshot::from_pairs(pairs))))
}

/// The first `line N column M` in a parser's message (serde_json's and
/// serde_yaml_ng's spelling), so that a broken fixture file is annotated
/// at its line too.
fn first_position(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find("line ")? + 5..];
    let (line, rest) = rest.split_once(" column ")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((line.parse().ok()?, rest[..digits].parse().ok()?))
}

#[cfg(test)]
mod tests;

//! `confd migrate SRC DEST`: turns a confd confdir whose templates are Go
//! text/template into one whose templates are Tera and render the same bytes.
//! conf.d and every other file are copied unchanged (resources keep
//! `{{.src}}`/`{{.dest}}` in their commands, which this project accepts).
//!
//! The stages: [`detect`] tells Go templates from Tera ones (a template
//! converted before carries [`detect::MARKER`] and is copied as it is);
//! `gotmpl` parses Go's template language; `convert` writes the Tera
//! equivalent, calling the `go_*` helpers of `template::gocompat` wherever
//! Go's or confd's semantics differ from Tera's. What cannot be converted
//! faithfully is reported as `file:line:col: message`, and the converted
//! template fails at that place when rendered, so it never writes a file
//! that differs from what confd wrote.

pub mod convert;
pub mod detect;
pub mod gotmpl;

use std::path::{Path, PathBuf};

use crate::cli::MigrateArgs;

/// Every template converted, every file copied.
pub const EXIT_CONVERTED: u8 = 0;
/// Something needs a manual step (reported); the rest was written.
pub const EXIT_MANUAL: u8 = 1;
/// Bad usage: nothing was written.
pub const EXIT_USAGE: u8 = 2;

/// A place in a template that needs a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the Go template.
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    /// What could not be converted, and what to do.
    pub message: String,
}

/// One file of the destination confdir.
struct Planned {
    /// Relative to the confdir.
    path: PathBuf,
    contents: Vec<u8>,
    what: What,
}

enum What {
    Copied,
    Converted { problems: Vec<Problem> },
    AlreadyTera,
}

/// Runs `confd migrate` and returns the exit status.
pub fn run(args: &MigrateArgs) -> u8 {
    match migrate(args, &mut std::io::stdout().lock()) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("confd migrate: {e}");
            EXIT_USAGE
        }
    }
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// SRC is not a confdir.
    #[error("{}: no conf.d/ folder here; give the confdir that holds conf.d/ and templates/", .0.display())]
    NotAConfdir(PathBuf),
    /// DEST has files and -force was not given.
    #[error("{}: not empty; give an empty or new folder, or -force to replace files in it", .0.display())]
    DestNotEmpty(PathBuf),
    /// Reading or writing failed.
    #[error("{}: {reason}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_error(path: &Path, e: &std::io::Error) -> MigrateError {
    MigrateError::Io {
        path: path.to_path_buf(),
        reason: crate::error::io_reason(e),
    }
}

/// Plans every file, reports problems, and writes (or, with -noop, prints)
/// the destination.
pub fn migrate(args: &MigrateArgs, out: &mut dyn std::io::Write) -> Result<u8, MigrateError> {
    let src = &args.src;
    if !src.join("conf.d").is_dir() {
        return Err(MigrateError::NotAConfdir(src.clone()));
    }
    let in_place = same_folder(src, &args.dest);
    if !args.force && (in_place || !is_empty_or_missing(&args.dest)?) {
        return Err(MigrateError::DestNotEmpty(args.dest.clone()));
    }
    let plan = plan(src)?;

    let mut needs_hand = false;
    let (mut converted, mut copied, mut kept) = (0, 0, 0);
    for file in &plan {
        match &file.what {
            What::Converted { problems } => {
                converted += 1;
                for p in problems {
                    needs_hand = true;
                    eprintln!(
                        "{}:{}:{}: {}",
                        src.join(&file.path).display(),
                        p.line,
                        p.col,
                        p.message
                    );
                }
            }
            What::Copied => copied += 1,
            What::AlreadyTera => {
                kept += 1;
                eprintln!(
                    "{}: already Tera (converted before, or written as Tera); copied as it is",
                    src.join(&file.path).display()
                );
            }
        }
    }

    if args.noop {
        for file in &plan {
            let target = args.dest.join(&file.path);
            match file.what {
                What::Converted { .. } => {
                    let _ = writeln!(out, "=== {} (converted)", target.display());
                    let _ = out.write_all(&file.contents);
                    if !file.contents.ends_with(b"\n") {
                        let _ = writeln!(out);
                    }
                }
                What::Copied | What::AlreadyTera => {
                    let _ = writeln!(out, "=== {} (copied)", target.display());
                }
            }
        }
    } else {
        for file in &plan {
            if in_place && !matches!(file.what, What::Converted { .. }) {
                continue;
            }
            write_file(
                &args.dest.join(&file.path),
                &file.contents,
                &src.join(&file.path),
            )?;
        }
    }
    eprintln!(
        "confd migrate: {converted} template(s) converted, {kept} already Tera, {copied} other file(s) copied{}{}",
        if args.noop {
            " (nothing written: -noop)"
        } else {
            ""
        },
        if needs_hand {
            "; the places listed above need a manual step (each fails at render time until fixed)"
        } else {
            ""
        }
    );
    Ok(if needs_hand {
        EXIT_MANUAL
    } else {
        EXIT_CONVERTED
    })
}

/// Every file under SRC, in path order, with what becomes of it.
fn plan(src: &Path) -> Result<Vec<Planned>, MigrateError> {
    let mut plan = Vec::new();
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.map_err(|e| MigrateError::Io {
            path: src.to_path_buf(),
            reason: e.to_string(),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let relative = path.strip_prefix(src).unwrap_or(path).to_path_buf();
        let contents = std::fs::read(path).map_err(|e| io_error(path, &e))?;
        let is_template = relative.starts_with("templates");
        let planned = match (is_template, String::from_utf8(contents)) {
            (true, Ok(text))
                if detect::is_converted(&text)
                    || !detect::looks_like_go(&text) && text.contains("{%") =>
            {
                Planned {
                    path: relative,
                    contents: text.into_bytes(),
                    what: What::AlreadyTera,
                }
            }
            (true, Ok(text)) => {
                let (tera, problems) = convert::convert(&relative.display().to_string(), &text);
                Planned {
                    path: relative,
                    contents: tera.into_bytes(),
                    what: What::Converted { problems },
                }
            }
            (_, Ok(text)) => Planned {
                path: relative,
                contents: text.into_bytes(),
                what: What::Copied,
            },
            (_, Err(e)) => Planned {
                path: relative,
                contents: e.into_bytes(),
                what: What::Copied,
            },
        };
        plan.push(planned);
    }
    Ok(plan)
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn is_empty_or_missing(dir: &Path) -> Result<bool, MigrateError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io_error(dir, &e)),
    }
}

/// Writes one file, creating its folder, with the mode of its source.
fn write_file(path: &Path, contents: &[u8], source: &Path) -> Result<(), MigrateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, &e))?;
    }
    std::fs::write(path, contents).map_err(|e| io_error(path, &e))?;
    if let Ok(meta) = std::fs::metadata(source) {
        let _ = std::fs::set_permissions(path, meta.permissions());
    }
    Ok(())
}

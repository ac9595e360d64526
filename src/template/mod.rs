//! Templates: compiles each resource's Tera template once, with confd's helpers
//! registered, and renders it against a resource's [`View`] of the snapshot.
//!
//! Every template lives in its own Tera instance cloned from one prototype that
//! holds the helpers: Tera validates all templates of an instance together, so
//! a broken template would otherwise poison the templates of other resources.
//! Autoescaping is off: these are configuration files, not HTML.
//!
//! Errors come out as one line, `file:line:col: message`, because they end up
//! in logs and CI output where Tera's multi-line reports would be cut apart.
//!
//! A render can be bounded in time and output size ([`RenderLimits`]):
//! [`Template::render_limited`] enforces both on the calling thread, and
//! [`render_bounded`] runs the render on a thread of its own so that the
//! caller (the daemon's event loop) never waits longer than the timeout.

mod bounded;
#[cfg(test)]
mod change_tests;
mod data;
mod diagnostic;
mod funcs;
pub mod gocompat;
mod limits;
mod lint;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tera::{Context, ErrorKind, Tera};

pub use bounded::{max_stuck, render_bounded};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use limits::{
    DEFAULT_MAX_OUTPUT, DEFAULT_RENDER_TIMEOUT, LimitExceeded, MAX_OUTPUT_LIMIT,
    MAX_RENDER_TIMEOUT, MIN_RENDER_TIMEOUT, RenderLimits,
};

use limits::{Budget, LimitedOutput};

use crate::services::{ServiceData, ServiceQuery};
use crate::snapshot::View;

/// Why a template could not be loaded or rendered; the message is one line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    /// The template file could not be read.
    #[error("{path}: cannot read template: {reason}")]
    Read {
        /// The template file.
        path: PathBuf,
        /// The I/O error, as text.
        reason: String,
    },
    /// The template has a syntax error or calls an unknown helper.
    #[error("{0}")]
    Compile(Diagnostics),
    /// Rendering failed: a missing key, a bad helper argument, an undefined
    /// variable.
    #[error("{0}")]
    Render(Diagnostics),
    /// The render was stopped, or not started, because of a limit: its
    /// `render_timeout` or `max_output_size`, or earlier renders stuck past
    /// their timeouts.
    #[error("{template}: {exceeded}")]
    Limit {
        /// The template's name (its path).
        template: String,
        /// Which limit, and its value.
        exceeded: LimitExceeded,
    },
}

/// One compiled template, ready to render against any view.
#[derive(Clone)]
pub struct Template {
    name: String,
    tera: Arc<Tera>,
    /// Identifies the source text: two templates with the same fingerprint
    /// render the same output from the same view.
    fingerprint: u64,
    /// The length of the source text, from which the output buffer's first
    /// size is guessed (as Tera's own `render` does).
    source_len: usize,
    /// The length of the last text this template rendered, shared by its
    /// clones: the next render of a changed key space is almost always about
    /// as long, so its buffer is sized once instead of doubled a dozen times
    /// (2.8 MB at 100,000 keys, copied as it grows).
    last_output: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .finish()
    }
}

/// Builds templates: a prototype engine with confd's helpers registered.
pub struct TemplateCompiler {
    prototype: Tera,
}

impl Default for TemplateCompiler {
    fn default() -> Self {
        Self::new()
    }
}

impl TemplateCompiler {
    /// A compiler with every helper of the template language registered.
    pub fn new() -> Self {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&'static str>::new());
        register_helpers(&mut tera);
        TemplateCompiler { prototype: tera }
    }

    /// Reads and compiles a template file. Errors name the file as given.
    pub fn load(&self, path: &Path) -> Result<Template, TemplateError> {
        let source = read_source(path)?;
        self.compile_file(path, &source)
    }

    /// Like [`load`](Self::load), and also reports the keyword arguments
    /// confd's helpers do not take (for `confd check`; a render ignores
    /// them).
    pub fn load_linted(&self, path: &Path) -> (Result<Template, TemplateError>, Vec<Diagnostic>) {
        match read_source(path) {
            Ok(source) => (
                self.compile_file(path, &source),
                lint::unknown_arguments(&path.display().to_string(), &source),
            ),
            Err(e) => (Err(e), Vec::new()),
        }
    }

    fn compile_file(&self, path: &Path, source: &str) -> Result<Template, TemplateError> {
        self.compile(&path.display().to_string(), source)
            .map_err(|e| match e {
                // A confd user's template, not converted yet: say what to do
                // rather than list Tera's objections to Go's syntax.
                TemplateError::Compile(found) if crate::migrate::detect::looks_like_go(source) => {
                    TemplateError::Compile(found.with_hint(
                        " (this is a Go text/template, confd's format: convert the confdir with `confd migrate SRC_CONFDIR DEST_CONFDIR`)",
                    ))
                }
                other => other,
            })
    }

    /// Compiles template text under a display name (used in error messages).
    pub fn compile(&self, name: &str, source: &str) -> Result<Template, TemplateError> {
        let mut tera = self.prototype.clone();
        tera.add_raw_template(name, source)
            .map_err(|e| TemplateError::Compile(one_line(&e)))?;
        let fingerprint = ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(source);
        Ok(Template {
            name: name.to_string(),
            tera: Arc::new(tera),
            fingerprint,
            source_len: source.len(),
            last_output: Arc::default(),
        })
    }
}

impl Template {
    /// The name errors use for this template (its path).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A hash of the source text (equal sources, equal fingerprints).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Renders against `view`, with no service data.
    pub fn render(&self, view: View) -> Result<String, TemplateError> {
        self.render_with(view, Arc::default()).text
    }

    /// Renders against `view` and the known service instances; also reports
    /// which service queries the template made (known or not).
    pub fn render_with(&self, view: View, services: Arc<ServiceData>) -> Rendered {
        let context = Context::new();
        let (result, services_asked) = data::with_context(view, services, None, || {
            self.tera.render(&self.name, &context)
        });
        Rendered {
            text: result.map_err(|e| TemplateError::Render(one_line(&e))),
            services_asked,
        }
    }

    /// Like [`render_with`](Self::render_with), within `limits`, on the
    /// calling thread: the render stops with [`TemplateError::Limit`] at the
    /// write that would take the output past the cap, or soon after its
    /// deadline, at a write or helper call (the clock is read at one of every
    /// 64 of them). A loop that writes nothing and calls no helper cannot be
    /// stopped this way; [`render_bounded`] is the entry point that never
    /// waits for such a render.
    pub fn render_limited(
        &self,
        view: View,
        services: Arc<ServiceData>,
        limits: RenderLimits,
    ) -> Rendered {
        let budget = Budget::new(limits, Instant::now(), Arc::new(AtomicBool::new(false)));
        self.render_budgeted(view, services, budget)
    }

    /// Renders within `budget`: output through a [`LimitedOutput`], helpers
    /// checking the same budget. A limit reported by the budget wins over
    /// whatever error Tera made of it.
    fn render_budgeted(&self, view: View, services: Arc<ServiceData>, budget: Budget) -> Rendered {
        let budget = Rc::new(budget);
        let last = self.last_output.load(Ordering::Relaxed);
        let capacity = self
            .source_len
            .saturating_mul(2)
            .next_power_of_two()
            .max(last.saturating_add(last / 16));
        let mut output = LimitedOutput::new(budget.clone(), capacity);
        let context = Context::new();
        let (result, services_asked) =
            data::with_context(view, services, Some(budget.clone()), || {
                self.tera.render_to(&self.name, &context, &mut output)
            });
        let text = match (budget.exceeded(), result) {
            (Some(exceeded), _) => Err(self.limit_error(exceeded)),
            (None, Err(e)) => Err(TemplateError::Render(one_line(&e))),
            (None, Ok(())) => String::from_utf8(output.into_inner())
                .inspect(|text| self.last_output.store(text.len(), Ordering::Relaxed))
                .map_err(|_| {
                    TemplateError::Render(
                        format!("{}: the rendered text is not UTF-8", self.name).into(),
                    )
                }),
        };
        Rendered {
            text,
            services_asked,
        }
    }

    fn limit_error(&self, exceeded: LimitExceeded) -> TemplateError {
        TemplateError::Limit {
            template: self.name.clone(),
            exceeded,
        }
    }
}

fn read_source(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|e| TemplateError::Read {
        path: path.to_path_buf(),
        reason: crate::error::io_reason(&e),
    })
}

/// The outcome of one render.
#[derive(Debug)]
pub struct Rendered {
    /// The text, or why rendering failed.
    pub text: Result<String, TemplateError>,
    /// The `service(...)` queries the template made.
    pub services_asked: Vec<ServiceQuery>,
}

fn register_helpers(tera: &mut Tera) {
    tera.register_function("getv", data::getv);
    tera.register_function("get", data::get);
    tera.register_function("gets", data::gets);
    tera.register_function("getvs", data::getvs);
    tera.register_function("exists", data::exists);
    tera.register_function("ls", data::ls);
    tera.register_function("lsdir", data::lsdir);
    tera.register_function("getenv", data::getenv);
    tera.register_function("service", data::service);

    tera.register_filter("base", funcs::base);
    tera.register_filter("dir", funcs::dir);
    tera.register_filter("split", funcs::split);
    tera.register_filter("json", funcs::json);
    tera.register_filter("jsonArray", funcs::json_array);
    tera.register_filter("toUpper", funcs::to_upper);
    tera.register_filter("toLower", funcs::to_lower);
    tera.register_filter("contains", funcs::contains);
    tera.register_filter("trimSuffix", funcs::trim_suffix);
    tera.register_filter("base64Encode", funcs::base64_encode);
    tera.register_filter("base64Decode", funcs::base64_decode);
    tera.register_filter("atoi", funcs::atoi);
    tera.register_filter("parseBool", funcs::parse_bool);
    tera.register_filter("sortByLength", funcs::sort_by_length);
    tera.register_filter("sortKVByLength", funcs::sort_kv_by_length);

    tera.register_function("seq", funcs::seq);
    tera.register_function("map", funcs::make_map);
    tera.register_function("lookupIP", funcs::lookup_ip);
    tera.register_function("lookupSRV", funcs::lookup_srv);
    tera.register_function("fileExists", funcs::file_exists);
    tera.register_function("datetime", funcs::datetime);
    // In place of Tera's own `range`, so that loops over it can be stopped.
    tera.register_function("range", funcs::range);
    for (name, op) in [
        ("add", funcs::Arith::Add),
        ("sub", funcs::Arith::Sub),
        ("mul", funcs::Arith::Mul),
        ("div", funcs::Arith::Div),
        ("mod", funcs::Arith::Mod),
    ] {
        tera.register_function(name, op.function());
        tera.register_filter(name, op.filter());
    }
    gocompat::register(tera);
}

/// Turns a Tera error into one diagnostic per problem it reports.
fn one_line(error: &tera::Error) -> Diagnostics {
    match error.kind() {
        ErrorKind::SyntaxError(report) | ErrorKind::RenderingError(report) => Diagnostics::at(
            report.filename(),
            report.span().start_line,
            report.span().start_col + 1,
            flatten(report.message()),
        ),
        // Validation problems (unknown function, filter, …) arrive as
        // pre-rendered reports: pick the message and location out of each.
        _ => {
            let text = error.to_string();
            let found = report_lines(&text);
            if found.is_empty() {
                Diagnostics::from(flatten(&text))
            } else {
                Diagnostics(found)
            }
        }
    }
}

/// Extracts file, position and message from Tera's rendered reports
/// (`error: MESSAGE` then `--> FILE:LINE:COL`).
fn report_lines(text: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut message: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(m) = trimmed.strip_prefix("error: ") {
            message = Some(m);
        } else if let Some(location) = trimmed.strip_prefix("--> ")
            && let Some(m) = message.take()
        {
            out.push(located(location, m));
        }
    }
    out
}

/// `FILE:LINE:COL` (the file may hold colons) and a message.
fn located(location: &str, message: &str) -> Diagnostic {
    let mut parts = location.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (
        file,
        line.and_then(|l| l.parse().ok()),
        col.and_then(|c| c.parse().ok()),
    ) {
        (Some(file), Some(line), Some(col)) => Diagnostic {
            file: file.to_string(),
            at: Some((line, col)),
            message: flatten(message),
        },
        _ => Diagnostic {
            file: String::new(),
            at: None,
            message: format!("{location}: {}", flatten(message)),
        },
    }
}

fn flatten(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;

    fn render(source: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateError> {
        let template = TemplateCompiler::new().compile("test.tmpl", source)?;
        let snapshot = Arc::new(Snapshot::from_pairs(pairs.iter().copied()));
        template.render(View::new(snapshot, "/", &["/".to_string()]))
    }

    fn ok(source: &str, pairs: &[(&str, &str)]) -> String {
        match render(source, pairs) {
            Ok(text) => text,
            Err(e) => panic!("render failed: {e}"),
        }
    }

    fn err(source: &str, pairs: &[(&str, &str)]) -> String {
        match render(source, pairs) {
            Ok(text) => panic!("expected an error, rendered {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn seed_haproxy_example_renders() {
        let source = "{% for d in lsdir(key=\"/services/web\") %}\nbackend {{ d }}_cluster\n{% for h in lsdir(key=\"/services/web/\" ~ d) %}\n    server {{ h | base }} {{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/ip\") }}:{{ getv(key=\"/services/web/\" ~ d ~ \"/\" ~ h ~ \"/port\") }} check\n{% endfor %}{% endfor %}";
        let out = ok(
            source,
            &[
                ("/services/web/a.com/h1/ip", "10.0.0.1"),
                ("/services/web/a.com/h1/port", "80"),
                ("/services/web/a.com/h2/ip", "10.0.0.2"),
                ("/services/web/a.com/h2/port", "81"),
            ],
        );
        assert_eq!(
            out,
            "\nbackend a.com_cluster\n\n    server h1 10.0.0.1:80 check\n\n    server h2 10.0.0.2:81 check\n"
        );
    }

    #[test]
    fn getv_missing_key_names_key_and_position() {
        let e = err("line1\n  {{ getv(key=\"/nope\") }}", &[]);
        assert!(e.starts_with("test.tmpl:2:"), "{e}");
        assert!(e.contains("/nope"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn getv_default_covers_missing_key_even_when_empty() {
        assert_eq!(ok("[{{ getv(key=\"/x\", default=\"\") }}]", &[]), "[]");
        assert_eq!(ok("{{ getv(key=\"/x\", default=\"d\") }}", &[]), "d");
        assert_eq!(
            ok("{{ getv(key=\"/x/\", default=\"d\") }}", &[("/x", "v")]),
            "v"
        );
    }

    #[test]
    fn get_returns_key_and_value() {
        assert_eq!(
            ok(
                "{% set p = get(key=\"/a/b\") %}{{ p.key }}={{ p.value }}",
                &[("/a/b", "1")]
            ),
            "/a/b=1"
        );
        assert!(err("{{ get(key=\"/a\") }}", &[]).contains("/a"));
    }

    #[test]
    fn gets_sorted_by_key_and_getvs_by_value() {
        let data = [("/u/b", "1"), ("/u/a", "2"), ("/u/c/deep", "0")];
        assert_eq!(
            ok(
                "{% for p in gets(key=\"/u/*\") %}{{ p.key }}={{ p.value }} {% endfor %}",
                &data
            ),
            "/u/a=2 /u/b=1 "
        );
        assert_eq!(
            ok("{{ getvs(key=\"/u/*\") | join(sep=\",\") }}", &data),
            "1,2"
        );
        assert_eq!(ok("{{ gets(key=\"/none/*\") | length }}", &data), "0");
    }

    #[test]
    fn exists_is_false_for_directories() {
        let data = [("/a/b", "1")];
        assert_eq!(
            ok(
                "{{ exists(key=\"/a/b\") }} {{ exists(key=\"/a\") }} {{ exists(key=\"/z\") }}",
                &data
            ),
            "true false false"
        );
    }

    #[test]
    fn ls_and_lsdir_at_root_and_below() {
        let data = [("/a/x", "1"), ("/b", "2"), ("/a/y/z", "3")];
        assert_eq!(ok("{{ ls(key=\"/\") | join(sep=\",\") }}", &data), "a,b");
        assert_eq!(ok("{{ lsdir(key=\"/\") | join(sep=\",\") }}", &data), "a");
        assert_eq!(ok("{{ ls(key=\"/a/\") | join(sep=\",\") }}", &data), "x,y");
        assert_eq!(ok("{{ lsdir(key=\"/a\") | join(sep=\",\") }}", &data), "y");
        assert_eq!(ok("{{ ls(key=\"/empty\") | length }}", &data), "0");
    }

    #[test]
    fn string_filters() {
        assert_eq!(
            ok("{{ \"a,b,c\" | split(on=\",\") | join(sep=\"-\") }}", &[]),
            "a-b-c"
        );
        assert_eq!(ok("{{ \"a,b\" | split(pat=\",\") | length }}", &[]), "2");
        assert_eq!(
            ok("{{ \"Ab\" | toUpper }}{{ \"Ab\" | toLower }}", &[]),
            "ABab"
        );
        assert_eq!(ok("{{ \"Ab\" | upper }}", &[]), "AB");
        assert_eq!(
            ok("{{ \"a.b\" | replace(from=\".\", to=\"_\") }}", &[]),
            "a_b"
        );
        assert_eq!(
            ok("{{ \"haystack\" | contains(substr=\"st\") }}", &[]),
            "true"
        );
        assert_eq!(
            ok("{{ \"web.conf\" | trimSuffix(suffix=\".conf\") }}", &[]),
            "web"
        );
        assert_eq!(
            ok("{{ \"/a/b/c\" | dir }} {{ \"/a/b/c\" | base }}", &[]),
            "/a/b c"
        );
        assert_eq!(ok("{{ \"hi\" | base64Encode }}", &[]), "aGk=");
        assert_eq!(ok("{{ \"aGk=\" | base64Decode }}", &[]), "hi");
        assert!(err("{{ \"***\" | base64Decode }}", &[]).contains("base64Decode"));
        assert_eq!(
            ok(
                "{{ [\"ccc\", \"a\", \"bb\", \"b\"] | sortByLength | join(sep=\",\") }}",
                &[]
            ),
            "a,b,bb,ccc"
        );
        assert_eq!(ok("{{ \"abc\" | reverse }}", &[]), "cba");
    }

    #[test]
    fn sort_kv_by_length() {
        let data = [("/k/long", "1"), ("/k/s", "2")];
        assert_eq!(
            ok(
                "{% for p in gets(key=\"/k/*\") | sortKVByLength %}{{ p.key }} {% endfor %}",
                &data
            ),
            "/k/s /k/long "
        );
    }

    #[test]
    fn numbers_and_booleans() {
        assert_eq!(ok("{{ \"42\" | atoi + 1 }}", &[]), "43");
        assert!(err("{{ \"4x\" | atoi }}", &[]).contains("atoi"));
        assert_eq!(
            ok("{{ \"T\" | parseBool }} {{ \"0\" | parseBool }}", &[]),
            "true false"
        );
        assert!(err("{{ \"yes\" | parseBool }}", &[]).contains("parseBool"));
        assert_eq!(
            ok(
                "{{ add(a=2, b=3) }} {{ sub(a=2, b=3) }} {{ mul(a=2, b=3) }} {{ div(a=7, b=2) }} {{ mod(a=7, b=2) }}",
                &[]
            ),
            "5 -1 6 3 1"
        );
        assert_eq!(
            ok("{{ getv(key=\"/p\") | add(b=1) }}", &[("/p", "8080")]),
            "8081"
        );
        assert!(err("{{ div(a=1, b=0) }}", &[]).contains("division by zero"));
        assert!(err("{{ 5 | mod(b=0) }}", &[]).contains("division by zero"));
        assert_eq!(
            ok("{{ seq(first=1, last=3) | join(sep=\",\") }}", &[]),
            "1,2,3"
        );
        assert_eq!(ok("{{ seq(first=3, last=1) | length }}", &[]), "0");
    }

    #[test]
    fn json_objects_and_arrays() {
        let data = [
            (
                "/o",
                "{\"b\": 2, \"a\": {\"x\": [1, 2]}, \"big\": 18446744073709551615}",
            ),
            ("/arr", "[\"x\", \"y\"]"),
        ];
        assert_eq!(
            ok(
                "{% set o = getv(key=\"/o\") | json %}{{ o.a.x[1] }} {{ o.big }} {% for k, v in o %}{{ k }}{% endfor %}",
                &data
            ),
            "2 18446744073709551615 abbig"
        );
        assert_eq!(
            ok(
                "{{ getv(key=\"/arr\") | jsonArray | join(sep=\"+\") }}",
                &data
            ),
            "x+y"
        );
        assert!(err("{{ getv(key=\"/arr\") | json }}", &data).contains("jsonArray"));
        assert!(err("{{ getv(key=\"/o\") | jsonArray }}", &data).contains("json"));
        assert!(err("{{ \"{oops\" | json }}", &data).contains("invalid JSON"));
        let missing = err("{% set o = getv(key=\"/o\") | json %}{{ o.nope }}", &data);
        assert!(missing.contains("nope"), "{missing}");
    }

    #[test]
    fn map_builds_sorted_maps() {
        assert_eq!(
            ok(
                "{% set m = map(pairs=[\"b\", 1, \"a\", 2]) %}{% for k, v in m %}{{ k }}{{ v }}{% endfor %}",
                &[]
            ),
            "a2b1"
        );
        assert_eq!(ok("{% set m = map(x=1) %}{{ m.x }}", &[]), "1");
        assert!(err("{{ map(pairs=[\"a\"]) }}", &[]).contains("even"));
    }

    #[test]
    fn getenv_and_files_and_time() {
        assert_eq!(
            ok(
                "{{ getenv(key=\"CONFD_TEST_SURELY_UNSET\", default=\"d\") }}",
                &[]
            ),
            "d"
        );
        assert_eq!(
            ok("[{{ getenv(key=\"CONFD_TEST_SURELY_UNSET\") }}]", &[]),
            "[]"
        );
        assert_eq!(
            ok(
                "{{ fileExists(path=\"/\") }} {{ fileExists(path=\"/surely/not/here\") }}",
                &[]
            ),
            "true false"
        );
        assert!(ok("{{ datetime() }}", &[]).ends_with('Z'));
    }

    #[test]
    fn lookup_ip_is_sorted() {
        assert_eq!(
            ok("{{ lookupIP(name=\"127.0.0.1\") | join(sep=\",\") }}", &[]),
            "127.0.0.1"
        );
    }

    #[test]
    fn range_behaves_as_teras_own() {
        assert_eq!(ok("{{ range(end=3) | join(sep=\",\") }}", &[]), "0,1,2");
        assert_eq!(
            ok(
                "{{ range(start=1, end=8, step_by=3) | join(sep=\",\") }}",
                &[]
            ),
            "1,4,7"
        );
        assert_eq!(
            ok(
                "{{ range(start=5, end=0, step_by=-2) | join(sep=\",\") }}",
                &[]
            ),
            "5,3,1"
        );
        assert_eq!(ok("{{ range(start=2, end=2) | length }}", &[]), "0");
        assert!(err("{{ range(start=3, end=1) }}", &[]).contains("greater than"));
        assert!(err("{{ range(end=3, step_by=0) }}", &[]).contains("step_by"));
        assert!(err("{{ range(end=100001) }}", &[]).contains("exceeds the limit of 100000"));
    }

    #[test]
    fn undefined_variable_is_an_error_not_no_value() {
        let e = err("{{ nothing }}", &[]);
        assert!(e.starts_with("test.tmpl:1:"), "{e}");
    }

    #[test]
    fn syntax_error_is_one_line_with_position() {
        let e = match TemplateCompiler::new().compile("bad.tmpl", "ok\n{% for x in %}") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("compiled a broken template"),
        };
        assert!(e.starts_with("bad.tmpl:2:"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn unknown_helper_is_reported_with_position() {
        let e = match TemplateCompiler::new().compile("bad.tmpl", "\n\n  {{ nosuch(key=\"/a\") }}")
        {
            Err(e) => e.to_string(),
            Ok(_) => panic!("compiled a template calling an unknown function"),
        };
        assert!(e.starts_with("bad.tmpl:3:"), "{e}");
        assert!(e.contains("nosuch"), "{e}");
    }
}

//! A Go text/template as a Tera template that renders the same bytes.
//!
//! Text is copied as Go left it (the parser has applied `{{-`/`-}}`
//! already); each action becomes the Tera tag that does what Go does with
//! it: output through `go_str` (Go's formatting) unless the value is known
//! to be a string, conditions through `go_truth` (Go's truth) unless known
//! to be a bool, `range` over `go_items` (maps in key order, lists with
//! their index), `with` as a test plus a new dot, `{{template}}` and
//! `{{block}}` inlined with their own dot and `$` (a recursive template is
//! expanded [`MAX_TEMPLATE_DEPTH`] levels deep). Go's variables get Tera
//! names of their own (see `scope`). Where Tera cannot say what Go says,
//! the place is reported as a [`Problem`] and the template gets a `throw`
//! there, so it fails when rendered instead of writing something else.

mod expr;
mod funcs;
mod scope;
mod text;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use super::Problem;
use super::detect::MARKER;
use super::gotmpl::{self, Control, List, Node, Pipeline, Pos, Template};
use funcs::Kind;
use scope::{Assign, Scopes};

/// The data confd runs its templates with: none at all.
const NO_DATA: &str = "go_nodata()";

/// How deep a template that calls itself is expanded.
pub const MAX_TEMPLATE_DEPTH: usize = 16;

impl Problem {
    fn at(pos: Pos, message: impl Into<String>) -> Self {
        Problem {
            line: pos.line,
            col: pos.col,
            message: message.into(),
        }
    }
}

/// The Tera template for Go template `source` (starting with [`MARKER`]),
/// and the places that need a person.
pub fn convert(name: &str, source: &str) -> (String, Vec<Problem>) {
    let template = match gotmpl::parse(name, source, &gotmpl::is_confd_function) {
        Ok(template) => template,
        Err(e) => {
            let problem = Problem {
                line: e.line,
                col: e.col,
                message: match e.kind {
                    gotmpl::ErrorKind::Go => format!(
                        "{} (confd cannot parse this template either; fix it, then convert again)",
                        e.message
                    ),
                    gotmpl::ErrorKind::Unsupported => e.message,
                },
            };
            return (unparsed(name, source, &problem), vec![problem]);
        }
    };
    let mut converter = Converter {
        template: &template,
        out: String::from(MARKER),
        problems: Vec::new(),
        scopes: Scopes::new(NO_DATA),
        kinds: HashMap::new(),
        dot: (NO_DATA.to_string(), Kind::Any),
        calls: Vec::new(),
        name,
        pre: Vec::new(),
    };
    converter.list(&template.root);
    (converter.out, converter.problems)
}

/// What a template Go cannot parse becomes: a Tera template that fails with
/// the reason, keeping the original text in a comment for whoever fixes it.
fn unparsed(name: &str, source: &str, problem: &Problem) -> String {
    let message = format!(
        "{name}:{}:{}: not converted: {}",
        problem.line, problem.col, problem.message
    );
    format!(
        "{MARKER}{{{{ throw(message={}) }}}}{{# The Go template as it was:\n{}\n#}}",
        text::string(&message),
        source.replace("#}", "# }")
    )
}

/// The state of one conversion.
pub(super) struct Converter<'t> {
    template: &'t Template,
    out: String,
    problems: Vec<Problem>,
    scopes: Scopes,
    /// What is known of each Tera variable's type.
    kinds: HashMap<String, Kind>,
    /// The Tera expression for Go's `.` here, and its kind.
    dot: (String, Kind),
    /// The templates being inlined, outermost first.
    calls: Vec<String>,
    name: &'t str,
    /// Statements a tag's expression needs first (the in-place sorts of
    /// confd's helpers); written before the next tag.
    pre: Vec<String>,
}

impl Converter<'_> {
    fn dot(&self) -> expr::Expr {
        expr::Expr::new(self.dot.0.clone(), self.dot.1)
    }

    /// Whether `text` is a Go variable's Tera name.
    fn is_variable(&self, text: &str) -> bool {
        self.kinds.contains_key(text)
    }

    /// Writes a tag, after the statements its expressions need.
    fn tag(&mut self, tag: &str) {
        for statement in std::mem::take(&mut self.pre) {
            self.out.push_str(&statement);
        }
        self.out.push_str(tag);
    }

    fn kind_of(&self, tera: &str) -> Kind {
        self.kinds.get(tera).copied().unwrap_or(Kind::Any)
    }

    /// Reports `problem` and makes the template fail at this place.
    fn fail(&mut self, problem: Problem) {
        let message = format!(
            "{}:{}:{}: confd migrate could not convert this: {}",
            self.name, problem.line, problem.col, problem.message
        );
        self.out.push_str(&format!(
            "{{{{ throw(message={}) }}}}",
            text::string(&message)
        ));
        self.problems.push(problem);
    }

    fn list(&mut self, list: &List) {
        for node in &list.nodes {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::Text { text: t, .. } => text::text(t, &mut self.out),
            Node::Comment { .. } => {}
            Node::Action { pipe, .. } => {
                if let Err(p) = self.action(pipe) {
                    self.fail(p);
                }
            }
            Node::If(c) => self.if_(c),
            Node::With(c) => self.with(c),
            Node::Range(c) => self.range(c),
            Node::Template {
                name, pipe, pos, ..
            } => self.call_template(name, pipe.as_ref(), *pos),
            Node::Break(_) => self.out.push_str("{% break %}"),
            Node::Continue(_) => self.out.push_str("{% continue %}"),
        }
    }

    /// `{{ pipeline }}`: prints its value, unless it declares or assigns a
    /// variable (then Go prints nothing).
    fn action(&mut self, pipe: &Pipeline) -> Result<(), Problem> {
        let value = self.pipeline(pipe)?;
        if pipe.decl.is_empty() {
            let shown = match value.kind {
                Kind::Str => value.text,
                _ => format!("go_str(v={})", value.text),
            };
            self.tag(&format!("{{{{ {shown} }}}}"));
            return Ok(());
        }
        self.bind(pipe, value)
    }

    /// Writes a pipeline's declaration (`$x := v`) or assignment (`$x = v`).
    fn bind(&mut self, pipe: &Pipeline, value: expr::Expr) -> Result<(), Problem> {
        for var in &pipe.decl {
            if pipe.is_assign {
                match self.scopes.assign(&var.name) {
                    Some(Assign::Set(tera)) => {
                        self.set("set", &tera, &value);
                    }
                    Some(Assign::Global(tera)) => {
                        self.set("set_global", &tera, &value);
                    }
                    Some(Assign::Unreachable) => {
                        return Err(Problem::at(
                            var.pos,
                            format!(
                                "{} is declared in an enclosing range and assigned in a nested one: Tera cannot change it from there; restructure this part by hand",
                                var.name
                            ),
                        ));
                    }
                    None => {
                        return Err(Problem::at(
                            var.pos,
                            format!("undefined variable \"{}\"", var.name),
                        ));
                    }
                }
            } else {
                let tera = self.scopes.declare(&var.name);
                self.set("set", &tera, &value);
            }
        }
        Ok(())
    }

    fn set(&mut self, how: &str, tera: &str, value: &expr::Expr) {
        self.kinds.insert(tera.to_string(), value.kind);
        self.tag(&format!("{{% {how} {tera} = {} %}}", value.text));
    }

    fn if_(&mut self, c: &Control) {
        self.scopes.push();
        let condition = if c.pipe.decl.is_empty() {
            self.condition(&c.pipe)
        } else {
            self.pipeline(&c.pipe).and_then(|value| {
                let test = expr::truth(&value);
                self.bind(&c.pipe, value).map(|()| test)
            })
        };
        match condition {
            Ok(condition) => self.branches(&condition, c, None),
            Err(p) => self.fail(p),
        }
        self.scopes.pop();
    }

    /// `{% if condition %}` body `{% else %}` else `{% endif %}`; the body
    /// runs with `dot` as `.` when given (`with`).
    fn branches(&mut self, condition: &str, c: &Control, dot: Option<(String, Kind)>) {
        self.tag(&format!("{{% if {condition} %}}"));
        let outer = dot.map(|dot| std::mem::replace(&mut self.dot, dot));
        self.body(&c.body);
        if let Some(outer) = outer {
            self.dot = outer;
        }
        if let Some(else_) = &c.else_ {
            self.out.push_str("{% else %}");
            self.body(else_);
        }
        self.out.push_str("{% endif %}");
    }

    fn body(&mut self, list: &List) {
        self.scopes.push();
        self.list(list);
        self.scopes.pop();
    }

    fn with(&mut self, c: &Control) {
        self.scopes.push();
        match self.pipeline(&c.pipe) {
            Ok(value) => {
                let name = self.scopes.fresh("w");
                self.set("set", &name, &value);
                let held = expr::Expr::new(name.clone(), value.kind);
                if let Err(p) = self.bind(&c.pipe, held.clone()) {
                    self.fail(p);
                }
                self.branches(&expr::truth(&held), c, Some((name, value.kind)));
            }
            Err(p) => self.fail(p),
        }
        self.scopes.pop();
    }

    fn range(&mut self, c: &Control) {
        let value = match self.pipeline(&c.pipe) {
            Ok(value) => value,
            Err(p) => return self.fail(p),
        };
        let item = self.scopes.fresh("r");
        self.tag(&format!("{{% for {item} in go_items(v={}) %}}", value.text));
        self.scopes.enter_loop();
        self.scopes.push();
        // go_items gives [key or index, element] pairs.
        let element = format!("{item}[1]");
        match c.pipe.decl.as_slice() {
            [] => {}
            [v] => {
                let tera = self.scopes.declare(&v.name);
                self.kinds.insert(tera.clone(), Kind::Any);
                self.out
                    .push_str(&format!("{{% set {tera} = {element} %}}"));
            }
            [k, v, ..] => {
                let key = self.scopes.declare(&k.name);
                let val = self.scopes.declare(&v.name);
                self.kinds.insert(key.clone(), Kind::Any);
                self.kinds.insert(val.clone(), Kind::Any);
                self.out.push_str(&format!(
                    "{{% set {key} = {item}[0] %}}{{% set {val} = {element} %}}"
                ));
            }
        }
        let outer = std::mem::replace(&mut self.dot, (element, Kind::Any));
        self.list(&c.body);
        self.dot = outer;
        self.scopes.pop();
        self.scopes.leave_loop();
        if let Some(else_) = &c.else_ {
            self.out.push_str("{% else %}");
            self.body(else_);
        }
        self.out.push_str("{% endfor %}");
    }

    /// `{{template "name" pipeline}}`: the defined template's body, inlined
    /// with `.` and `$` set to the pipeline's value (nil without one) and no
    /// other variable in sight, as Go runs it.
    fn call_template(&mut self, name: &str, pipe: Option<&Pipeline>, pos: Pos) {
        let Some(define) = self.template.define(name) else {
            // Go fails at run time, when the action is reached.
            let message = format!(
                "{}:{}:{}: template: no template {name:?} associated with template {:?}",
                self.name, pos.line, pos.col, self.template.name
            );
            self.out.push_str(&format!(
                "{{{{ throw(message={}) }}}}",
                text::string(&message)
            ));
            return;
        };
        if self.calls.iter().filter(|c| *c == name).count() >= MAX_TEMPLATE_DEPTH {
            let message = format!(
                "{}:{}:{}: template {name:?} calls itself more than {MAX_TEMPLATE_DEPTH} levels deep, which confd migrate does not expand",
                self.name, pos.line, pos.col
            );
            self.out.push_str(&format!(
                "{{{{ throw(message={}) }}}}",
                text::string(&message)
            ));
            return;
        }
        let value = match pipe.map(|p| self.pipeline(p)).transpose() {
            Ok(value) => value.unwrap_or(expr::Expr::new(NO_DATA, Kind::Any)),
            Err(p) => return self.fail(p),
        };
        let arg = self.scopes.fresh("t");
        self.set("set", &arg, &value);
        self.calls.push(name.to_string());
        self.scopes.push_template(&arg);
        let outer = std::mem::replace(&mut self.dot, (arg, value.kind));
        let body = define.body.clone();
        self.list(&body);
        self.dot = outer;
        self.scopes.pop_template();
        self.calls.pop();
    }
}

//! Go pipelines as Tera expressions. A pipeline's commands run left to
//! right, each command's result becoming the last argument of the next;
//! every function call becomes a keyword call of its Tera form (see
//! `funcs`), field access becomes `go_field`, and the builtins whose Go
//! semantics Tera's operators share in a condition (`and`, `or`, `not`)
//! become those operators there, keeping Go's short-circuit evaluation.

use super::funcs::{self, Kind, Style};
use super::text;
use super::{Converter, Problem};
use crate::migrate::gotmpl::{Arg, Command, Number, NumberValue, Pipeline, Pos};

/// A Tera expression and what is known of its type.
#[derive(Debug, Clone)]
pub struct Expr {
    /// Tera source; always safe to use as an operand (parenthesised where
    /// it has operators).
    pub text: String,
    /// What it evaluates to.
    pub kind: Kind,
    /// For a number constant, its reading as an `int`, which Go uses when
    /// the parameter it is passed to is an `int` (`add 16 1e3` adds 1000).
    pub as_int: Option<String>,
}

impl Expr {
    pub(super) fn new(text: impl Into<String>, kind: Kind) -> Self {
        Expr {
            text: text.into(),
            kind,
            as_int: None,
        }
    }
}

/// Go's method calls that confd templates make, on the value `datetime`
/// returns: `Format LAYOUT`.
const TIME_FORMAT: &str = "Format";

type Result<T> = std::result::Result<T, Problem>;

impl Converter<'_> {
    /// The value of a pipeline (its declarations are the caller's job).
    pub(super) fn pipeline(&mut self, pipe: &Pipeline) -> Result<Expr> {
        let mut value: Option<Expr> = None;
        for cmd in &pipe.cmds {
            value = Some(self.command(cmd, value)?);
        }
        value.ok_or_else(|| Problem::at(pipe.pos, "empty pipeline"))
    }

    /// The truth of a pipeline, as a Tera condition.
    pub(super) fn condition(&mut self, pipe: &Pipeline) -> Result<String> {
        if let [cmd] = pipe.cmds.as_slice()
            && let Some(condition) = self.logic(cmd)?
        {
            return Ok(condition);
        }
        let value = self.pipeline(pipe)?;
        Ok(truth(&value))
    }

    /// `and`/`or`/`not` in a condition: Tera's operators over the truth of
    /// each argument, evaluated left to right and only as far as needed, as
    /// Go (1.18 and later) does.
    fn logic(&mut self, cmd: &Command) -> Result<Option<String>> {
        let Some(Arg::Identifier { name, pos }) = cmd.args.first() else {
            return Ok(None);
        };
        let args = &cmd.args[1..];
        let joiner = match name.as_str() {
            "and" => " and ",
            "or" => " or ",
            "not" => {
                let [arg] = args else {
                    return Err(Problem::at(*pos, "not takes exactly one argument"));
                };
                return Ok(Some(format!("(not {})", self.arg_truth(arg)?)));
            }
            _ => return Ok(None),
        };
        if args.is_empty() {
            return Err(Problem::at(
                *pos,
                format!("{name} needs at least one argument"),
            ));
        }
        let parts = args
            .iter()
            .map(|a| self.arg_truth(a))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(format!("({})", parts.join(joiner))))
    }

    fn arg_truth(&mut self, arg: &Arg) -> Result<String> {
        if let Arg::Pipe { pipe, .. } = arg {
            return self.condition(pipe);
        }
        let value = self.operand(arg)?;
        Ok(truth(&value))
    }

    /// One command, with the previous command's result (if any) as its
    /// last argument.
    fn command(&mut self, cmd: &Command, piped: Option<Expr>) -> Result<Expr> {
        let Some(first) = cmd.args.first() else {
            return Err(Problem::at(cmd.pos, "empty command"));
        };
        let rest = &cmd.args[1..];
        match first {
            Arg::Identifier { name, pos } => {
                let mut args = rest
                    .iter()
                    .map(|a| self.operand(a))
                    .collect::<Result<Vec<_>>>()?;
                args.extend(piped);
                self.call(name, args, *pos)
            }
            // A method call: `datetime.Format "2006"`, `$t.Format "…"`.
            Arg::Chain { fields, .. }
            | Arg::Variable { fields, .. }
            | Arg::Field { names: fields, .. }
                if fields.last().is_some_and(|f| f == TIME_FORMAT)
                    && (!rest.is_empty() || piped.is_some()) =>
            {
                let receiver = self.receiver(first)?;
                let mut args = rest
                    .iter()
                    .map(|a| self.operand(a))
                    .collect::<Result<Vec<_>>>()?;
                args.extend(piped);
                let [layout] = args.as_slice() else {
                    return Err(Problem::at(first.pos(), "Format takes one layout argument"));
                };
                Ok(Expr::new(
                    format!(
                        "go_time_format(t={}, layout={})",
                        receiver.text, layout.text
                    ),
                    Kind::Str,
                ))
            }
            Arg::Nil(pos) => Err(Problem::at(
                *pos,
                "nil is not a command (confd fails on this action too); remove it",
            )),
            _ if !rest.is_empty() || piped.is_some() => Err(Problem::at(
                first.pos(),
                "can't give argument to non-function (confd fails on this template too)",
            )),
            _ => self.operand(first),
        }
    }

    /// The value a method is called on: the argument without its last field.
    fn receiver(&mut self, arg: &Arg) -> Result<Expr> {
        let (base, fields): (Expr, &[String]) = match arg {
            Arg::Chain { base, fields, .. } => (self.operand(base)?, fields),
            Arg::Variable { name, fields, pos } => (self.variable(name, *pos)?, fields),
            Arg::Field { names, .. } => (self.dot(), names),
            _ => return Err(Problem::at(arg.pos(), "not a method call")),
        };
        let keep = fields.len().saturating_sub(1);
        Ok(with_fields(base, &fields[..keep]))
    }

    /// An argument's value.
    pub(super) fn operand(&mut self, arg: &Arg) -> Result<Expr> {
        Ok(match arg {
            Arg::Dot(_) => self.dot(),
            Arg::Nil(_) => Expr::new("none", Kind::Any),
            Arg::Bool { value, .. } => Expr::new(value.to_string(), Kind::Bool),
            Arg::Number(number) => {
                let mut value = self.number(number)?;
                value.as_int = number.int.map(int);
                value
            }
            Arg::String { value, .. } => Expr::new(text::string(value), Kind::Str),
            Arg::Field { names, .. } => with_fields(self.dot(), names),
            Arg::Variable { name, fields, pos } => {
                let base = self.variable(name, *pos)?;
                with_fields(base, fields)
            }
            Arg::Identifier { name, pos } => self.call(name, Vec::new(), *pos)?,
            Arg::Chain { base, fields, .. } => {
                let base = self.operand(base)?;
                with_fields(base, fields)
            }
            Arg::Pipe { pipe, .. } => {
                // A parenthesised `and`/`or`/`not` keeps Go's value
                // semantics here (the first deciding argument, not a bool).
                let value = self.pipeline(pipe)?;
                Expr::new(format!("({})", value.text), value.kind)
            }
        })
    }

    /// A number constant as Go reads it when nothing asks for an `int`.
    fn number(&mut self, number: &Number) -> Result<Expr> {
        Ok(match number.value {
            NumberValue::Int(i) => Expr::new(int(i), Kind::Any),
            NumberValue::Uint(u) => match i64::try_from(u) {
                Ok(i) => Expr::new(int(i), Kind::Any),
                Err(_) => {
                    return Err(Problem::at(
                        number.pos,
                        format!("{} does not fit in 64 bits", number.text),
                    ));
                }
            },
            NumberValue::Char(c) => Expr::new(int(i64::from(u32::from(c))), Kind::Any),
            NumberValue::Float(f) => match text::float(f) {
                Some(literal) => Expr::new(literal, Kind::Any),
                None => {
                    return Err(Problem::at(
                        number.pos,
                        format!("the number {} cannot be written in Tera", number.text),
                    ));
                }
            },
        })
    }

    /// The Tera name of Go variable `name`.
    fn variable(&mut self, name: &str, pos: Pos) -> Result<Expr> {
        match self.scopes.lookup(name) {
            Some(v) => Ok(Expr::new(v.tera.clone(), self.kind_of(&v.tera))),
            None => Err(Problem::at(pos, format!("undefined variable \"{name}\""))),
        }
    }

    /// A call of Go builtin or confd helper `name`.
    fn call(&mut self, name: &str, args: Vec<Expr>, pos: Pos) -> Result<Expr> {
        match name {
            "and" | "or" => {
                if args.is_empty() {
                    return Err(Problem::at(
                        pos,
                        format!("{name} needs at least one argument"),
                    ));
                }
                return Ok(Expr::new(
                    format!("go_{name}(args={})", self.list_literal(&args)),
                    Kind::Any,
                ));
            }
            "not" => {
                let [arg] = args.as_slice() else {
                    return Err(Problem::at(pos, "not takes exactly one argument"));
                };
                return Ok(Expr::new(format!("(not {})", truth(arg)), Kind::Bool));
            }
            "call" => {
                return Err(Problem::at(
                    pos,
                    "call: confd's templates hold no function values, so confd fails on this call too; remove it",
                ));
            }
            _ => {}
        }
        let Some(form) = funcs::lookup(name) else {
            return Err(Problem::at(pos, format!("function \"{name}\" not defined")));
        };
        if let ("reverse", [list]) = (name, args.as_slice())
            && list.kind == Kind::KvPairs
        {
            // confd's reverse leaves `gets`'s named list type alone.
            return Ok(list.clone());
        }
        let in_place = funcs::IN_PLACE
            .contains(&name)
            .then(|| args.first().map(|a| a.text.clone()))
            .flatten()
            .filter(|target| self.is_variable(target));
        let int_params = funcs::INT_PARAMS.contains(&name);
        let mut parts: Vec<String> = Vec::new();
        let mut given = args.into_iter().map(|mut arg| {
            if int_params && let Some(as_int) = arg.as_int.take() {
                arg.text = as_int;
            }
            arg
        });
        let mut input: Option<Expr> = None;
        for (i, param) in form.params.iter().enumerate() {
            match given.next() {
                Some(arg) if i == 0 && form.style == Style::Filter => input = Some(arg),
                Some(arg) => parts.push(format!("{param}={}", arg.text)),
                None => break,
            }
        }
        let remaining: Vec<Expr> = given.collect();
        match form.rest {
            Some(rest) => {
                let items = self.list_literal(&remaining);
                parts.push(format!("{rest}={items}"));
            }
            None if !remaining.is_empty() => {
                return Err(Problem::at(
                    pos,
                    format!("wrong number of args for {name}: confd fails on this call too"),
                ));
            }
            None => {}
        }
        let call = match (form.style, input) {
            (Style::Filter, Some(input)) if parts.is_empty() => {
                format!("({} | {})", input.text, form.tera)
            }
            (Style::Filter, Some(input)) => {
                format!("({} | {}({}))", input.text, form.tera, parts.join(", "))
            }
            (Style::Filter, None) => {
                return Err(Problem::at(
                    pos,
                    format!("wrong number of args for {name}: confd fails on this call too"),
                ));
            }
            (Style::Call, _) => format!("{}({})", form.tera, parts.join(", ")),
        };
        if let Some(variable) = in_place {
            // Go changes the list in the variable itself: so does the
            // converted template, before the tag that calls it.
            self.pre.push(format!("{{% set {variable} = {call} %}}"));
            return Ok(Expr::new(variable, form.kind));
        }
        Ok(Expr::new(call, form.kind))
    }
}

/// `base.A.B` with Go's field semantics.
fn with_fields(base: Expr, fields: &[String]) -> Expr {
    fields.iter().fold(base, |value, field| {
        Expr::new(
            format!("go_field(v={}, name={})", value.text, text::string(field)),
            Kind::Any,
        )
    })
}

/// Go's truth of a value as a Tera condition.
pub(super) fn truth(value: &Expr) -> String {
    match value.kind {
        Kind::Bool => value.text.clone(),
        _ => format!("go_truth(v={})", value.text),
    }
}

impl Converter<'_> {
    /// A Tera list literal of `items`. Tera refuses array literals nested
    /// more than two deep in one expression (even through calls), so an
    /// item that holds a list literal itself is computed first, into a
    /// variable, by a statement before the tag.
    fn list_literal(&mut self, items: &[Expr]) -> String {
        let texts: Vec<String> = items
            .iter()
            .map(|item| {
                if array_depth(&item.text) < 2 {
                    return item.text.clone();
                }
                let name = self.scopes.fresh("a");
                self.pre.push(format!("{{% set {name} = {} %}}", item.text));
                name
            })
            .collect();
        format!("[{}]", texts.join(", "))
    }
}

/// How deep array literals nest in Tera source `text` (string literals
/// skipped).
fn array_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A Tera integer literal (a negative one in parentheses, so it is one
/// operand wherever it goes).
fn int(value: i64) -> String {
    if value < 0 {
        format!("({value})")
    } else {
        value.to_string()
    }
}

//! The parser's expression half: pipelines with their declarations,
//! commands, operands (a term and the fields after it) and terms (literals,
//! names, `.`, variables, parenthesized pipelines), after Go 1.19's
//! `parse.go`, with Go's parse-time checks: undefined variables, unknown
//! functions, fields after a literal, non-executable pipeline stages, and the
//! shapes of declarations.

use super::ParseError;
use super::ast::{Arg, Command, Number, NumberValue, Pipeline, Var};
use super::lex::{Kind, Token};
use super::number::{NumberError, check_complex, read_number};
use super::parser::Parser;
use super::quote::{UnquoteError, go_quote, unquote_rune};

type Result<T> = std::result::Result<T, ParseError>;

impl Parser<'_> {
    /// `declarations? command ('|' command)*` up to `end` (`}}` or `)`),
    /// which is consumed. `context` names the construct in messages.
    pub(crate) fn pipeline(&mut self, context: &str, end: Kind) -> Result<Pipeline> {
        let first = self.peek_non_space();
        let mut pipe = Pipeline {
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
            pos: self.pos(first.start),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let token = self.next_non_space();
            match token.kind {
                kind if kind == end => {
                    self.check_pipeline(&pipe, context, token)?;
                    return Ok(pipe);
                }
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let command = self.command()?;
                    pipe.cmds.push(command);
                }
                _ => return self.unexpected(token, context),
            }
        }
    }

    /// `$x :=`, `$x =`, and in `range` `$i, $v :=`. A declared name is in
    /// scope from here on, so Go accepts `$x := $x` (and fails at run time).
    fn declarations(&mut self, pipe: &mut Pipeline, context: &str) -> Result<()> {
        while self.peek_non_space().kind == Kind::Variable {
            let mark = self.mark();
            let var = self.next();
            let next = self.peek_non_space();
            let declared = Var {
                name: self.text(var).to_string(),
                pos: self.pos(var.start),
            };
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    self.vars.push(declared.name.clone());
                    pipe.decl.push(declared);
                    return Ok(());
                }
                Kind::Char if self.text(next) == "," => {
                    self.next_non_space();
                    self.vars.push(declared.name.clone());
                    pipe.decl.push(declared);
                    if context == "range" && pipe.decl.len() < 2 {
                        let after = self.peek_non_space();
                        match after.kind {
                            // The second variable of a range, or nothing
                            // (then the pipeline is reported empty).
                            Kind::Variable | Kind::RightDelim | Kind::RightParen => continue,
                            _ => {
                                return self
                                    .error(after.start, "range can only initialize variables");
                            }
                        }
                    }
                    return self.error(next.start, format!("too many declarations in {context}"));
                }
                _ => {
                    // Not a declaration: the variable is an operand.
                    self.rewind(mark);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Go's `checkPipeline`: at least one command, and only the first may
    /// start with a constant.
    fn check_pipeline(&self, pipe: &Pipeline, context: &str, end: Token) -> Result<()> {
        if pipe.cmds.is_empty() {
            return self.error(end.start, format!("missing value for {context}"));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                arg @ (Arg::Bool { .. }
                | Arg::Dot(_)
                | Arg::Nil(_)
                | Arg::Number(_)
                | Arg::String { .. }),
            ) = cmd.args.first()
            {
                let pos = arg.pos();
                return Err(ParseError::new(
                    pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                    super::ErrorKind::Go,
                ));
            }
        }
        Ok(())
    }

    /// Space-separated operands up to `|` (consumed), `}}` or `)` (left).
    fn command(&mut self) -> Result<Command> {
        let start = self.peek_non_space();
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return self.unexpected(token, "operand"),
            }
            break;
        }
        if args.is_empty() {
            return self.error(start.start, "empty command");
        }
        Ok(Command {
            args,
            pos: self.pos(start.start),
        })
    }

    /// A term and the fields looked up on it (`(…).A.B`, `$x.A`).
    fn operand(&mut self) -> Result<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            return Ok(Some(term));
        }
        let first_field = self.peek();
        let mut names = Vec::new();
        while self.peek().kind == Kind::Field {
            let field = self.next();
            names.push(self.text(field)[1..].to_string());
        }
        Ok(Some(match term {
            Arg::Field {
                names: mut base,
                pos,
            } => {
                base.extend(names);
                Arg::Field { names: base, pos }
            }
            Arg::Variable {
                name,
                mut fields,
                pos,
            } => {
                fields.extend(names);
                Arg::Variable { name, fields, pos }
            }
            Arg::Bool { .. } | Arg::String { .. } | Arg::Number(_) | Arg::Nil(_) | Arg::Dot(_) => {
                let spelled = match &term {
                    Arg::Bool { value, .. } => value.to_string(),
                    Arg::String { text, .. } => text.clone(),
                    Arg::Number(n) => n.text.clone(),
                    Arg::Nil(_) => "nil".to_string(),
                    _ => ".".to_string(),
                };
                return self.error(
                    first_field.start,
                    format!("unexpected . after term {}", go_quote(&spelled)),
                );
            }
            base => {
                let pos = base.pos();
                Arg::Chain {
                    base: Box::new(base),
                    fields: names,
                    pos,
                }
            }
        }))
    }

    /// A literal, function name, `.`, field, variable or parenthesized
    /// pipeline; `None` (nothing consumed) when the next token is none.
    fn term(&mut self) -> Result<Option<Arg>> {
        let token = self.next_non_space();
        let pos = self.pos(token.start);
        let text = self.text(token);
        let arg = match token.kind {
            Kind::Identifier => {
                if !self.has_function(text) {
                    return self.error(
                        token.start,
                        format!("function {} not defined", go_quote(text)),
                    );
                }
                Arg::Identifier {
                    name: text.to_string(),
                    pos,
                }
            }
            Kind::Dot => Arg::Dot(pos),
            Kind::Nil => Arg::Nil(pos),
            Kind::Variable => {
                if !self.vars.iter().any(|v| v == text) {
                    return self.error(
                        token.start,
                        format!("undefined variable {}", go_quote(text)),
                    );
                }
                Arg::Variable {
                    name: text.to_string(),
                    fields: Vec::new(),
                    pos,
                }
            }
            Kind::Field => Arg::Field {
                names: vec![text[1..].to_string()],
                pos,
            },
            Kind::Bool => Arg::Bool {
                value: text == "true",
                pos,
            },
            Kind::CharConstant => Arg::Number(self.char_number(token)?),
            Kind::Complex => {
                if let Err(message) = check_complex(text) {
                    return self.error(token.start, message);
                }
                self.defer_unsupported(
                    token.start,
                    format!("complex number {text} is not supported"),
                );
                Arg::Number(placeholder(text, pos))
            }
            Kind::Number => Arg::Number(self.number(token)?),
            Kind::LeftParen => {
                let pipe = self.nested(token.start, |p| {
                    p.pipeline("parenthesized pipeline", Kind::RightParen)
                })?;
                Arg::Pipe {
                    pipe: Box::new(pipe),
                    pos,
                }
            }
            Kind::String | Kind::RawString => Arg::String {
                value: self.unquote(token)?,
                raw: token.kind == Kind::RawString,
                text: text.to_string(),
                pos,
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }

    fn char_number(&self, token: Token) -> Result<Number> {
        let text = self.text(token);
        match unquote_rune(text) {
            Ok(c) => Ok(Number {
                text: text.to_string(),
                value: NumberValue::Char(c),
                int: Some(i64::from(u32::from(c))),
                uint: Some(u64::from(u32::from(c))),
                float: Some(f64::from(u32::from(c))),
                pos: self.pos(token.start),
            }),
            Err(UnquoteError::Syntax(why)) if why.starts_with("malformed") => {
                self.error(token.start, why)
            }
            Err(UnquoteError::Syntax(why)) => {
                self.error(token.start, format!("invalid syntax ({why})"))
            }
            // A character constant is one rune: never bytes to assemble.
            Err(UnquoteError::NotUtf8(_)) => self.error(token.start, "invalid syntax"),
        }
    }

    fn number(&mut self, token: Token) -> Result<Number> {
        let text = self.text(token);
        match read_number(text) {
            Ok(r) => Ok(Number {
                text: text.to_string(),
                value: r.value,
                int: r.int,
                uint: r.uint,
                float: r.float,
                pos: self.pos(token.start),
            }),
            Err(NumberError::Go(message)) => self.error(token.start, message),
            Err(NumberError::Imaginary) => {
                self.defer_unsupported(
                    token.start,
                    format!("imaginary number {text} is not supported"),
                );
                Ok(placeholder(text, self.pos(token.start)))
            }
        }
    }
}

/// Stands in for a number this tree cannot hold (complex), so that parsing
/// can go on to find any error Go would report; it never reaches a caller.
fn placeholder(text: &str, pos: super::ast::Pos) -> Number {
    Number {
        text: text.to_string(),
        value: NumberValue::Float(f64::NAN),
        int: None,
        uint: None,
        float: None,
        pos,
    }
}

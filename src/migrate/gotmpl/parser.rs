//! The parser's state and its structural half: the top level, `define`,
//! lists of text and actions, and the control structures (`if`, `range`,
//! `with`, `else`, `end`, `template`, `block`, `break`, `continue`), after
//! Go 1.19's `parse.go`. Pipelines and their operands are in `pipeline.rs`.
//!
//! Variable scoping is Go's, which is decided at parse time: the parser keeps
//! the list of declared names; a control structure remembers its length
//! before its pipeline and cuts back to it after its `{{end}}`, so a variable
//! declared in the pipeline or anywhere in the body (else branch included)
//! lives until that `{{end}}`. `define` and `block` bodies start afresh with
//! only `$`.

use super::ast::{Control, Define, DefineKind, List, Node, Pos, Template};
use super::lex::{Kind, LexError, Token};
use super::position::LineIndex;
use super::quote::{UnquoteError, go_quote, go_quote_prefix, unquote};
use super::{ErrorKind, ParseError};

/// What a list of nodes ended with.
enum Ending {
    /// `{{end}}`.
    End,
    /// `{{else}}`, or the `{{else` of `{{else if`, with the `if` left to read.
    Else(usize),
}

/// Where a list is, for the message when the file ends inside it.
struct Open {
    what: &'static str,
    offset: usize,
}

pub(crate) struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    lex_error: Option<LexError>,
    /// Index of the next token.
    idx: usize,
    lines: LineIndex<'a>,
    functions: &'a dyn Fn(&str) -> bool,
    /// Variables in scope, innermost last; `$` always first.
    pub(crate) vars: Vec<String>,
    /// How many `range` bodies enclose the current point (of this template:
    /// a `block` body starts at zero, as in Go).
    range_depth: usize,
    /// How deep control structures, named templates and parentheses nest
    /// here, against [`MAX_NESTING`].
    nesting: usize,
    /// The first thing Go accepts that this tree cannot hold.
    deferred: Option<ParseError>,
    /// The constructs whose `{{end}}` is still to come.
    open: Vec<Open>,
    defines: Vec<Define>,
}

type Result<T> = std::result::Result<T, ParseError>;

/// How deep constructs (control structures, named templates, parentheses)
/// may nest. Go has no limit; this parser recurses like Go's, and a bound
/// keeps a hostile file from exhausting the stack: an unoptimized build
/// spends several kilobytes of stack per level, and test threads have 2 MiB.
/// Real templates nest a handful of levels.
pub(crate) const MAX_NESTING: usize = 50;

impl<'a> Parser<'a> {
    pub(crate) fn new(
        src: &'a str,
        tokens: Vec<Token>,
        lex_error: Option<LexError>,
        functions: &'a dyn Fn(&str) -> bool,
    ) -> Self {
        Parser {
            src,
            tokens,
            lex_error,
            idx: 0,
            lines: LineIndex::new(src),
            functions,
            vars: vec!["$".to_string()],
            range_depth: 0,
            nesting: 0,
            deferred: None,
            open: Vec::new(),
            defines: Vec::new(),
        }
    }

    // --- positions and errors -------------------------------------------

    /// The line and column (in characters) of a byte offset.
    pub(crate) fn pos(&self, offset: usize) -> Pos {
        self.lines.pos(offset)
    }

    pub(crate) fn error<T>(&self, offset: usize, message: impl Into<String>) -> Result<T> {
        Err(ParseError::new(
            self.pos(offset),
            message.into(),
            ErrorKind::Go,
        ))
    }

    pub(crate) fn unsupported<T>(&self, offset: usize, message: impl Into<String>) -> Result<T> {
        Err(ParseError::new(
            self.pos(offset),
            message.into(),
            ErrorKind::Unsupported,
        ))
    }

    /// Notes something Go accepts but this tree cannot hold. Parsing goes
    /// on, so that a later error Go would report still wins (the template is
    /// then broken for confd too); the first such note is the result if
    /// nothing else is wrong.
    pub(crate) fn defer_unsupported(&mut self, offset: usize, message: impl Into<String>) {
        if self.deferred.is_none() {
            self.deferred = Some(ParseError::new(
                self.pos(offset),
                message.into(),
                ErrorKind::Unsupported,
            ));
        }
    }

    /// A string literal's value, or Go's complaint about it.
    pub(crate) fn unquote(&mut self, token: Token) -> Result<String> {
        match unquote(self.text(token)) {
            Ok(value) => Ok(value),
            Err(UnquoteError::Syntax(why)) => {
                self.error(token.start, format!("invalid syntax ({why})"))
            }
            Err(UnquoteError::NotUtf8(lossy)) => {
                self.defer_unsupported(
                    token.start,
                    "string literal is not valid UTF-8 (Go allows it; a converted template cannot hold it)",
                );
                Ok(lossy)
            }
        }
    }

    /// Go's complaint about a token it did not expect in `context`.
    pub(crate) fn unexpected<T>(&self, token: Token, context: &str) -> Result<T> {
        if token.kind == Kind::Error {
            return self.lex_failure(token);
        }
        self.error(
            token.start,
            format!("unexpected {} in {context}", self.describe(token)),
        )
    }

    /// The lexer's error; like Go, it names where the action started when
    /// that is on another line.
    fn lex_failure<T>(&self, token: Token) -> Result<T> {
        let Some(error) = &self.lex_error else {
            return self.error(token.start, "unreadable input");
        };
        let mut message = error.message.clone();
        if let Some(action) = error.action {
            let started = self.pos(action);
            if started.line != self.pos(error.offset).line {
                match message.strip_suffix(" action") {
                    Some(what) => message = format!("{what} action started at {started}"),
                    None => message = format!("{message} in action started at {started}"),
                }
            }
        }
        self.error(error.offset, message)
    }

    /// A token as Go's messages show it: `EOF`, `<keyword>`, or quoted (cut
    /// to ten characters).
    fn describe(&self, token: Token) -> String {
        let text = self.text(token);
        match token.kind {
            Kind::Eof => "EOF".to_string(),
            kind if kind.is_keyword() => format!("<{text}>"),
            _ if text.len() > 10 => format!("{}...", go_quote_prefix(text, 10)),
            _ => go_quote(text),
        }
    }

    // --- tokens ---------------------------------------------------------

    pub(crate) fn text(&self, token: Token) -> &'a str {
        self.src.get(token.start..token.end).unwrap_or("")
    }

    /// The next token. The list ends with `Eof` or `Error`, which repeat.
    pub(crate) fn next(&mut self) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        let token = self.tokens.get(self.idx.min(last)).copied();
        self.idx = (self.idx + 1).min(self.tokens.len());
        token.unwrap_or(Token {
            kind: Kind::Eof,
            start: self.src.len(),
            end: self.src.len(),
        })
    }

    pub(crate) fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    pub(crate) fn peek(&mut self) -> Token {
        let token = self.next();
        self.backup();
        token
    }

    pub(crate) fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.kind != Kind::Space {
                return token;
            }
        }
    }

    /// The next non-space token, left to be read (the spaces are consumed).
    pub(crate) fn peek_non_space(&mut self) -> Token {
        let token = self.next_non_space();
        self.backup();
        token
    }

    pub(crate) fn mark(&self) -> usize {
        self.idx
    }

    pub(crate) fn rewind(&mut self, mark: usize) {
        self.idx = mark;
    }

    fn expect(&mut self, kind: Kind, context: &str) -> Result<Token> {
        let token = self.next_non_space();
        if token.kind != kind {
            return self.unexpected(token, context);
        }
        Ok(token)
    }

    /// Runs `body` one level deeper, refusing to go beyond [`MAX_NESTING`].
    pub(crate) fn nested<T>(
        &mut self,
        offset: usize,
        body: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        if self.nesting >= MAX_NESTING {
            return self.unsupported(
                offset,
                format!("nested more than {MAX_NESTING} levels deep"),
            );
        }
        self.nesting += 1;
        let result = body(self);
        self.nesting -= 1;
        result
    }

    pub(crate) fn has_function(&self, name: &str) -> bool {
        (self.functions)(name)
    }

    // --- structure ------------------------------------------------------

    /// The whole file: text and actions, with `{{define}}` allowed here only.
    pub(crate) fn parse_file(mut self, name: &str) -> Result<Template> {
        let first = self.peek().start;
        let root_pos = self.pos(first);
        let mut nodes = Vec::new();
        while self.peek().kind != Kind::Eof {
            let token = self.peek();
            if token.kind == Kind::LeftDelim {
                let mark = self.mark();
                self.next();
                if self.next_non_space().kind == Kind::Define {
                    self.definition(token.start)?;
                    continue;
                }
                self.rewind(mark);
            }
            match self.text_or_action()? {
                Item::Node(node) => nodes.push(node),
                Item::End(offset) => return self.error(offset, "unexpected {{end}}"),
                Item::Else(offset) => return self.error(offset, "unexpected {{else}}"),
            }
        }
        let mut root = List {
            nodes,
            pos: root_pos,
        };
        // The file's own body joins the set of named templates under its
        // name, by the rule that governs two definitions of one name.
        if let Some(existing) = self.defines.iter_mut().find(|d| d.name == name) {
            if !is_empty_tree(&existing.body) {
                if !is_empty_tree(&root) {
                    let message = format!(
                        "template: multiple definition of template {}",
                        go_quote(name)
                    );
                    return Err(ParseError::new(existing.pos, message, ErrorKind::Go));
                }
                root = existing.body.clone();
            } else {
                existing.body = root.clone();
            }
        }
        if let Some(unsupported) = self.deferred {
            return Err(unsupported);
        }
        Ok(Template {
            name: name.to_string(),
            root,
            defines: self.defines,
        })
    }

    /// Adds a named template, as Go's `Tree.add`: an empty definition
    /// (only spaces and comments) gives way to a later one, two non-empty
    /// ones are an error.
    fn add_define(&mut self, define: Define, offset: usize) -> Result<()> {
        match self.defines.iter_mut().find(|d| d.name == define.name) {
            None => self.defines.push(define),
            Some(existing) if is_empty_tree(&existing.body) => *existing = define,
            Some(_) if is_empty_tree(&define.body) => {}
            Some(_) => {
                return self.error(
                    offset,
                    format!(
                        "template: multiple definition of template {}",
                        go_quote(&define.name)
                    ),
                );
            }
        }
        Ok(())
    }

    /// `{{define "name"}} … {{end}}`; the keyword has been read.
    fn definition(&mut self, delim: usize) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let name_token = self.next_non_space();
        if !matches!(name_token.kind, Kind::String | Kind::RawString) {
            return self.unexpected(name_token, CONTEXT);
        }
        let name = self.unquote(name_token)?;
        self.expect(Kind::RightDelim, CONTEXT)?;
        let body = self.fresh_scope("{{define}}", delim, |p| p.item_list())?;
        let (body, ending) = body;
        if let Ending::Else(offset) = ending {
            return self.error(offset, format!("unexpected {{{{else}}}} in {CONTEXT}"));
        }
        let define = Define {
            name,
            body,
            kind: DefineKind::Define,
            pos: self.pos(delim),
        };
        self.add_define(define, delim)
    }

    /// Runs `body` with only `$` in scope and outside any `range`, as Go
    /// parses a `define` or `block` body with a tree of its own.
    fn fresh_scope<T>(
        &mut self,
        what: &'static str,
        offset: usize,
        body: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let depth = std::mem::replace(&mut self.range_depth, 0);
        self.open.push(Open { what, offset });
        let result = self.nested(offset, body);
        self.open.pop();
        self.vars = vars;
        self.range_depth = depth;
        result
    }

    /// Text and actions up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> Result<(List, Ending)> {
        let first = self.peek_non_space().start;
        let pos = self.pos(first);
        let mut nodes = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(node) => nodes.push(node),
                Item::End(_) => return Ok((List { nodes, pos }, Ending::End)),
                Item::Else(offset) => return Ok((List { nodes, pos }, Ending::Else(offset))),
            }
        }
        let eof = self.src.len();
        let message = match self.open.last() {
            Some(open) => format!(
                "unexpected EOF (the {} at {} has no {{{{end}}}})",
                open.what,
                self.pos(open.offset)
            ),
            None => "unexpected EOF".to_string(),
        };
        self.error(eof, message)
    }

    fn text_or_action(&mut self) -> Result<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Text => Ok(Item::Node(Node::Text {
                text: self.text(token).to_string(),
                pos: self.pos(token.start),
            })),
            Kind::Comment => {
                let text = self.text(token);
                let inner = text
                    .strip_prefix("/*")
                    .and_then(|t| t.strip_suffix("*/"))
                    .unwrap_or(text);
                Ok(Item::Node(Node::Comment {
                    text: inner.to_string(),
                    pos: self.pos(token.start),
                }))
            }
            Kind::LeftDelim => self.action(token.start),
            _ => self.unexpected(token, "input"),
        }
    }

    /// After `{{`: a control keyword, or a pipeline to output.
    fn action(&mut self, delim: usize) -> Result<Item> {
        let token = self.next_non_space();
        let node = match token.kind {
            Kind::Block => self.block(delim)?,
            Kind::Break => self.loop_control(delim, "{{break}}", Node::Break)?,
            Kind::Continue => self.loop_control(delim, "{{continue}}", Node::Continue)?,
            Kind::Else => return self.else_control(delim),
            Kind::End => {
                self.expect(Kind::RightDelim, "end")?;
                return Ok(Item::End(delim));
            }
            Kind::If => Node::If(self.control(delim, "if", true)?),
            Kind::Range => Node::Range(self.control(delim, "range", false)?),
            Kind::With => Node::With(self.control(delim, "with", false)?),
            Kind::Template => self.template_call(delim)?,
            _ => {
                self.backup();
                // Variables declared here live until the enclosing {{end}}.
                let pipe = self.pipeline("command", Kind::RightDelim)?;
                Node::Action {
                    pipe,
                    pos: self.pos(delim),
                }
            }
        };
        Ok(Item::Node(node))
    }

    /// `{{break}}` or `{{continue}}`.
    fn loop_control(&mut self, delim: usize, spelled: &str, node: fn(Pos) -> Node) -> Result<Node> {
        let token = self.next_non_space();
        if token.kind != Kind::RightDelim {
            return self.unexpected(token, spelled);
        }
        if self.range_depth == 0 {
            return self.error(delim, format!("{spelled} outside {{{{range}}}}"));
        }
        Ok(node(self.pos(delim)))
    }

    /// `{{else}}`, or the start of `{{else if …}}` (the `if` stays unread).
    fn else_control(&mut self, delim: usize) -> Result<Item> {
        if self.peek_non_space().kind == Kind::If {
            return Ok(Item::Else(delim));
        }
        self.expect(Kind::RightDelim, "else")?;
        Ok(Item::Else(delim))
    }

    /// The pipeline, body and optional else of `if`, `range` or `with`.
    fn control(&mut self, delim: usize, context: &'static str, else_if: bool) -> Result<Control> {
        let scope = self.vars.len();
        let what = match context {
            "if" => "{{if}}",
            "range" => "{{range}}",
            _ => "{{with}}",
        };
        self.open.push(Open {
            what,
            offset: delim,
        });
        let result = self.nested(delim, |p| p.control_parts(delim, context, else_if));
        self.open.pop();
        self.vars.truncate(scope);
        result
    }

    fn control_parts(
        &mut self,
        delim: usize,
        context: &'static str,
        else_if: bool,
    ) -> Result<Control> {
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let in_range = context == "range";
        self.range_depth += usize::from(in_range);
        let body = self.item_list();
        self.range_depth -= usize::from(in_range);
        let (body, ending) = body?;
        let else_ = match ending {
            Ending::End => None,
            // `{{else if b}}…{{end}}` is `{{else}}{{if b}}…{{end}}{{end}}`:
            // the inner if consumes the only {{end}}.
            Ending::Else(offset) if else_if && self.peek().kind == Kind::If => {
                self.next();
                let inner = self.control(offset, "if", true)?;
                Some(List {
                    nodes: vec![Node::If(inner)],
                    pos: self.pos(offset),
                })
            }
            Ending::Else(_) => {
                let (list, ending) = self.item_list()?;
                if let Ending::Else(offset) = ending {
                    return self.error(offset, "expected end; found {{else}}");
                }
                Some(list)
            }
        };
        Ok(Control {
            pipe,
            body,
            else_,
            pos: self.pos(delim),
        })
    }

    /// `{{template "name"}}` or `{{template "name" pipeline}}`.
    fn template_call(&mut self, delim: usize) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let name = self.template_name(CONTEXT)?;
        let pipe = if self.next_non_space().kind == Kind::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        };
        Ok(Node::Template {
            name,
            pipe,
            block: false,
            pos: self.pos(delim),
        })
    }

    fn template_name(&mut self, context: &str) -> Result<String> {
        let token = self.next_non_space();
        match token.kind {
            Kind::String | Kind::RawString => self.unquote(token),
            _ => self.unexpected(token, context),
        }
    }

    /// `{{block "name" pipeline}} … {{end}}`: defines the template and
    /// calls it here.
    fn block(&mut self, delim: usize) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let name = self.template_name(CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        let (body, ending) = self.fresh_scope("{{block}}", delim, |p| p.item_list())?;
        if let Ending::Else(offset) = ending {
            return self.error(offset, format!("unexpected {{{{else}}}} in {CONTEXT}"));
        }
        let define = Define {
            name: name.clone(),
            body,
            kind: DefineKind::Block,
            pos: self.pos(delim),
        };
        self.add_define(define, delim)?;
        Ok(Node::Template {
            name,
            pipe: Some(pipe),
            block: true,
            pos: self.pos(delim),
        })
    }
}

/// One step of a list: a node, or the end of the list.
enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}

/// Go's `IsEmptyTree`: nothing but white space and comments.
fn is_empty_tree(list: &List) -> bool {
    list.nodes.iter().all(|node| match node {
        Node::Text { text, .. } => text.trim().is_empty(),
        Node::Comment { .. } => true,
        _ => false,
    })
}

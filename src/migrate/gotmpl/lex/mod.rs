//! The lexer: template text → tokens, following Go 1.19's
//! `text/template/parse/lex.go` rule for rule, because trimming, comments and
//! what counts as a number are decided here and must match Go byte for byte.
//!
//! Go runs its lexer beside the parser; this one runs first and hands over
//! the whole token list, ending with `Eof` or one `Error` token. That is the
//! same thing: Go's lexer never looks at the parser's state, and the parser
//! consumes tokens in order, so it meets any parse error that comes before
//! the lexing error first, as Go's does.
//!
//! The scanners for names, numbers and quoted literals are in `scan.rs`.
//!
//! Trimming: `{{- ` (dash, then an ASCII space, tab, CR or LF) drops the
//! ASCII spaces at the end of the text before it, ` -}}` those at the start of
//! the text after it. Without the space (`{{-3}}`) the dash is a minus sign.
//! Comments `{{/* … */}}` must start right after `{{` (or `{{- `) and end
//! right before `}}` (or ` -}}`).

use super::quote::go_unicode;

/// What a token is (Go's `itemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A lexing error; the message is in [`Lexed::error`].
    Error,
    Bool,
    /// A printable ASCII character with no other meaning (`,` and the like).
    Char,
    CharConstant,
    Comment,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords.
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl Kind {
    /// Keywords print as `<word>` in Go's messages.
    pub(crate) fn is_keyword(self) -> bool {
        matches!(
            self,
            Kind::Block
                | Kind::Break
                | Kind::Continue
                | Kind::Dot
                | Kind::Define
                | Kind::Else
                | Kind::End
                | Kind::If
                | Kind::Nil
                | Kind::Range
                | Kind::Template
                | Kind::With
        )
    }
}

/// A token: its kind and the byte range of its text in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// A lexing error: where, and Go's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub offset: usize,
    pub message: String,
    /// The `{{` of the action the error is in (not for comments).
    pub action: Option<usize>,
}

/// The tokens of a source; the last is `Eof`, or `Error` with `error` set.
#[derive(Debug)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub error: Option<LexError>,
}

/// Whether `break` and `continue` are keywords: Go makes them plain
/// identifiers when the function map defines functions of those names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keywords {
    pub break_ok: bool,
    pub continue_ok: bool,
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";

/// Go's space characters for trimming and separating arguments.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Go's `isAlphaNumeric` (`_`, letters, digits). Rust's alphabetic and
/// numeric classes are slightly wider than Go's `IsLetter`/`IsDigit` (they
/// take in combining marks and non-decimal numerals), which only matters for
/// names no confd template uses.
fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(char::from(b[0])) && b[1] == b'-'
}

fn trim_space_len_end(s: &str) -> usize {
    s.len() - s.trim_end_matches(is_space).len()
}

fn trim_space_len_start(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

/// Splits a template into tokens.
pub(crate) fn lex(input: &str, keywords: Keywords) -> Lexed {
    let mut lexer = Lexer {
        input,
        pos: 0,
        start: 0,
        action_start: 0,
        in_action: false,
        paren_depth: 0,
        keywords,
        tokens: Vec::new(),
        error: None,
    };
    let mut state = State::Text;
    loop {
        state = match state {
            State::Text => lexer.text(),
            State::LeftDelim => lexer.left_delim(),
            State::Comment => lexer.comment(),
            State::RightDelim => lexer.right_delim(),
            State::InsideAction => lexer.inside_action(),
            State::Done => break,
        };
    }
    Lexed {
        tokens: lexer.tokens,
        error: lexer.error,
    }
}

/// Where the lexer is (Go's state functions; the small scanners for
/// strings, numbers and names are methods that return to `InsideAction`).
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Done,
}

struct Lexer<'a> {
    input: &'a str,
    /// Where scanning is.
    pos: usize,
    /// Where the pending token starts.
    start: usize,
    /// The `{{` of the current action, for "unclosed action".
    action_start: usize,
    /// Between an action's `{{` and `}}` (comments excluded).
    in_action: bool,
    paren_depth: i32,
    keywords: Keywords,
    tokens: Vec<Token>,
    error: Option<LexError>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes the next character if it is one of `valid`.
    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn emit(&mut self, kind: Kind) {
        self.tokens.push(Token {
            kind,
            start: self.start,
            end: self.pos,
        });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    /// Ends the token list with an error at `offset`.
    fn fail(&mut self, offset: usize, message: String) -> State {
        self.tokens.push(Token {
            kind: Kind::Error,
            start: offset,
            end: offset,
        });
        let action = self.in_action.then_some(self.action_start);
        self.error = Some(LexError {
            offset,
            message,
            action,
        });
        State::Done
    }

    /// At `}}`, or at ` -}}`: (at a delimiter, with a trim marker).
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[2..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    /// Text up to the next `{{`, trimmed at its end when a `{{- ` follows.
    fn text(&mut self) -> State {
        let Some(found) = self.rest().find(LEFT_DELIM) else {
            self.pos = self.input.len();
            if self.pos > self.start {
                self.emit(Kind::Text);
            }
            self.emit(Kind::Eof);
            return State::Done;
        };
        let delim = self.pos + found;
        let mut text_end = delim;
        if has_left_trim_marker(&self.input[delim + LEFT_DELIM.len()..]) {
            text_end -= trim_space_len_end(&self.input[self.start..delim]);
        }
        if text_end > self.start {
            self.pos = text_end;
            self.emit(Kind::Text);
        }
        self.pos = delim;
        self.ignore();
        State::LeftDelim
    }

    /// `{{`, `{{- `, and the start of a comment.
    fn left_delim(&mut self) -> State {
        self.action_start = self.pos;
        self.pos += LEFT_DELIM.len();
        let after_marker = if has_left_trim_marker(self.rest()) {
            2
        } else {
            0
        };
        if self.rest()[after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return State::Comment;
        }
        self.emit(Kind::LeftDelim);
        self.in_action = true;
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    /// `/* … */` up to and including its closing delimiter.
    fn comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(len) = self.rest().find(RIGHT_COMMENT) else {
            return self.fail(self.start, "unclosed comment".to_string());
        };
        self.pos += len + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.fail(
                self.pos,
                "comment ends before closing delimiter".to_string(),
            );
        }
        self.emit(Kind::Comment);
        if trim {
            self.pos += 2;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += trim_space_len_start(self.rest());
        }
        self.ignore();
        State::Text
    }

    /// `}}` or ` -}}`, trimming the text after it for the latter.
    fn right_delim(&mut self) -> State {
        let trim = has_right_trim_marker(self.rest());
        if trim {
            self.pos += 2;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(Kind::RightDelim);
        self.in_action = false;
        if trim {
            self.pos += trim_space_len_start(self.rest());
            self.ignore();
        }
        State::Text
    }

    /// One token inside an action.
    fn inside_action(&mut self) -> State {
        if self.at_right_delim().0 {
            if self.paren_depth == 0 {
                return State::RightDelim;
            }
            return self.fail(self.pos, "unclosed left paren".to_string());
        }
        let here = self.pos;
        let Some(c) = self.next() else {
            return self.fail(self.action_start, "unclosed action".to_string());
        };
        match c {
            c if is_space(c) => {
                self.pos = here;
                return self.space();
            }
            '=' => self.emit(Kind::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.fail(here, "expected :=".to_string());
                }
                self.emit(Kind::Declare);
            }
            '|' => self.emit(Kind::Pipe),
            '"' => return self.quote(),
            '`' => return self.raw_quote(),
            '$' => return self.variable(),
            '\'' => return self.char_constant(),
            '.' if self.peek().is_some_and(|n| !n.is_ascii_digit()) => {
                return self.field_or_variable(Kind::Field);
            }
            '.' | '+' | '-' | '0'..='9' => {
                self.pos = here;
                return self.number();
            }
            c if is_alphanumeric(c) => {
                self.pos = here;
                return self.identifier();
            }
            '(' => {
                self.emit(Kind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(Kind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.fail(here, format!("unexpected right paren {}", go_unicode(c)));
                }
            }
            c if c.is_ascii() && !c.is_ascii_control() => self.emit(Kind::Char),
            c => {
                return self.fail(
                    here,
                    format!("unrecognized character in action: {}", go_unicode(c)),
                );
            }
        }
        State::InsideAction
    }

    /// A run of spaces; a single space that belongs to ` -}}` is left to
    /// the delimiter.
    fn space(&mut self) -> State {
        let mut count = 0;
        while self.peek().is_some_and(is_space) {
            self.next();
            count += 1;
        }
        let last = self.pos - 1;
        if has_right_trim_marker(&self.input[last..])
            && self.input[last + 2..].starts_with(RIGHT_DELIM)
        {
            self.pos = last;
            if count == 1 {
                return State::RightDelim;
            }
        }
        self.emit(Kind::Space);
        State::InsideAction
    }
}

mod scan;

#[cfg(test)]
mod tests;

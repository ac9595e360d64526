//! The lexer's scanners for the pieces of an action that are more than
//! one character: names (functions, keywords, fields, variables), numbers,
//! and quoted strings and characters. Each starts where `inside_action`
//! found the first character and returns to it, or ends the tokens with an
//! error, as Go's state functions do.

use super::{Kind, Lexer, RIGHT_DELIM, State, is_alphanumeric, is_space};
use crate::migrate::gotmpl::quote::{go_quote, go_unicode};

impl Lexer<'_> {
    /// Whether what follows may end a name: space, `.`, `,`, `|`, `:`,
    /// parentheses, `}}` or the end ("$x+2" is refused, in Go's words, in
    /// case arithmetic is ever added).
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn bad_character(&mut self) -> State {
        let at = self.pos;
        let message = match self.peek() {
            Some(c) => format!("bad character {}", go_unicode(c)),
            None => "bad character at end of input".to_string(),
        };
        self.fail(at, message)
    }

    /// A function name, keyword, `true` or `false`.
    pub(super) fn identifier(&mut self) -> State {
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        let kind = match &self.input[self.start..self.pos] {
            "block" => Kind::Block,
            "break" if self.keywords.break_ok => Kind::Break,
            "continue" if self.keywords.continue_ok => Kind::Continue,
            "define" => Kind::Define,
            "else" => Kind::Else,
            "end" => Kind::End,
            "if" => Kind::If,
            "nil" => Kind::Nil,
            "range" => Kind::Range,
            "template" => Kind::Template,
            "with" => Kind::With,
            "true" | "false" => Kind::Bool,
            _ => Kind::Identifier,
        };
        self.emit(kind);
        State::InsideAction
    }

    /// After `$`: `$` alone or `$name`.
    pub(super) fn variable(&mut self) -> State {
        if self.at_terminator() {
            self.emit(Kind::Variable);
            return State::InsideAction;
        }
        self.field_or_variable(Kind::Variable)
    }

    /// After `.` or `$`: the name (or `.` alone, which is dot).
    pub(super) fn field_or_variable(&mut self, kind: Kind) -> State {
        if self.at_terminator() {
            self.emit(if kind == Kind::Variable {
                Kind::Variable
            } else {
                Kind::Dot
            });
            return State::InsideAction;
        }
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            return self.bad_character();
        }
        self.emit(kind);
        State::InsideAction
    }

    /// A character constant; its contents are checked by the parser.
    pub(super) fn char_constant(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        return self
                            .fail(self.start, "unterminated character constant".to_string());
                    }
                }
                None | Some('\n') => {
                    return self.fail(self.start, "unterminated character constant".to_string());
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::CharConstant);
        State::InsideAction
    }

    /// A number, loosely: the parser checks it exactly. Like Go's, this
    /// takes `1+2i` as one complex token.
    pub(super) fn number(&mut self) -> State {
        if !self.scan_number() {
            let text = &self.input[self.start..self.pos];
            return self.fail(self.start, format!("bad number syntax: {}", go_quote(text)));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = &self.input[self.start..self.pos];
                return self.fail(self.start, format!("bad number syntax: {}", go_quote(text)));
            }
            self.emit(Kind::Complex);
        } else {
            self.emit(Kind::Number);
        }
        State::InsideAction
    }

    fn scan_number(&mut self) -> bool {
        const DECIMAL: &str = "0123456789_";
        const HEX: &str = "0123456789abcdefABCDEF_";
        self.accept("+-");
        let mut digits = DECIMAL;
        if self.accept("0") {
            // A leading 0 alone does not make a float octal, so octal
            // digits are only taken after 0o.
            if self.accept("xX") {
                digits = HEX;
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits == DECIMAL && self.accept("eE") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        if digits == HEX && self.accept("pP") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }

    /// A `"…"` string; escapes are checked by the parser.
    pub(super) fn quote(&mut self) -> State {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        return self.fail(self.start, "unterminated quoted string".to_string());
                    }
                }
                None | Some('\n') => {
                    return self.fail(self.start, "unterminated quoted string".to_string());
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::String);
        State::InsideAction
    }

    /// A `` `…` `` string, which may span lines.
    pub(super) fn raw_quote(&mut self) -> State {
        loop {
            match self.next() {
                None => {
                    return self.fail(self.start, "unterminated raw quoted string".to_string());
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Kind::RawString);
        State::InsideAction
    }
}

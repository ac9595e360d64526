//! A reader for Go text/template files, faithful to Go 1.19's
//! `text/template/parse` (the Go that built confd 0.16): the same tokens, the
//! same trimming, the same tree, and the same parse-time errors, so that a
//! converter working from the tree sees exactly what confd executes.
//!
//! ```
//! use confd::migrate::gotmpl::{self, Node};
//!
//! let t = gotmpl::parse("app.tmpl", "port={{ getv \"/port\" }}\n", &gotmpl::is_confd_function)?;
//! assert!(matches!(&t.root.nodes[1], Node::Action { .. }));
//! # Ok::<(), gotmpl::ParseError>(())
//! ```
//!
//! Layout: `lex/` (characters → tokens: delimiters, trimming and comments in
//! `mod.rs`, names, numbers and quoted literals in `scan.rs`), `parser.rs`
//! (lists, control structures, `define`/`block`, scoping), `pipeline.rs`
//! (pipelines, commands, operands, terms), `number.rs` and `quote.rs` (Go's
//! number, string and character literal rules), `position.rs` (offsets to
//! lines and columns), `ast.rs` (the tree), `funcs.rs` (the function names
//! confd's templates may call).
//!
//! What this reader does not take, though Go does (each reported as
//! [`ErrorKind::Unsupported`], never silently changed): complex and imaginary
//! numbers and string literals whose bytes are not UTF-8 (`"\xff"`), which
//! are reported only when Go finds nothing else wrong with the file (else
//! Go's error is, as confd fails on it); and constructs nested more than 50
//! levels deep, which stop the parse where they are. Only the default
//! delimiters `{{ }}` exist, as in confd. `{{else with}}` is Go 1.23 syntax
//! and is refused as Go 1.19 refuses it.
//!
//! Differences in messages: Go reports `template: NAME:LINE: message`; this
//! reader reports the line and column of the offending token, and the
//! caller adds the file name. The messages are Go's, with a few made more
//! precise: Go's bare "invalid syntax" for a bad literal names the cause, and
//! "unexpected EOF" names the construct left open.

pub mod ast;
mod funcs;
mod lex;
mod number;
mod parser;
mod pipeline;
mod position;
mod quote;

#[cfg(test)]
mod tests;

use std::fmt;

pub use ast::{
    Arg, Command, Control, Define, DefineKind, List, Node, Number, NumberValue, Pipeline, Pos,
    Template, Var,
};
pub use funcs::{CONFD_CRYPT_FUNCTIONS, CONFD_FUNCTIONS, GO_BUILTINS, is_confd_function};

/// Whether Go would refuse the template too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Go 1.19 refuses this template as well (confd would fail on it).
    Go,
    /// Go accepts it, but it cannot be represented for conversion.
    Unsupported,
}

/// Why a template could not be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct ParseError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, in Go's words where Go has them.
    pub message: String,
    /// Whether Go refuses it too.
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(pos: Pos, message: String, kind: ErrorKind) -> Self {
        ParseError {
            line: pos.line,
            col: pos.col,
            message,
            kind,
        }
    }

    /// Where the error is.
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.col)
    }
}

/// Parses a template file.
///
/// `name` is the template's own name (confd names a template after its
/// file's base name): a `{{define}}` of that name takes part in Go's
/// duplicate-definition rule with the file's body. `functions` says which
/// function names exist: Go refuses an unknown name at parse time; pass
/// [`is_confd_function`] for what confd 0.16 defines. As in Go, `break` and
/// `continue` are plain function names if `functions` accepts them.
pub fn parse(
    name: &str,
    source: &str,
    functions: &dyn Fn(&str) -> bool,
) -> Result<Template, ParseError> {
    let keywords = lex::Keywords {
        break_ok: !functions("break"),
        continue_ok: !functions("continue"),
    };
    let lexed = lex::lex(source, keywords);
    parser::Parser::new(source, lexed.tokens, lexed.error, functions).parse_file(name)
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Go => "Go refuses this template too",
            ErrorKind::Unsupported => "not convertible",
        })
    }
}

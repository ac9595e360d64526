//! The syntax tree of a Go text/template, shaped after Go 1.19's
//! `text/template/parse` nodes so that a converter can follow Go's execution
//! rules node by node.
//!
//! Every node carries a [`Pos`]: the 1-based line and column (counted in
//! characters, not bytes) in the original file of the token that starts it, so
//! that messages can say `file:line:col: …`. Where Go records another token
//! (Go puts an `{{if}}` at its pipeline), this tree records the one a reader
//! would look for; each field says which.
//!
//! Differences from Go's node set, and why:
//! - `{{block "n" p}}…{{end}}` becomes both a [`Define`] (kind
//!   [`DefineKind::Block`]) and a [`Node::Template`] call, exactly what Go's
//!   parser produces, so the converter needs one code path for both.
//! - `{{else if …}}` is an `else` list holding one [`Node::If`], as in Go.
//! - Go's `ChainNode` on a field or variable is folded into that field or
//!   variable (`.A.B`, `$x.A`), as Go's parser does; [`Arg::Chain`] remains only
//!   for a parenthesized pipeline or a function name followed by fields.
//! - A number keeps every reading Go's parser makes of it (int, uint, float),
//!   because Go picks one by context: a function parameter of type `int`
//!   takes [`Number::int`], an untyped use takes [`Number::value`].

use std::fmt;

/// A place in the template source: 1-based line and column, the column
/// counted in characters (so `é` counts one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

impl Pos {
    /// A position from its line and column (both 1-based).
    pub fn new(line: usize, col: usize) -> Self {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One parsed template file: its top-level body and the templates it defines.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The name the file is known by (confd uses the file's base name).
    pub name: String,
    /// The body rendered when the file is executed. When the file's own
    /// body is empty (only spaces and comments) and it defines a template of
    /// its own name, Go runs that definition instead, and so this is its body.
    pub root: List,
    /// `{{define}}` and `{{block}}` definitions in the order they were first
    /// seen; a later non-empty definition replaces an earlier empty one of the
    /// same name in place (Go's rule), two non-empty ones are an error.
    pub defines: Vec<Define>,
}

impl Template {
    /// The definition of the named template, if the file has one.
    pub fn define(&self, name: &str) -> Option<&Define> {
        self.defines.iter().find(|d| d.name == name)
    }
}

/// Where a named template came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefineKind {
    /// `{{define "name"}}…{{end}}`.
    Define,
    /// `{{block "name" pipeline}}…{{end}}`, which also calls it in place.
    Block,
}

/// A named template (`{{define}}` or `{{block}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Define {
    /// The template's name, unquoted.
    pub name: String,
    /// Its body. It sees only `$` (set to the argument it is called with):
    /// variables of the caller are not in scope.
    pub body: List,
    /// Which keyword defined it.
    pub kind: DefineKind,
    /// The `{{` of the `{{define}}` or `{{block}}` action.
    pub pos: Pos,
}

/// A sequence of nodes (Go's `ListNode`).
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// The nodes in source order.
    pub nodes: Vec<Node>,
    /// Where the list starts: its first token, or where it would have been.
    pub pos: Pos,
}

/// A node of a template body.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Literal text, already trimmed as `{{-` and `-}}` ask. Never empty.
    /// Two texts can follow each other (a comment between them).
    Text {
        /// The text to output.
        text: String,
        /// Its first character.
        pos: Pos,
    },
    /// `{{/* … */}}`: outputs nothing; kept so a converter can carry it over.
    Comment {
        /// What is between `/*` and `*/`.
        text: String,
        /// The `/*`.
        pos: Pos,
    },
    /// `{{pipeline}}`: outputs the pipeline's value, unless the pipeline
    /// declares or assigns variables (then it outputs nothing).
    Action {
        /// The pipeline.
        pipe: Pipeline,
        /// The `{{` of the action.
        pos: Pos,
    },
    /// `{{if p}}…{{else}}…{{end}}`; `{{else if q}}` nests an `If` alone in
    /// the else list, as Go does.
    If(Control),
    /// `{{range p}}…{{else}}…{{end}}`: the else list runs when there is
    /// nothing to range over.
    Range(Control),
    /// `{{with p}}…{{else}}…{{end}}`: the body runs with dot set to the
    /// value when it is true.
    With(Control),
    /// `{{template "name"}}` or `{{template "name" pipeline}}` (also what
    /// a `{{block}}` leaves in place).
    Template {
        /// The called template, unquoted.
        name: String,
        /// The argument (dot of the called template); without it, Go
        /// passes nil.
        pipe: Option<Pipeline>,
        /// `true` when this call comes from a `{{block}}`.
        block: bool,
        /// The `{{` of the action.
        pos: Pos,
    },
    /// `{{break}}` (only inside a `range` body).
    Break(Pos),
    /// `{{continue}}` (only inside a `range` body).
    Continue(Pos),
}

/// The parts of `if`, `range` and `with`.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// The condition or the ranged-over value; for `range` it may declare
    /// one or two variables (`$v :=`, `$i, $v :=`).
    pub pipe: Pipeline,
    /// The list run when the pipeline is true (or for each element).
    pub body: List,
    /// The list after `{{else}}`, if any.
    pub else_: Option<List>,
    /// The `{{` of the opening action.
    pub pos: Pos,
}

/// A pipeline: optional declarations, then commands separated by `|`; the
/// value of each command is passed as the last argument of the next.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Variables declared (`$x :=`) or assigned (`$x =`), in order; two only
    /// in `range $i, $v := …`.
    pub decl: Vec<Var>,
    /// `true` for `$x = …` (assign an existing variable), `false` for `:=`.
    pub is_assign: bool,
    /// The commands, at least one.
    pub cmds: Vec<Command>,
    /// The pipeline's first token (the first variable when it declares).
    pub pos: Pos,
}

/// A variable named on the left of `:=` or `=`.
#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    /// Its name with the `$` (`"$x"`).
    pub name: String,
    /// Where it is written.
    pub pos: Pos,
}

/// One command of a pipeline: a function call, or a single operand.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The operands; the first is the function (or method, or value) and the
    /// rest its arguments. Never empty.
    pub args: Vec<Arg>,
    /// The first operand.
    pub pos: Pos,
}

/// An operand of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.`: the current value.
    Dot(Pos),
    /// `nil`.
    Nil(Pos),
    /// `true` or `false`.
    Bool {
        /// The value.
        value: bool,
        /// Where it is written.
        pos: Pos,
    },
    /// A number or a character constant.
    Number(Number),
    /// A string literal.
    String {
        /// The value, escapes applied (and, for raw strings, carriage
        /// returns dropped, as Go does).
        value: String,
        /// `true` for a backquoted raw string.
        raw: bool,
        /// The literal as written, quotes included (Go's messages quote it).
        text: String,
        /// The opening quote.
        pos: Pos,
    },
    /// `.A.B`: field or map key lookups on dot.
    Field {
        /// The names, without dots (`["A", "B"]`).
        names: Vec<String>,
        /// The first dot.
        pos: Pos,
    },
    /// `$`, `$x` or `$x.A.B`.
    Variable {
        /// The variable, `$` included (`"$"` is the template's argument).
        name: String,
        /// Field names looked up on it, without dots.
        fields: Vec<String>,
        /// The `$`.
        pos: Pos,
    },
    /// A function name (`getv`, `printf`, …).
    Identifier {
        /// The name.
        name: String,
        /// Where it is written.
        pos: Pos,
    },
    /// Fields looked up on a parenthesized pipeline or on a function's
    /// result: `(index $m 0).Key`, `getv.X`.
    Chain {
        /// What the fields are looked up on ([`Arg::Pipe`] or
        /// [`Arg::Identifier`]).
        base: Box<Arg>,
        /// The names, without dots.
        fields: Vec<String>,
        /// The start of the base.
        pos: Pos,
    },
    /// `( pipeline )`.
    Pipe {
        /// The pipeline inside the parentheses.
        pipe: Box<Pipeline>,
        /// The `(`.
        pos: Pos,
    },
}

impl Arg {
    /// Where the operand starts.
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Dot(pos) | Arg::Nil(pos) => *pos,
            Arg::Number(n) => n.pos,
            Arg::Bool { pos, .. }
            | Arg::String { pos, .. }
            | Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Pipe { pos, .. } => *pos,
        }
    }
}

/// A number or character constant, with every reading Go's parser makes
/// of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    /// As written (`0x1F`, `1_000`, `'a'`, `-3.5e2`).
    pub text: String,
    /// The value Go uses where nothing asks for a type (printing it, a
    /// parameter of type `interface{}`, comparisons): Go's "ideal constant".
    pub value: NumberValue,
    /// The value as an `int`, when exact (Go's `IsInt`): what a function
    /// parameter of type `int` receives (`add 1.0 2` is `3`). `None` means Go
    /// reports "expected integer" there.
    pub int: Option<i64>,
    /// The value as a `uint64`, when exact (Go's `IsUint`).
    pub uint: Option<u64>,
    /// The value as a `float64`, when representable (Go's `IsFloat`).
    pub float: Option<f64>,
    /// Where it is written.
    pub pos: Pos,
}

/// The untyped reading of a number (Go's `idealConstant`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumberValue {
    /// An `int`: integer literals (`42`, `0x1f`, `0o17`, `017`, `0b101`,
    /// `-3`), and an integer-valued float spelled without `.`, `e` or `p`.
    Int(i64),
    /// A `float64`: a literal containing `.`, `e`/`E` or `p`/`P` (hex
    /// integers excepted: `0x1e` is an int). Note that Go applies that test to
    /// the text, so `-0x1e` (the sign hides the hex prefix) is a float.
    Float(f64),
    /// A character constant: Go treats it as the `int` holding the rune
    /// (`{{'a'}}` prints `97`).
    Char(char),
    /// An integer that fits `uint64` but not `int64`: Go parses it but fails
    /// when executing it untyped ("… overflows int").
    Uint(u64),
}

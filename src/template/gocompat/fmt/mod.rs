//! Go's `fmt` for the values templates hold: `Sprint`, `Sprintln`,
//! `Sprintf` with every verb, flag, width and precision of Go 1.19
//! (`fmt/print.go`, `fmt/format.go`), including its error forms
//! (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=2)`, `%!(NOVERB)`,
//! `%!(BADWIDTH)`, `%!(BADPREC)`, `%!v(BADINDEX)`).
//!
//! The code follows Go's structure (a printer with flags that is reset for
//! each verb, `printArg` at the top level, `printValue` for nested values)
//! so that the corner cases come out the same: widths apply to each element
//! of a slice, `%x` of a string is hex bytes, `%05s` pads with zeros.

use tera::Value;

use super::value::{Go, field_int, field_str, sorted_entries};

mod number;
mod printf;
mod text;

pub(super) const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
pub(super) const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

#[derive(Default, Clone, Copy)]
pub(super) struct Flags {
    pub(super) wid_present: bool,
    pub(super) prec_present: bool,
    pub(super) minus: bool,
    pub(super) plus: bool,
    pub(super) sharp: bool,
    pub(super) space: bool,
    pub(super) zero: bool,
    pub(super) plus_v: bool,
    pub(super) sharp_v: bool,
}

/// One formatting run: the output and the current verb's flags.
#[derive(Default)]
pub(super) struct Printer {
    pub(super) buf: String,
    pub(super) f: Flags,
    pub(super) wid: i64,
    pub(super) prec: i64,
}

/// Go's `fmt.Sprint`: operands formatted with `%v`, a space between two
/// operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = arg.is_string();
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: operands with `%v`, always space-separated, and a
/// newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format.as_bytes(), args);
    p.buf
}

/// What text/template writes for `{{ X }}`: `<no value>` for nil, the value
/// a pointer points to (so a `*net.SRV` prints as `{target 80 10 5}`), else
/// `fmt.Fprint` of the value.
pub fn template_print(value: &Value) -> String {
    let mut p = Printer::default();
    match Go::of(value) {
        Go::Nil => p.buf.push_str("<no value>"),
        Go::Srv(map) => p.print_srv_struct(map, 'v', 1),
        _ => p.print_arg(value, 'v'),
    }
    p.buf
}

impl Printer {
    pub(super) fn clear_flags(&mut self) {
        self.f = Flags::default();
        self.wid = 0;
        self.prec = 0;
    }

    pub(super) fn write_padding(&mut self, n: i64) {
        let pad = if self.f.zero { '0' } else { ' ' };
        for _ in 0..n.max(0) {
            self.buf.push(pad);
        }
    }

    /// Go's `pad`/`padString`: width counted in characters.
    pub(super) fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.wid == 0 {
            self.buf.push_str(s);
            return;
        }
        let width = self.wid - s.chars().count() as i64;
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(width);
        } else {
            self.write_padding(width);
            self.buf.push_str(s);
        }
    }

    pub(super) fn bad_verb(&mut self, verb: char, value: &Value, depth: usize) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        let go = Go::of(value);
        if matches!(go, Go::Nil) {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(go.type_name());
            self.buf.push('=');
            self.print_value(value, 'v', depth);
        }
        self.buf.push(')');
    }

    /// Go's `printArg`: an operand at the top level.
    pub(super) fn print_arg(&mut self, value: &Value, verb: char) {
        let go = Go::of(value);
        if let Go::Nil = go {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, value, 0),
            }
            return;
        }
        match verb {
            'T' => {
                let name = go.type_name();
                self.fmt_s(name);
                return;
            }
            'p' => {
                // Pointers have no stable value to print: Go prints an
                // address, or %!p(type=value) for non-pointers.
                self.bad_verb('p', value, 0);
                return;
            }
            _ => {}
        }
        self.print_value(value, verb, 0);
    }

    /// Go's `printValue`: a value at `depth` (0 for an operand).
    pub(super) fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
        match Go::of(value) {
            Go::Nil => {
                // A nil inside a slice or map is a nil interface: Go prints
                // <nil> whatever the verb.
                self.pad_or_plain_nil(depth, verb, value);
            }
            Go::Bool(b) => match verb {
                't' | 'v' => self.pad(if b { "true" } else { "false" }),
                _ => self.bad_verb(verb, value, depth),
            },
            Go::Int(i) => self.fmt_integer_verb(i as u64, i < 0, verb, value, depth),
            Go::Uint(u) => self.fmt_integer_verb(u, false, verb, value, depth),
            Go::Float(x) => self.fmt_float_verb(x, verb, value, depth),
            Go::Str(s) => self.fmt_string_verb(s.as_bytes(), verb, value, depth),
            Go::Bytes(b) => self.fmt_string_verb(b, verb, value, depth),
            Go::Slice(items) => {
                self.buf.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_value(item, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Go::Map(map) => {
                self.buf.push_str("map[");
                for (i, (key, item)) in sorted_entries(map).into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_value(&key.as_value(), verb, depth + 1);
                    self.buf.push(':');
                    self.print_value(item, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Go::KvPair(map) => {
                self.buf.push('{');
                for (i, name) in ["Key", "Value"].into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    if self.f.plus_v {
                        self.buf.push_str(name);
                        self.buf.push(':');
                    }
                    let field = Value::from(field_str(map, name));
                    self.print_value(&field, verb, depth + 1);
                }
                self.buf.push('}');
            }
            Go::Srv(map) => {
                // A pointer to a struct prints as &{…} as an operand; deeper
                // down Go prints its address, which no template can want and
                // which changes at every run: the struct is printed instead.
                self.buf.push('&');
                self.print_srv_struct(map, verb, depth + 1);
            }
            Go::Time(map) => {
                // time.Time is a Stringer: %v %s %q %x %X use its String().
                let text = super::time::time_string(map);
                match verb {
                    'v' | 's' | 'x' | 'X' | 'q' => {
                        self.fmt_string_verb(text.as_bytes(), verb, value, depth)
                    }
                    _ => self.bad_verb(verb, value, depth),
                }
            }
        }
    }

    pub(super) fn pad_or_plain_nil(&mut self, depth: usize, verb: char, value: &Value) {
        if depth == 0 {
            match verb {
                'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, value, depth),
            }
        } else {
            self.buf.push_str("<nil>");
        }
    }

    pub(super) fn print_srv_struct(&mut self, map: &tera::Map, verb: char, depth: usize) {
        self.buf.push('{');
        if self.f.plus_v {
            self.buf.push_str("Target:");
        }
        let target = Value::from(field_str(map, "Target"));
        self.print_value(&target, verb, depth);
        for name in ["Port", "Priority", "Weight"] {
            self.buf.push(' ');
            if self.f.plus_v {
                self.buf.push_str(name);
                self.buf.push(':');
            }
            // The fields are uint16 in Go, which the error form names.
            let n = field_int(map, name);
            if matches!(
                verb,
                'v' | 'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'c' | 'q' | 'U'
            ) {
                self.fmt_integer_verb(n as u64, false, verb, &Value::from(n), depth);
            } else {
                self.buf.push_str(&format!("%!{verb}(uint16="));
                self.fmt_integer(n as u64, 10, false, 'v', LDIGITS);
                self.buf.push(')');
            }
        }
        self.buf.push('}');
    }
}

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

use super::float::format_float;
use super::quote::{can_backquote, is_print, quote, quote_rune};
use super::value::{Go, field_int, field_str, sorted_entries};

const LDIGITS: &[u8; 17] = b"0123456789abcdefx";
const UDIGITS: &[u8; 17] = b"0123456789ABCDEFX";

#[derive(Default, Clone, Copy)]
struct Flags {
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

/// One formatting run: the output and the current verb's flags.
#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
    wid: i64,
    prec: i64,
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

/// Go's `parsenum`: a decimal number at `format[start..end]`.
fn parse_num(format: &[u8], start: usize, end: usize) -> (i64, bool, usize) {
    let mut i = start;
    let mut num: i64 = 0;
    let mut is_num = false;
    while i < end && format[i].is_ascii_digit() {
        // Go's tooLarge: beyond a million the width is refused.
        if num > 1_000_000 {
            return (0, false, end);
        }
        num = num * 10 + i64::from(format[i] - b'0');
        is_num = true;
        i += 1;
    }
    (num, is_num, i)
}

/// Go's `intFromArg`: a `*` width or precision taken from an operand.
fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    if arg_num >= args.len() {
        return (0, false, arg_num);
    }
    let (mut num, mut is_int) = match Go::of(&args[arg_num]) {
        Go::Int(i) => (i, true),
        Go::Uint(u) => (i64::try_from(u).unwrap_or(0), i64::try_from(u).is_ok()),
        _ => (0, false),
    };
    if !(-1_000_000..=1_000_000).contains(&num) {
        num = 0;
        is_int = false;
    }
    (num, is_int, arg_num + 1)
}

impl Printer {
    fn clear_flags(&mut self) {
        self.f = Flags::default();
        self.wid = 0;
        self.prec = 0;
    }

    fn write_padding(&mut self, n: i64) {
        let pad = if self.f.zero { '0' } else { ' ' };
        for _ in 0..n.max(0) {
            self.buf.push(pad);
        }
    }

    /// Go's `pad`/`padString`: width counted in characters.
    fn pad(&mut self, s: &str) {
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

    fn bad_verb(&mut self, verb: char, value: &Value, depth: usize) {
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
    fn print_arg(&mut self, value: &Value, verb: char) {
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
    fn print_value(&mut self, value: &Value, verb: char, depth: usize) {
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

    fn pad_or_plain_nil(&mut self, depth: usize, verb: char, value: &Value) {
        if depth == 0 {
            match verb {
                'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, value, depth),
            }
        } else {
            self.buf.push_str("<nil>");
        }
    }

    fn print_srv_struct(&mut self, map: &tera::Map, verb: char, depth: usize) {
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

    fn fmt_integer_verb(
        &mut self,
        u: u64,
        negative: bool,
        verb: char,
        value: &Value,
        depth: usize,
    ) {
        match verb {
            'v' | 'd' => self.fmt_integer(u, 10, negative, verb, LDIGITS),
            'b' => self.fmt_integer(u, 2, negative, verb, LDIGITS),
            'o' | 'O' => self.fmt_integer(u, 8, negative, verb, LDIGITS),
            'x' => self.fmt_integer(u, 16, negative, verb, LDIGITS),
            'X' => self.fmt_integer(u, 16, negative, verb, UDIGITS),
            'c' => {
                let c = u32::try_from(u)
                    .ok()
                    .filter(|_| !negative)
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                self.pad(&c.to_string());
            }
            'q' => {
                let code = if negative { u64::MAX } else { u };
                let quoted = quote_rune(code, self.f.plus);
                self.pad(&quoted);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, value, depth),
        }
    }

    /// Go's `fmt.fmtInteger`; `u` is the two's complement bits when negative.
    fn fmt_integer(&mut self, u: u64, base: u64, negative: bool, verb: char, digits: &[u8; 17]) {
        let mut u = if negative { u.wrapping_neg() } else { u };
        let mut prec: i64 = 0;
        if self.f.prec_present {
            prec = self.prec;
            if prec == 0 && u == 0 {
                let zero = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.wid);
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.wid;
            if negative || self.f.plus || self.f.space {
                prec -= 1;
            }
        }
        let mut out: Vec<u8> = Vec::with_capacity(24);
        loop {
            out.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while (out.len() as i64) < prec {
            out.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => out.extend_from_slice(b"b0"),
                8 if out.last() != Some(&b'0') => out.push(b'0'),
                16 => {
                    out.push(digits[16]);
                    out.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            out.extend_from_slice(b"o0");
        }
        if negative {
            out.push(b'-');
        } else if self.f.plus {
            out.push(b'+');
        } else if self.f.space {
            out.push(b' ');
        }
        out.reverse();
        let text: String = out.into_iter().map(char::from).collect();
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&text);
        self.f.zero = zero;
    }

    /// Go's `fmtUnicode`: `U+0041`, with `#` also `'A'`.
    fn fmt_unicode(&mut self, u: u64) {
        let prec = if self.f.prec_present && self.prec > 4 {
            self.prec as usize
        } else {
            4
        };
        let mut text = format!("U+{u:0prec$X}");
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            text.push_str(&format!(" '{c}'"));
        }
        let zero = self.f.zero;
        self.f.zero = false;
        self.pad(&text);
        self.f.zero = zero;
    }

    fn fmt_float_verb(&mut self, x: f64, verb: char, value: &Value, depth: usize) {
        match verb {
            'v' => self.fmt_float(x, 'g', -1),
            'b' | 'g' | 'G' => self.fmt_float(x, verb, -1),
            'f' | 'e' | 'E' => self.fmt_float(x, verb, 6),
            'F' => self.fmt_float(x, 'f', 6),
            // Go's hexadecimal floats: not supported; the error form makes
            // the gap visible rather than printing different digits.
            _ => self.bad_verb(verb, value, depth),
        }
    }

    /// Go's `fmt.fmtFloat`.
    fn fmt_float(&mut self, v: f64, verb: char, prec: i64) {
        let prec = if self.f.prec_present { self.prec } else { prec };
        let formatted = format_float(v, verb, prec);
        let mut num: Vec<u8> = if formatted.starts_with('-') || formatted.starts_with('+') {
            formatted.into_bytes()
        } else {
            let mut n = vec![b'+'];
            n.extend_from_slice(formatted.as_bytes());
            n
        };
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1) == Some(&b'I') || num.get(1) == Some(&b'N') {
            let zero = self.f.zero;
            self.f.zero = false;
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            self.pad(&String::from_utf8_lossy(&num));
            self.f.zero = zero;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i64 = match verb {
                'v' | 'g' | 'G' | 'x' => {
                    if prec == -1 {
                        6
                    } else {
                        prec
                    }
                }
                _ => 0,
            };
            let mut tail: Vec<u8> = Vec::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_point = true,
                    b'p' | b'P' | b'e' | b'E' => {
                        tail = num.split_off(i);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        let text = String::from_utf8_lossy(&num).into_owned();
        if self.f.plus || num[0] != b'+' {
            if self.f.zero && self.f.wid_present && self.wid > num.len() as i64 {
                self.buf.push(num[0] as char);
                self.write_padding(self.wid - num.len() as i64);
                self.buf.push_str(&text[1..]);
                return;
            }
            self.pad(&text);
            return;
        }
        self.pad(&text[1..]);
    }

    fn fmt_string_verb(&mut self, s: &[u8], verb: char, value: &Value, depth: usize) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s);
                } else {
                    self.fmt_s_bytes(s);
                }
            }
            's' => self.fmt_s_bytes(s),
            'x' => self.fmt_sx(s, LDIGITS),
            'X' => self.fmt_sx(s, UDIGITS),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, value, depth),
        }
    }

    /// Go's `truncate`: at most `prec` characters (of valid UTF-8; other
    /// bytes count one each).
    fn truncate<'s>(&self, s: &'s [u8]) -> &'s [u8] {
        if !self.f.prec_present {
            return s;
        }
        let mut n = self.prec;
        let mut i = 0;
        while i < s.len() {
            n -= 1;
            if n < 0 {
                return &s[..i];
            }
            i += std::str::from_utf8(&s[i..(i + 4).min(s.len())])
                .ok()
                .or_else(|| {
                    (1..4)
                        .rev()
                        .find_map(|w| std::str::from_utf8(s.get(i..i + w)?).ok())
                })
                .and_then(|t| t.chars().next())
                .map_or(1, char::len_utf8);
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        self.fmt_s_bytes(s.as_bytes());
    }

    fn fmt_s_bytes(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        let text = String::from_utf8_lossy(s).into_owned();
        self.pad(&text);
    }

    /// Go's `fmtSbx`: hex of each byte, `#` for 0x, space between bytes.
    fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 17]) {
        let mut length = s.len() as i64;
        if self.f.prec_present && self.prec < length {
            length = self.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.wid);
            }
            return;
        }
        if self.f.wid_present && self.wid > width && !self.f.minus {
            self.write_padding(self.wid - width);
        }
        let mut out = String::new();
        if self.f.sharp {
            out.push('0');
            out.push(digits[16] as char);
        }
        for (i, &c) in s.iter().take(length as usize).enumerate() {
            if self.f.space && i > 0 {
                out.push(' ');
                if self.f.sharp {
                    out.push('0');
                    out.push(digits[16] as char);
                }
            }
            out.push(digits[(c >> 4) as usize] as char);
            out.push(digits[(c & 0xf) as usize] as char);
        }
        self.buf.push_str(&out);
        if self.f.wid_present && self.wid > width && self.f.minus {
            self.write_padding(self.wid - width);
        }
    }

    /// Go's `fmtQ`: a quoted string, backquoted with `#` when possible.
    fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let text = format!("`{}`", String::from_utf8_lossy(s));
            self.pad(&text);
            return;
        }
        let quoted = quote(s, self.f.plus);
        self.pad(&quoted);
    }

    /// Go's `argNumber`: an explicit `[n]` operand index.
    fn arg_number(
        &mut self,
        arg_num: usize,
        format: &[u8],
        i: usize,
        num_args: usize,
        reordered: &mut bool,
        good_arg_num: &mut bool,
    ) -> (usize, usize, bool) {
        if format.len() <= i || format[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let rest = &format[i..];
        // Go's parseArgNumber.
        let (index, wid, ok) = 'parse: {
            if rest.len() < 3 {
                break 'parse (0, 1, false);
            }
            for j in 1..rest.len() {
                if rest[j] == b']' {
                    let (width, ok, newi) = parse_num(rest, 1, j);
                    if !ok || newi != j {
                        break 'parse (0, j + 1, false);
                    }
                    break 'parse (width - 1, j + 1, true);
                }
            }
            (0, 1, false)
        };
        if ok && index >= 0 && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        *good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    /// Go's `doPrintf`.
    fn do_printf(&mut self, format: &[u8], args: &[Value]) {
        let end = format.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0usize;
        'format_loop: while i < end {
            let mut good_arg_num = true;
            let last = i;
            while i < end && format[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf
                    .push_str(&String::from_utf8_lossy(&format[last..i]));
            }
            if i >= end {
                break;
            }
            i += 1;
            self.clear_flags();
            while i < end {
                let c = format[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format_loop;
                        }
                        break;
                    }
                }
                i += 1;
            }
            let (n, ni, ai) = self.arg_number(
                arg_num,
                format,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
            arg_num = n;
            i = ni;
            after_index = ai;
            if i < end && format[i] == b'*' {
                i += 1;
                let (w, present, n) = int_from_arg(args, arg_num);
                self.wid = w;
                self.f.wid_present = present;
                arg_num = n;
                if !present {
                    self.buf.push_str("%!(BADWIDTH)");
                }
                if self.wid < 0 {
                    self.wid = -self.wid;
                    self.f.minus = true;
                    self.f.zero = false;
                }
                after_index = false;
            } else {
                let (w, present, ni) = parse_num(format, i, end);
                self.wid = w;
                self.f.wid_present = present;
                i = ni;
                if after_index && present {
                    good_arg_num = false;
                }
            }
            if i + 1 < end && format[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                let (n, ni, ai) = self.arg_number(
                    arg_num,
                    format,
                    i,
                    args.len(),
                    &mut reordered,
                    &mut good_arg_num,
                );
                arg_num = n;
                i = ni;
                after_index = ai;
                if i < end && format[i] == b'*' {
                    i += 1;
                    let (p, present, n) = int_from_arg(args, arg_num);
                    self.prec = p;
                    self.f.prec_present = present;
                    arg_num = n;
                    if self.prec < 0 {
                        self.prec = 0;
                        self.f.prec_present = false;
                    }
                    if !self.f.prec_present {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, present, ni) = parse_num(format, i, end);
                    self.prec = p;
                    self.f.prec_present = present;
                    i = ni;
                    if !present {
                        self.prec = 0;
                        self.f.prec_present = true;
                    }
                }
            }
            if !after_index {
                let (n, ni, _) = self.arg_number(
                    arg_num,
                    format,
                    i,
                    args.len(),
                    &mut reordered,
                    &mut good_arg_num,
                );
                arg_num = n;
                i = ni;
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let rest = String::from_utf8_lossy(&format[i..]);
            let verb = rest.chars().next().unwrap_or('\u{fffd}');
            i += if format[i] < 0x80 {
                1
            } else {
                verb.len_utf8().min(end - i)
            };
            if verb == '%' {
                self.buf.push('%');
            } else if !good_arg_num {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(BADINDEX)");
            } else if arg_num >= args.len() {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            self.clear_flags();
            self.buf.push_str("%!(EXTRA ");
            for (k, arg) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                let go = Go::of(arg);
                if let Go::Nil = go {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(go.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }
}

//! Go's `doPrintf`: the format string's verbs, flags, widths and
//! precisions (`*` from operands, `[n]` operand indexes), and the error
//! forms for missing, extra and misplaced operands.

use tera::Value;

use super::Printer;
use crate::template::gocompat::value::Go;

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
    pub(super) fn do_printf(&mut self, format: &[u8], args: &[Value]) {
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

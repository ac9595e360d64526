//! Numbers under `fmt`'s verbs: Go's `fmtInteger` (bases, signs, zero
//! padding, `#` prefixes), `fmtUnicode` (`%U`), `fmtFloat` (signs, `#`,
//! zero padding around the digits `float` lays out).

use tera::Value;

use super::{LDIGITS, Printer, UDIGITS};
use crate::template::gocompat::float::format_float;
use crate::template::gocompat::quote::{is_print, quote_rune};

impl Printer {
    pub(super) fn fmt_integer_verb(
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
    pub(super) fn fmt_integer(
        &mut self,
        u: u64,
        base: u64,
        negative: bool,
        verb: char,
        digits: &[u8; 17],
    ) {
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
    pub(super) fn fmt_unicode(&mut self, u: u64) {
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

    pub(super) fn fmt_float_verb(&mut self, x: f64, verb: char, value: &Value, depth: usize) {
        match verb {
            'v' => self.fmt_float(x, 'g', -1),
            'b' | 'g' | 'G' => self.fmt_float(x, verb, -1),
            'f' | 'e' | 'E' => self.fmt_float(x, verb, 6),
            'F' => self.fmt_float(x, 'f', 6),
            'x' | 'X' => self.fmt_float(x, verb, -1),
            _ => self.bad_verb(verb, value, depth),
        }
    }

    /// Go's `fmt.fmtFloat`.
    pub(super) fn fmt_float(&mut self, v: f64, verb: char, prec: i64) {
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
}

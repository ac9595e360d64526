//! Strings under `fmt`'s verbs: `%s` with precision (characters, not
//! bytes), `%x`/`%X` as hex bytes, `%q` quoted (or backquoted with `#`).

use tera::Value;

use super::{LDIGITS, Printer, UDIGITS};
use crate::template::gocompat::quote::{can_backquote, quote};

impl Printer {
    pub(super) fn fmt_string_verb(&mut self, s: &[u8], verb: char, value: &Value, depth: usize) {
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
    pub(super) fn truncate<'s>(&self, s: &'s [u8]) -> &'s [u8] {
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

    pub(super) fn fmt_s(&mut self, s: &str) {
        self.fmt_s_bytes(s.as_bytes());
    }

    pub(super) fn fmt_s_bytes(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        let text = String::from_utf8_lossy(s).into_owned();
        self.pad(&text);
    }

    /// Go's `fmtSbx`: hex of each byte, `#` for 0x, space between bytes.
    pub(super) fn fmt_sx(&mut self, s: &[u8], digits: &[u8; 17]) {
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
    pub(super) fn fmt_q(&mut self, s: &[u8]) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let text = format!("`{}`", String::from_utf8_lossy(s));
            self.pad(&text);
            return;
        }
        let quoted = quote(s, self.f.plus);
        self.pad(&quoted);
    }
}

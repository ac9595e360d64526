//! Go's string and character literals, read as Go 1.19's `strconv.Unquote`
//! and `strconv.UnquoteChar` read them, and Go's `%q` / `%#U` spellings,
//! which Go's parse errors use to show the offending text.

/// Why a literal could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnquoteError {
    /// Go rejects it too (Go says only "invalid syntax"; `detail` says why).
    Syntax(String),
    /// Go accepts it, but its value is not UTF-8 (`"\xff"`), which a Tera
    /// string cannot hold; the value with the bad bytes replaced is given.
    NotUtf8(String),
}

/// The value of a string literal as written in a template, quotes included:
/// `"…"` with Go's escapes, or `` `…` `` taken as is except that carriage
/// returns are dropped (Go's rule for raw strings).
pub(crate) fn unquote(text: &str) -> Result<String, UnquoteError> {
    if let Some(inner) = text
        .strip_prefix('`')
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return Ok(inner.chars().filter(|&c| c != '\r').collect());
    }
    let Some(inner) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    else {
        return Err(UnquoteError::Syntax(format!(
            "{text} is not a quoted string"
        )));
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while !rest.is_empty() {
        if rest.starts_with('\n') {
            return Err(UnquoteError::Syntax("newline in string".to_string()));
        }
        let (unit, tail) = unquote_char(rest, b'"')?;
        match unit {
            Unit::Byte(b) => bytes.push(b),
            Unit::Char(c) => {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        rest = tail;
    }
    String::from_utf8(bytes)
        .map_err(|e| UnquoteError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// The rune of a character constant as written, quotes included (`'a'`,
/// `'\n'`, `'\u00e9'`, `'\x41'`, `'\101'`).
pub(crate) fn unquote_rune(text: &str) -> Result<char, UnquoteError> {
    let Some(inner) = text.strip_prefix('\'') else {
        return Err(UnquoteError::Syntax(format!(
            "{text} is not a character constant"
        )));
    };
    let (unit, tail) = unquote_char(inner, b'\'')?;
    if tail != "'" {
        return Err(UnquoteError::Syntax(format!(
            "malformed character constant: {text}"
        )));
    }
    Ok(match unit {
        // A `\x` or octal escape in a character constant is the rune of
        // that number (`'\xff'` is U+00FF), as Go has it.
        Unit::Byte(b) => char::from(b),
        Unit::Char(c) => c,
    })
}

/// One decoded element of a quoted literal: a raw byte (from `\x` and octal
/// escapes, which need not be UTF-8 in a Go string) or a character.
enum Unit {
    Byte(u8),
    Char(char),
}

/// Decodes the first character or escape of `s` inside a literal quoted
/// with `quote` (Go's `UnquoteChar`), returning it and the rest.
fn unquote_char(s: &str, quote: u8) -> Result<(Unit, &str), UnquoteError> {
    let bad = |what: &str| Err(UnquoteError::Syntax(what.to_string()));
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return bad("unterminated literal");
    };
    if first == char::from(quote) {
        return bad("unescaped quote");
    }
    if first != '\\' {
        return Ok((Unit::Char(first), chars.as_str()));
    }
    let Some(kind) = chars.next() else {
        return bad("lone backslash");
    };
    let rest = chars.as_str();
    let simple = |c: char| Ok((Unit::Char(c), rest));
    match kind {
        'a' => simple('\u{7}'),
        'b' => simple('\u{8}'),
        'f' => simple('\u{c}'),
        'n' => simple('\n'),
        'r' => simple('\r'),
        't' => simple('\t'),
        'v' => simple('\u{b}'),
        '\\' => simple('\\'),
        '\'' | '"' if kind == char::from(quote) => simple(kind),
        'x' | 'u' | 'U' => {
            let width = match kind {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            let digits = rest.get(..width).filter(|d| d.len() == width);
            let value = digits
                .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|d| u32::from_str_radix(d, 16).ok());
            let Some(value) = value else {
                return bad(&format!("\\{kind} needs {width} hexadecimal digits"));
            };
            let rest = &rest[width..];
            if kind == 'x' {
                // `\x` is one byte, possibly not UTF-8 on its own.
                return Ok((Unit::Byte(value as u8), rest));
            }
            match char::from_u32(value) {
                Some(c) => Ok((Unit::Char(c), rest)),
                None => bad(&format!("\\{kind}{value:X} is not a valid character")),
            }
        }
        '0'..='7' => {
            let digits = rest.get(..2).filter(|d| d.len() == 2);
            let tail = digits.filter(|d| d.bytes().all(|b| (b'0'..=b'7').contains(&b)));
            let Some(tail) = tail else {
                return bad("an octal escape needs three octal digits");
            };
            let value = tail
                .bytes()
                .fold(u32::from(kind) - u32::from('0'), |acc, b| {
                    acc * 8 + u32::from(b - b'0')
                });
            match u8::try_from(value) {
                Ok(byte) => Ok((Unit::Byte(byte), &rest[2..])),
                Err(_) => bad("an octal escape is at most \\377"),
            }
        }
        other => bad(&format!("unknown escape sequence \\{other}")),
    }
}

/// `s` as Go's `%q` prints it (`strconv.Quote`): in double quotes, with `"`
/// and `\` escaped and non-printable characters spelled as escapes.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Go's `%.Nq`: the first `n` characters of `s`, quoted.
pub(crate) fn go_quote_prefix(s: &str, n: usize) -> String {
    let prefix: String = s.chars().take(n).collect();
    go_quote(&prefix)
}

/// A character as Go's `%#U` prints it: `U+0023 '#'`, or only `U+000A`
/// when it is not printable.
pub(crate) fn go_unicode(c: char) -> String {
    if is_go_printable(c) {
        format!("U+{:04X} '{c}'", u32::from(c))
    } else {
        format!("U+{:04X}", u32::from(c))
    }
}

/// Go's `unicode.IsPrint`, near enough for messages: controls, spaces other
/// than U+0020 and the usual invisible formatting characters are not
/// printable. (Go also escapes unassigned code points; these are rare in a
/// template and only change how a message spells them.)
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        u32::from(c),
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
            | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
            | 0xF0000..=0x10FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreted_strings_apply_go_escapes() {
        let cases = [
            (r#""plain""#, "plain"),
            (r#""a\nb\tc\\d\"e""#, "a\nb\tc\\d\"e"),
            (r#""\a\b\f\r\v""#, "\u{7}\u{8}\u{c}\r\u{b}"),
            (r#""\x41\x62""#, "Ab"),
            (r#""\101\142""#, "Ab"),
            (r#""\u00e9""#, "é"),
            (r#""\U0001F600""#, "😀"),
            (r#""\xc3\xa9""#, "é"),
            (r#""é""#, "é"),
            (r#""""#, ""),
        ];
        for (text, want) in cases {
            assert_eq!(unquote(text), Ok(want.to_string()), "{text}");
        }
    }

    #[test]
    fn raw_strings_keep_everything_but_carriage_returns() {
        assert_eq!(unquote("`a\\n\"b\"`"), Ok("a\\n\"b\"".to_string()));
        assert_eq!(unquote("`a\r\nb`"), Ok("a\nb".to_string()));
        assert_eq!(unquote("``"), Ok(String::new()));
    }

    #[test]
    fn bad_escapes_are_syntax_errors() {
        for text in [
            r#""\q""#,
            r#""\'""#,
            r#""\x4""#,
            r#""\xzz""#,
            r#""\u00e""#,
            r#""\uD800""#,
            r#""\U00110000""#,
            r#""\400""#,
            r#""\18""#,
            r#""\""#,
        ] {
            assert!(
                matches!(unquote(text), Err(UnquoteError::Syntax(_))),
                "{text}: {:?}",
                unquote(text)
            );
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_reported() {
        let lossy = Err(UnquoteError::NotUtf8("a\u{fffd}".to_string()));
        assert_eq!(unquote(r#""a\xff""#), lossy);
        assert_eq!(unquote(r#""a\377""#), lossy);
    }

    #[test]
    fn character_constants_are_runes() {
        let cases = [
            ("'a'", 'a'),
            ("'\\n'", '\n'),
            ("'\\''", '\''),
            ("'\"'", '"'),
            ("'\\u00e9'", 'é'),
            ("'é'", 'é'),
            ("'\\x41'", 'A'),
            ("'\\xff'", 'ÿ'),
            ("'\\101'", 'A'),
            ("'\\U0001F600'", '😀'),
        ];
        for (text, want) in cases {
            assert_eq!(unquote_rune(text), Ok(want), "{text}");
        }
        for text in ["''", "'ab'", "'\\\"'", "'\\z'"] {
            assert!(unquote_rune(text).is_err(), "{text}");
        }
        assert_eq!(
            unquote_rune("'ab'"),
            Err(UnquoteError::Syntax(
                "malformed character constant: 'ab'".to_string()
            ))
        );
    }

    #[test]
    fn quoting_follows_go_percent_q() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("x\ny\t\u{1}"), r#""x\ny\t\x01""#);
        assert_eq!(go_quote("é\u{a0}"), "\"é\\u00a0\"");
        assert_eq!(go_quote_prefix("0123456789abc", 10), r#""0123456789""#);
        assert_eq!(go_unicode('#'), "U+0023 '#'");
        assert_eq!(go_unicode('\n'), "U+000A");
    }
}

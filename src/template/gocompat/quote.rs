//! Go's quoting and escaping, byte for byte: `strconv.Quote` and friends (for
//! `printf "%q"`), `strconv.IsPrint`, and text/template's `html`, `js` and
//! `urlquery` escapers (`template.HTMLEscapeString`, `JSEscapeString`,
//! `url.QueryEscape`).
//!
//! Go decides what is printable from its Unicode tables (letters, marks,
//! numbers, punctuation, symbols and the ASCII space); the same general
//! categories come from ICU here. Go 1.19 knows Unicode 13, ICU a later
//! version, so a character assigned since then counts as printable here and
//! as not printable in Go.

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;

/// Go's `strconv.IsPrint` (also `unicode.IsPrint`).
pub fn is_print(c: char) -> bool {
    if (c as u32) < 0x80 {
        return (' '..='~').contains(&c);
    }
    use GeneralCategory as G;
    !matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        G::Unassigned
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
    )
}

/// One UTF-8 decoding step as Go's `utf8.DecodeRuneInString` does it: the
/// character and its width, or `None` and width 1 for an invalid byte.
fn decode(bytes: &[u8]) -> (Option<char>, usize) {
    let take = bytes.len().min(4);
    for width in 1..=take {
        if let Ok(s) = std::str::from_utf8(&bytes[..width])
            && let Some(c) = s.chars().next()
        {
            return (Some(c), width);
        }
    }
    (None, 1)
}

fn push_escaped_rune(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if (c as u32) < 0x80 && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// `strconv.Quote` (`ascii_only` false) or `strconv.QuoteToASCII` (true), of
/// bytes that may not be UTF-8 (invalid bytes become `\x..`).
pub fn quote(s: &[u8], ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut i = 0;
    while i < s.len() {
        let (c, width) = decode(&s[i..]);
        match c {
            Some(c) => push_escaped_rune(&mut out, c, '"', ascii_only),
            None => out.push_str(&format!("\\x{:02x}", s[i])),
        }
        i += width;
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune` / `QuoteRuneToASCII`; an invalid code point is
/// quoted as U+FFFD, as Go does.
pub fn quote_rune(code: u64, ascii_only: bool) -> String {
    let c = u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    push_escaped_rune(&mut out, c, '\'', ascii_only);
    out.push('\'');
    out
}

/// `strconv.CanBackquote`: whether `%#q` may print the string in backquotes.
pub fn can_backquote(s: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(s) else {
        return false;
    };
    text.chars().all(|c| {
        c != '`' && c != '\u{feff}' && (c == '\t' || !((c as u32) < 0x20 || c == '\u{7f}'))
    })
}

/// text/template's `html`: `HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{fffd}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// text/template's `js`: `JSEscapeString` (Go 1.19: `<`, `>`, `&`, `=`,
/// quotes and backslash escaped, controls as `\u00XX`, non-printable
/// non-ASCII as `\uXXXX`).
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02X}", c as u32)),
            c if (c as u32) < 0x80 || is_print(c) => out.push(c),
            // Go formats with %04X: characters above U+FFFF get more digits.
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// text/template's `urlquery`: `url.QueryEscape` (space as `+`, every byte
/// but `A-Z a-z 0-9 - _ . ~` as `%XX`).
pub fn url_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

//! Writing Tera source: template text that Tera must not interpret, and
//! literals (strings, numbers) that read back as exactly the Go value.

/// Template text as Tera source that renders exactly `text`. Text holding
/// Tera's delimiters goes inside `{% raw %}`; a `{` at the very end would run
/// into the tag that follows, so it is written as a string instead.
pub fn text(text: &str, out: &mut String) {
    if text.is_empty() {
        return;
    }
    let needs_raw = ["{{", "{%", "{#"].iter().any(|d| text.contains(d));
    let (body, trailing_brace) = match text.strip_suffix('{') {
        Some(body) => (body, true),
        None => (text, false),
    };
    if needs_raw {
        // `{% endraw %}` would close the raw block early: print it instead.
        let mut pieces = body.split("{% endraw %}").peekable();
        while let Some(piece) = pieces.next() {
            if !piece.is_empty() {
                out.push_str("{% raw %}");
                out.push_str(piece);
                out.push_str("{% endraw %}");
            }
            if pieces.peek().is_some() {
                out.push_str("{{ \"{% endraw %}\" }}");
            }
        }
    } else {
        out.push_str(body);
    }
    if trailing_brace {
        out.push_str("{{ \"{\" }}");
    }
}

/// A Tera string literal whose value is exactly `value`.
pub fn string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Tera float literal for a Go float constant, when Tera can read one that
/// keeps the value exactly (it has no exponent syntax).
pub fn float(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let text = format!("{value:?}");
    if text.contains('e') {
        // Written out in full: Rust prints the shortest digits that read
        // back as the same value.
        let full = format!("{value}");
        return Some(if full.contains('.') {
            full
        } else {
            format!("{full}.0")
        });
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(input: &str) -> String {
        let mut out = String::new();
        text(input, &mut out);
        out
    }

    #[test]
    fn plain_text_is_written_as_it_is() {
        assert_eq!(t("server a:80\n"), "server a:80\n");
        assert_eq!(t(""), "");
    }

    #[test]
    fn tera_delimiters_in_text_stay_text() {
        assert_eq!(t("a {{ b }} c"), "{% raw %}a {{ b }} c{% endraw %}");
        assert_eq!(t("{% x %}"), "{% raw %}{% x %}{% endraw %}");
        assert_eq!(
            t("{{ {% endraw %} }}"),
            "{% raw %}{{ {% endraw %}{{ \"{% endraw %}\" }}{% raw %} }}{% endraw %}"
        );
        assert_eq!(t("json = {"), "json = {{ \"{\" }}");
    }

    #[test]
    fn strings_read_back_as_their_value() {
        assert_eq!(string("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\\te\"");
        assert_eq!(string("é ✓"), "\"é ✓\"");
    }

    #[test]
    fn floats_keep_their_value() {
        assert_eq!(float(1.5).as_deref(), Some("1.5"));
        assert_eq!(float(1000.0).as_deref(), Some("1000.0"));
        assert_eq!(float(1e21).as_deref(), Some("1000000000000000000000.0"));
        assert_eq!(float(f64::NAN), None);
    }
}

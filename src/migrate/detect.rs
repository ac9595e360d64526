//! Telling a Go text/template (confd's format) from a Tera template, so
//! `confd migrate` converts each template once, and a run or `confd check`
//! over an unmigrated confdir says what to do instead of reporting Tera
//! syntax errors.

/// The first bytes of every template `confd migrate` wrote. A Tera comment,
/// with nothing after it on its line, so it renders nothing.
pub const MARKER: &str = "{# confd migrate: converted from Go text/template #}";

/// Whether `confd migrate` wrote this template.
pub fn is_converted(source: &str) -> bool {
    source.starts_with(MARKER)
}

/// Go's control words, which open an action in Go and never in Tera.
const GO_KEYWORDS: [&str; 10] = [
    "range", "end", "if", "else", "with", "define", "template", "block", "break", "continue",
];

/// Whether `source` reads as Go text/template: one of its `{{ … }}` actions
/// starts the Go way (`.`, `$`, a comment, a control word, or a function
/// called with space-separated arguments: `getv "/k"`). Tera has no such
/// actions: its control lives in `{% … %}` and its calls use parentheses.
pub fn looks_like_go(source: &str) -> bool {
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return false;
        };
        if is_go_action(&after[..end]) {
            return true;
        }
        rest = &after[end + 2..];
    }
    false
}

fn is_go_action(action: &str) -> bool {
    let body = action.strip_prefix('-').unwrap_or(action).trim();
    let body = body.strip_suffix('-').unwrap_or(body).trim_end();
    if body.starts_with('.') || body.starts_with('$') || body.starts_with("/*") {
        return true;
    }
    let word: String = body
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if word.is_empty() {
        return false;
    }
    let next = body[word.len()..].chars().next();
    if GO_KEYWORDS.contains(&word.as_str()) && next.is_none_or(char::is_whitespace) {
        return true;
    }
    // `getv "/k"`, `printf "%d" $x`: an argument after a space, which Tera
    // would need parentheses for.
    let after = body[word.len()..].trim_start();
    body[word.len()..].starts_with(' ') && after.starts_with(['"', '`', '$', '.', '\'', '('])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_actions_are_recognised() {
        for go in [
            "{{ getv \"/a\" }}",
            "{{range lsdir \"/s\"}}x{{end}}",
            "{{- .Key -}}",
            "{{$x := 1}}",
            "{{/* note */}}",
            "{{ if exists \"/a\" }}a{{ end }}",
            "{{ printf \"%d\" 3 }}",
            "{{template \"t\" .}}",
        ] {
            assert!(looks_like_go(go), "{go}");
        }
    }

    #[test]
    fn tera_and_plain_text_are_not_go() {
        for tera in [
            "{{ getv(key=\"/a\") }}",
            "{% for x in ls(key=\"/a\") %}{{ x }}{% endfor %}",
            "{{ x | upper }}",
            "plain text, no actions",
            "{{ range(end=3) }}",
            "{{ end_point }}",
        ] {
            assert!(!looks_like_go(tera), "{tera}");
        }
    }

    #[test]
    fn the_marker_is_a_tera_comment() {
        assert!(is_converted(&format!("{MARKER}text")));
        assert!(!is_converted("text"));
    }
}

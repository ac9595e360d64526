//! Go's `path.Match` for one path segment, as confd's `gets`/`getvs` use it.

pub(super) fn has_glob_meta(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '\\'])
}

/// Matches one path segment against one pattern segment with Go's `path.Match`
/// rules: `*` any run, `?` one character, `[a-z]`/`[^a-z]` classes, `\` escapes.
/// A malformed class never matches.
pub fn glob_segment_matches(pattern: &str, name: &str) -> bool {
    let mut pattern_chars = pattern.chars();
    let mut name_chars = name.chars();
    match pattern_chars.next() {
        None => name.is_empty(),
        Some('*') => {
            let rest = pattern_chars.as_str();
            let mut candidate = name;
            loop {
                if glob_segment_matches(rest, candidate) {
                    return true;
                }
                let mut shorter = candidate.chars();
                if shorter.next().is_none() {
                    return false;
                }
                candidate = shorter.as_str();
            }
        }
        Some('?') => {
            name_chars.next().is_some()
                && glob_segment_matches(pattern_chars.as_str(), name_chars.as_str())
        }
        Some('[') => {
            let Some(c) = name_chars.next() else {
                return false;
            };
            match match_class(pattern_chars.as_str(), c) {
                Some((true, after)) => glob_segment_matches(after, name_chars.as_str()),
                _ => false,
            }
        }
        Some('\\') => match pattern_chars.next() {
            Some(literal) => {
                name_chars.next() == Some(literal)
                    && glob_segment_matches(pattern_chars.as_str(), name_chars.as_str())
            }
            None => false,
        },
        Some(literal) => {
            name_chars.next() == Some(literal)
                && glob_segment_matches(pattern_chars.as_str(), name_chars.as_str())
        }
    }
}

/// Parses a character class after `[`; returns whether `c` matched and the
/// pattern after the closing `]`, or `None` when the class is malformed.
fn match_class(pattern: &str, c: char) -> Option<(bool, &str)> {
    let (negated, mut rest) = match pattern.strip_prefix('^') {
        Some(after) => (true, after),
        None => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let mut chars = rest.chars();
        let lo = chars.next()?;
        if lo == ']' && !first {
            return Some((matched != negated, chars.as_str()));
        }
        first = false;
        let lo = if lo == '\\' { chars.next()? } else { lo };
        let after_lo = chars.as_str();
        let mut lookahead = after_lo.chars();
        let (hi, after) = match (lookahead.next(), lookahead.next()) {
            (Some('-'), Some(hi)) if hi != ']' => (hi, lookahead.as_str()),
            _ => (lo, after_lo),
        };
        if lo <= c && c <= hi {
            matched = true;
        }
        rest = after;
    }
}

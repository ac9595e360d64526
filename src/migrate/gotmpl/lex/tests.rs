//! Token-level tests: what each piece of text lexes to, trimming included.

use super::*;

fn kinds_and_texts(src: &str) -> Vec<(Kind, String)> {
    let lexed = lex(
        src,
        Keywords {
            break_ok: true,
            continue_ok: true,
        },
    );
    lexed
        .tokens
        .iter()
        .map(|t| match t.kind {
            Kind::Error => (
                t.kind,
                lexed.error.clone().map(|e| e.message).unwrap_or_default(),
            ),
            _ => (t.kind, src[t.start..t.end].to_string()),
        })
        .collect()
}

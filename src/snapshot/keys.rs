//! Key spelling: confd's clean keys (`/a/b`, one slash, no trailing slash),
//! joining a prefix and a key, and which subtrees contain which.

use std::borrow::Cow;

/// True when `key` is already in the form [`clean_key`] produces: a leading
/// `/`, then segments none of which is empty, `.` or `..`. This runs for
/// every `getv` of a render, so the usual key is settled with two substring
/// searches (the standard library's are vectorised, which a loop over the
/// bytes measured slower than): only a key with a segment starting with `.`
/// needs its segments looked at.
fn is_clean(key: &str) -> bool {
    if key == "/" {
        return true;
    }
    if !key.starts_with('/') || key.ends_with('/') || key.contains("//") {
        return false;
    }
    !key.contains("/.")
        || key[1..]
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

/// [`clean_key`] without an allocation when the key is already clean (the
/// common case on the render path).
pub(crate) fn clean_cow(key: &str) -> Cow<'_, str> {
    if is_clean(key) {
        return Cow::Borrowed(key);
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in key.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(key.len() + 1);
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// Normalises a key the way confd's `path.Clean` does: a leading `/`, no empty,
/// `.` or trailing segments, and `..` resolved. `""` and `"/"` are the root.
pub fn clean_key(key: &str) -> String {
    clean_cow(key).into_owned()
}

/// Joins two keys with exactly one `/` and cleans the result.
pub fn join_keys(base: &str, key: &str) -> String {
    clean_key(&format!("{base}/{key}"))
}

/// True when `key` is `root` itself or lies below it (`/app` covers `/app/x`
/// but not `/apple`). Both must be clean.
pub fn is_within(key: &str, root: &str) -> bool {
    root == "/"
        || (key.starts_with(root)
            && (key.len() == root.len() || key.as_bytes().get(root.len()) == Some(&b'/')))
}

/// Removes roots that lie inside other roots and sorts the rest, so that each
/// subtree is read, watched and counted exactly once.
pub fn minimal_roots<I, S>(roots: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut all: Vec<String> = roots.into_iter().map(|r| clean_key(r.as_ref())).collect();
    all.sort();
    all.dedup();
    let mut kept: Vec<String> = Vec::with_capacity(all.len());
    for root in all {
        if !kept.iter().any(|k| is_within(&root, k)) {
            kept.push(root);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The five substring searches `is_clean` replaced, as the reference.
    fn is_clean_by_searches(key: &str) -> bool {
        key == "/"
            || (key.starts_with('/')
                && !key.ends_with('/')
                && !key.contains("//")
                && !key.contains("/./")
                && !key.contains("/../")
                && !key.ends_with("/.")
                && !key.ends_with("/.."))
    }

    #[test]
    fn is_clean_agrees_with_the_substring_searches() {
        // Every key of up to 6 characters over the characters that matter.
        let alphabet = ['/', '.', 'a'];
        let mut keys = vec![String::new()];
        for _ in 0..6 {
            let longer: Vec<String> = keys
                .iter()
                .flat_map(|k| alphabet.iter().map(move |c| format!("{k}{c}")))
                .collect();
            keys.extend(longer);
        }
        keys.sort();
        keys.dedup();
        for key in &keys {
            assert_eq!(is_clean(key), is_clean_by_searches(key), "{key:?}");
            assert_eq!(
                is_clean(key),
                clean_key(key) == *key,
                "{key:?} cleans to {:?}",
                clean_key(key)
            );
        }
    }
}

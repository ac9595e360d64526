//! confd 0.16's data helpers as its memkv store answers them: exact keys
//! (no cleaning: `getv "/a/"` misses `/a`), `path.Match` globs with Go's
//! `syntax error in pattern`, memkv's `List` (a leaf passed to `ls` lists
//! its own name; `ls "/"` lists only top-level leaves) and `ListDir`
//! (`lsdir "/"` lists nothing), and `memkv.KVPair` values for `get`/`gets`.
//!
//! The store holds exactly the keys the resource's view shows, each as a
//! clean key relative to the prefix, which is what confd puts in memkv.
//! memkv scans every key on every call; here only the subtree a call can
//! match is walked, and the scan rules are applied to it unchanged.

use tera::{Error, Kwargs, State, TeraResult, Value};

use super::value::{Go, kvpair};
use crate::snapshot::{View, clean_key};
use crate::template::data::read_view;
use crate::template::funcs::{go_clean, path_base, path_dir};

/// The error text of memkv's `ErrNotExist` in a `KeyError`.
fn not_exist(helper: &str, key: &str) -> Error {
    Error::message(format!("error calling {helper}: key does not exist: {key}"))
}

/// A string argument, refused as text/template refuses a value of another
/// type for a Go `string` parameter.
pub(crate) fn string_arg<'k>(kwargs: &'k Kwargs, name: &'k str) -> TeraResult<String> {
    let value = kwargs
        .get::<Value>(name)?
        .ok_or_else(|| Error::message(format!("missing argument `{name}`")))?;
    match Go::of(&value) {
        Go::Str(s) => Ok(s.to_string()),
        Go::Nil => Err(Error::message("invalid value; expected string")),
        other => Err(Error::message(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        ))),
    }
}

/// memkv's lookup: the key exactly as written. Store keys are clean, so an
/// unclean key is never there.
fn exact<'v>(view: &'v View, key: &str) -> Option<&'v str> {
    if clean_key(key) == key {
        view.get(key)
    } else {
        None
    }
}

/// Every pair strictly below the clean directory `dir` (`/`: every pair
/// but the root's own), sorted by key.
fn pairs_below(view: &View, dir: &str, out: &mut Vec<(String, String)>) {
    for child in view.children(dir) {
        let path = if dir == "/" {
            format!("/{}", child.name)
        } else {
            format!("{dir}/{}", child.name)
        };
        if let Some(value) = view.get(&path) {
            out.push((path.clone(), value.to_string()));
        }
        if child.is_dir {
            pairs_below(view, &path, out);
        }
    }
}

/// Every pair of the store.
fn all_pairs(view: &View) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(value) = view.get("/") {
        out.push(("/".to_string(), value.to_string()));
    }
    pairs_below(view, "/", &mut out);
    out
}

/// `go_getv(key=K[, default=D])`: memkv's `GetValue`.
pub fn go_getv(kwargs: Kwargs, _: &State) -> TeraResult<String> {
    let key = string_arg(&kwargs, "key")?;
    let default = match kwargs.get::<Value>("default")? {
        Some(_) => Some(string_arg(&kwargs, "default")?),
        None => None,
    };
    read_view(|view| match (exact(view, &key), default) {
        (Some(value), _) => Ok(value.to_string()),
        (None, Some(default)) => Ok(default),
        (None, None) => Err(not_exist("getv", &key)),
    })
}

/// `go_get(key=K)`: memkv's `Get`, a `memkv.KVPair`.
pub fn go_get(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let key = string_arg(&kwargs, "key")?;
    read_view(|view| match exact(view, &key) {
        Some(value) => Ok(kvpair(&key, value)),
        None => Err(not_exist("get", &key)),
    })
}

/// `go_exists(key=K)`: memkv's `Exists`.
pub fn go_exists(kwargs: Kwargs, _: &State) -> TeraResult<bool> {
    let key = string_arg(&kwargs, "key")?;
    read_view(|view| Ok(exact(view, &key).is_some()))
}

/// The pairs matching `pattern` by Go's `path.Match`, sorted by key.
fn matching(view: &View, helper: &str, pattern: &str) -> TeraResult<Vec<(String, String)>> {
    let bad = || Error::message(format!("error calling {helper}: syntax error in pattern"));
    // Go reports a malformed pattern at the first key it tries, and an
    // empty store is never tried.
    let valid = path_match(pattern, "").is_ok();
    let candidates = match literal_dir(pattern) {
        Some(dir) if valid => {
            let mut out = Vec::new();
            if let Some(value) = view.get(&dir) {
                out.push((dir.clone(), value.to_string()));
            }
            pairs_below(view, &dir, &mut out);
            out
        }
        _ => all_pairs(view),
    };
    if !valid && !candidates.is_empty() {
        return Err(bad());
    }
    let mut out = Vec::new();
    for (key, value) in candidates {
        if path_match(pattern, &key).map_err(|_| bad())? {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// The deepest clean directory every match of `pattern` lies in: its text
/// up to the last `/` before the first special character.
fn literal_dir(pattern: &str) -> Option<String> {
    let special = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    let slash = pattern[..special].rfind('/')?;
    let dir = if slash == 0 { "/" } else { &pattern[..slash] };
    (clean_key(dir) == dir).then(|| dir.to_string())
}

/// `go_gets(pattern=P)`: memkv's `GetAll`, `memkv.KVPair`s sorted by key.
pub fn go_gets(kwargs: Kwargs, _: &State) -> TeraResult<Value> {
    let pattern = string_arg(&kwargs, "pattern")?;
    read_view(|view| {
        let pairs = matching(view, "gets", &pattern)?;
        Ok(Value::from(
            pairs.iter().map(|(k, v)| kvpair(k, v)).collect::<Vec<_>>(),
        ))
    })
}

/// `go_getvs(pattern=P)`: memkv's `GetAllValues`, values sorted.
pub fn go_getvs(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    let pattern = string_arg(&kwargs, "pattern")?;
    read_view(|view| {
        let mut values: Vec<String> = matching(view, "getvs", &pattern)?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        values.sort();
        Ok(values)
    })
}

/// Go's `strings.Split(path.Clean(p), "/")`.
fn terms(path: &str) -> Vec<String> {
    go_clean(path).split('/').map(str::to_string).collect()
}

fn same_prefix_terms(prefix: &[String], test: &[String]) -> bool {
    test.len() >= prefix.len() && prefix.iter().zip(test).all(|(a, b)| a == b)
}

/// The keys memkv's `List`/`ListDir` can accept for `file_path`: the exact
/// key and the subtree below its clean form.
fn list_candidates(view: &View, file_path: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if exact(view, file_path).is_some() {
        keys.push(file_path.to_string());
    }
    let clean = go_clean(file_path);
    if clean.starts_with('/') {
        let mut below = Vec::new();
        pairs_below(view, &clean, &mut below);
        keys.extend(below.into_iter().map(|(k, _)| k));
    }
    keys
}

/// `go_ls(key=K)`: memkv's `List`.
pub fn go_ls(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    let file_path = string_arg(&kwargs, "key")?;
    read_view(|view| {
        let prefix = terms(&file_path);
        let mut names = std::collections::BTreeSet::new();
        for key in list_candidates(view, &file_path) {
            if key == file_path {
                names.insert(path_base(&key));
                continue;
            }
            if same_prefix_terms(&prefix, &terms(&path_dir(&key))) {
                let stripped = key.strip_prefix(file_path.as_str()).unwrap_or(&key);
                let stripped = stripped.strip_prefix('/').unwrap_or(stripped);
                names.insert(stripped.split('/').next().unwrap_or_default().to_string());
            }
        }
        Ok(names.into_iter().collect())
    })
}

/// `go_lsdir(key=K)`: memkv's `ListDir`.
pub fn go_lsdir(kwargs: Kwargs, _: &State) -> TeraResult<Vec<String>> {
    let file_path = string_arg(&kwargs, "key")?;
    read_view(|view| {
        let prefix = terms(&file_path);
        let mut names = std::collections::BTreeSet::new();
        for key in list_candidates(view, &file_path) {
            if !key.starts_with(file_path.as_str()) {
                continue;
            }
            let items = terms(&path_dir(&key));
            if same_prefix_terms(&prefix, &items) && items.len() > prefix.len() {
                names.insert(items[prefix.len()].clone());
            }
        }
        Ok(names.into_iter().collect())
    })
}

/// Go's `path.ErrBadPattern`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go 1.19's `path.Match`.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Go's `utf8.DecodeRune`: U+FFFD and width 1 for an invalid byte.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    for width in 1..=s.len().min(4) {
        if let Ok(text) = std::str::from_utf8(&s[..width])
            && let Some(c) = text.chars().next()
        {
            return (c as u32, width);
        }
    }
    (0xfffd, usize::from(!s.is_empty()))
}

fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(BadPattern);
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    if r == 0xfffd && n == 1 && std::str::from_utf8(&chunk[..1]).is_err() {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

fn match_chunk<'s>(chunk: &[u8], s: &'s [u8]) -> Result<(&'s [u8], bool), BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (c, n) = decode_rune(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            c => {
                let mut c = c;
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                    c = chunk[0];
                }
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        return Ok((b"", false));
    }
    Ok((s, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected results from Go 1.19's path.Match.
    #[test]
    fn path_match_like_go() {
        assert_eq!(path_match("/a/*", "/a/b"), Ok(true));
        assert_eq!(path_match("/a/*", "/a/b/c"), Ok(false));
        assert_eq!(path_match("*", "/a"), Ok(false));
        assert_eq!(path_match("/a/*/c", "/a/b/c"), Ok(true));
        assert_eq!(path_match("/a/?", "/a/bc"), Ok(false));
        assert_eq!(path_match("/a/[a-c]x", "/a/bx"), Ok(true));
        assert_eq!(path_match("/a/[^a-c]x", "/a/bx"), Ok(false));
        assert_eq!(path_match("/a/\\*", "/a/*"), Ok(true));
        assert_eq!(path_match("/a/*b*", "/a/xbx"), Ok(true));
        assert_eq!(path_match("/a/[", "/a/b"), Err(BadPattern));
        assert_eq!(path_match("/x[", "/a"), Err(BadPattern));
        assert_eq!(path_match("/a/\\", "/b"), Err(BadPattern));
        assert_eq!(path_match("/a/[]", "/a/b"), Err(BadPattern));
        assert_eq!(path_match("", ""), Ok(true));
    }

    #[test]
    fn literal_dir_is_the_deepest_plain_directory() {
        assert_eq!(literal_dir("/a/b/*").as_deref(), Some("/a/b"));
        assert_eq!(literal_dir("/a*").as_deref(), Some("/"));
        assert_eq!(literal_dir("/a/b").as_deref(), Some("/a"));
        assert_eq!(literal_dir("*"), None);
        assert_eq!(literal_dir("/a//b/*"), None);
    }
}

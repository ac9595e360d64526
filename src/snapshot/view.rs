//! A resource's view of a snapshot: its prefix stripped, its `keys` as the
//! only subtrees it may read, and the queries templates make through it.

use std::borrow::Cow;
use std::sync::Arc;

use super::glob::{glob_segment_matches, has_glob_meta};
use super::{
    Child, Snapshot, clean_cow, clean_key, is_within, join_keys, merge_children, minimal_roots,
};

/// What one resource sees of a snapshot: keys under its roots, addressed
/// relative to its prefix.
#[derive(Debug, Clone)]
pub struct View {
    snapshot: Arc<Snapshot>,
    prefix: String,
    roots: Vec<String>,
}

/// A key/value pair as templates see it (prefix stripped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key, relative to the resource's prefix.
    pub key: String,
    /// The value.
    pub value: String,
}

impl View {
    /// A view of `snapshot` through `prefix` restricted to `keys` (both relative
    /// keys, as written in the resource).
    pub fn new(snapshot: Arc<Snapshot>, prefix: &str, keys: &[String]) -> Self {
        let prefix = clean_key(prefix);
        let roots = minimal_roots(keys.iter().map(|k| join_keys(&prefix, k)));
        View {
            snapshot,
            prefix,
            roots,
        }
    }

    /// The prefix this view strips.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The absolute roots this view reads (prefix applied).
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    fn absolute<'k>(&self, key: &'k str) -> Cow<'k, str> {
        let key = clean_cow(key);
        if self.prefix == "/" {
            key
        } else if key == "/" {
            Cow::Owned(self.prefix.clone())
        } else {
            let mut joined = String::with_capacity(self.prefix.len() + key.len());
            joined.push_str(&self.prefix);
            joined.push_str(&key);
            Cow::Owned(joined)
        }
    }

    fn relative(&self, absolute: &str) -> String {
        if self.prefix == "/" {
            return absolute.to_string();
        }
        match absolute.strip_prefix(&self.prefix) {
            Some("") => "/".to_string(),
            Some(rest) => rest.to_string(),
            None => absolute.to_string(),
        }
    }

    fn visible(&self, absolute: &str) -> bool {
        self.roots.iter().any(|r| is_within(absolute, r))
    }

    /// Number of keys the resource can see (what `min_keys` counts).
    pub fn key_count(&self) -> usize {
        self.roots
            .iter()
            .map(|r| self.snapshot.count_within(r))
            .sum()
    }

    /// The value of `key`, when the resource can see it.
    pub fn get(&self, key: &str) -> Option<&str> {
        let absolute = self.absolute(key);
        if self.visible(&absolute) {
            self.snapshot.get(&absolute)
        } else {
            None
        }
    }

    /// Direct children of `key` the resource can see, sorted by name.
    pub fn children(&self, key: &str) -> Vec<Child> {
        let dir = self.absolute(key);
        let dir: &str = &dir;
        let mut found: Vec<Child> = Vec::new();
        for root in &self.roots {
            if is_within(dir, root) {
                found.extend(self.snapshot.children(dir));
            } else if is_within(root, dir) {
                // The root lies deeper: the only child on the way to it is the
                // root's next segment, present when the root holds anything.
                let rest = &root[if dir == "/" { 1 } else { dir.len() + 1 }..];
                let (name, deeper) = match rest.find('/') {
                    Some(slash) => (&rest[..slash], true),
                    None => (rest, false),
                };
                if deeper {
                    if self.snapshot.count_within(root) > 0 {
                        found.push(Child {
                            name: name.to_string(),
                            is_dir: true,
                        });
                    }
                } else {
                    let is_dir = self.snapshot.has_children(root);
                    if is_dir || self.snapshot.get(root).is_some() {
                        found.push(Child {
                            name: name.to_string(),
                            is_dir,
                        });
                    }
                }
            }
        }
        if self.roots.len() > 1 {
            merge_children(&mut found);
        }
        found
    }

    /// Every visible key/value pair whose key matches a Go `path.Match` glob,
    /// sorted by key. `*` never crosses a `/`. Only the range below the
    /// pattern's literal prefix is scanned.
    pub fn glob(&self, pattern: &str) -> Vec<Pair> {
        let absolute = self.absolute(pattern);
        let segments: Vec<&str> = absolute.split('/').filter(|s| !s.is_empty()).collect();
        let literal = segments.iter().take_while(|s| !has_glob_meta(s)).count();
        let mut base = String::from("/");
        base.push_str(&segments[..literal].join("/"));
        if literal == segments.len() {
            return self
                .get_absolute(&base)
                .map(|value| Pair {
                    key: self.relative(&base),
                    value: value.to_string(),
                })
                .into_iter()
                .collect();
        }
        let wild = &segments[literal..];
        let skip = if base == "/" { 1 } else { base.len() + 1 };
        let mut out = Vec::new();
        for (key, value) in self.snapshot.pairs_below(&base) {
            let rest = &key[skip..];
            if rest.split('/').count() != wild.len() {
                continue;
            }
            let matched = rest
                .split('/')
                .zip(wild)
                .all(|(name, pattern)| glob_segment_matches(pattern, name));
            if matched && self.visible(key) {
                out.push(Pair {
                    key: self.relative(key),
                    value: value.to_string(),
                });
            }
        }
        out
    }

    fn get_absolute(&self, absolute: &str) -> Option<&str> {
        if self.visible(absolute) {
            self.snapshot.get(absolute)
        } else {
            None
        }
    }
}

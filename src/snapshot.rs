//! The key space a pass renders from: one sorted, immutable list of `key → value`
//! pairs read once per backend per pass and shared by every resource, plus the
//! per-resource [`View`] that applies the resource's prefix and `keys` filter.
//!
//! Every query is a binary search followed by a walk over the answer only: `ls`
//! skips over whole subtrees instead of visiting each key below them, and globs
//! are matched one path segment at a time. The Go confd scans every key of the
//! store on every `ls`/`gets` call, which is what makes it slow at scale.

use std::sync::Arc;

/// Normalises a key the way confd's `path.Clean` does: a leading `/`, no empty,
/// `.` or trailing segments, and `..` resolved. `""` and `"/"` are the root.
pub fn clean_key(key: &str) -> String {
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
    out
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

/// A sorted, de-duplicated set of clean keys with their values.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    entries: Vec<(Box<str>, Box<str>)>,
}

/// One direct child of a directory, as `ls`/`lsdir` see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The child's last path segment.
    pub name: String,
    /// True when the child has children of its own.
    pub is_dir: bool,
}

impl Snapshot {
    /// Builds a snapshot from pairs in any order; keys are cleaned, and for a key
    /// given twice the last value wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut entries: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (clean_key(k.as_ref()).into(), v.into().into()))
            .collect();
        // A stable sort keeps input order among equal keys, so the last one wins.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match deduped.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => deduped.push(entry),
            }
        }
        Snapshot { entries: deduped }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the snapshot holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every pair, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The value of a clean key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.entries[i].1)
    }

    fn lower_bound(&self, key: &str) -> usize {
        self.entries.partition_point(|(k, _)| &**k < key)
    }

    /// The index range of the keys strictly below directory `dir`.
    fn below(&self, dir: &str) -> std::ops::Range<usize> {
        if dir == "/" {
            return 0..self.entries.len();
        }
        // Keys below `/a` are exactly those in ["/a/", "/a0"): '0' follows '/'.
        let start = self.lower_bound(&format!("{dir}/"));
        let end = self.lower_bound(&format!("{dir}0"));
        start..end
    }

    /// Number of keys that are `root` or lie below it.
    pub fn count_within(&self, root: &str) -> usize {
        self.below(root).len() + usize::from(root != "/" && self.get(root).is_some())
    }

    /// True when `dir` has at least one key below it.
    pub fn has_children(&self, dir: &str) -> bool {
        !self.below(dir).is_empty()
    }

    /// The direct children of `dir`, sorted by name. Each subtree is skipped with
    /// one binary search, so the cost follows the number of children, not the
    /// number of keys below them.
    pub fn children(&self, dir: &str) -> Vec<Child> {
        let child_prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        let range = self.below(dir);
        let mut found: Vec<Child> = Vec::new();
        let mut i = range.start;
        while i < range.end {
            let key = &*self.entries[i].0;
            let rest = &key[child_prefix.len()..];
            match rest.find('/') {
                Some(slash) => {
                    let name = &rest[..slash];
                    found.push(Child {
                        name: name.to_string(),
                        is_dir: true,
                    });
                    i = self
                        .lower_bound(&format!("{child_prefix}{name}0"))
                        .max(i + 1);
                }
                None => {
                    found.push(Child {
                        name: rest.to_string(),
                        is_dir: false,
                    });
                    i += 1;
                }
            }
        }
        // A name can be both a leaf and a directory ("/a" and "/a/b"), and
        // siblings such as "a.b" sort between them, so merge after sorting.
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                earlier.is_dir |= later.is_dir;
                true
            } else {
                false
            }
        });
        found
    }
}

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

    /// The absolute roots this view reads (prefix applied).
    pub fn roots(&self) -> &[String] {
        &self.roots
    }

    fn absolute(&self, key: &str) -> String {
        join_keys(&self.prefix, key)
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
        let mut found: Vec<Child> = Vec::new();
        for root in &self.roots {
            if is_within(&dir, root) {
                found.extend(self.snapshot.children(&dir));
            } else if is_within(root, &dir) {
                // The root lies deeper: the only child on the way to it is the
                // root's next segment, present when the root holds anything.
                let rest = root[if dir == "/" { 1 } else { dir.len() + 1 }..].to_string();
                let (name, deeper) = match rest.find('/') {
                    Some(slash) => (rest[..slash].to_string(), true),
                    None => (rest, false),
                };
                if deeper {
                    if self.snapshot.count_within(root) > 0 {
                        found.push(Child { name, is_dir: true });
                    }
                } else {
                    let is_dir = self.snapshot.has_children(root);
                    if is_dir || self.snapshot.get(root).is_some() {
                        found.push(Child { name, is_dir });
                    }
                }
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                earlier.is_dir |= later.is_dir;
                true
            } else {
                false
            }
        });
        found
    }

    /// Every visible key/value pair whose key matches a Go `path.Match` glob,
    /// sorted by key. `*` never crosses a `/`.
    pub fn glob(&self, pattern: &str) -> Vec<Pair> {
        let absolute = self.absolute(pattern);
        let segments: Vec<&str> = absolute.split('/').filter(|s| !s.is_empty()).collect();
        let mut out = Vec::new();
        self.glob_walk("/", &segments, &mut out);
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    fn glob_walk(&self, dir: &str, segments: &[&str], out: &mut Vec<Pair>) {
        let Some((segment, rest)) = segments.split_first() else {
            if self.visible(dir) {
                if let Some(value) = self.snapshot.get(dir) {
                    out.push(Pair {
                        key: self.relative(dir),
                        value: value.to_string(),
                    });
                }
            }
            return;
        };
        if !has_glob_meta(segment) {
            let next = join_keys(dir, &unescape_glob(segment));
            self.glob_walk(&next, rest, out);
            return;
        }
        let relative_dir = self.relative(dir);
        for child in self.children(&relative_dir) {
            if (rest.is_empty() || child.is_dir) && glob_segment_matches(segment, &child.name) {
                self.glob_walk(&join_keys(dir, &child.name), rest, out);
            }
        }
    }
}

fn has_glob_meta(segment: &str) -> bool {
    segment.contains(['*', '?', '[', '\\'])
}

fn unescape_glob(segment: &str) -> String {
    segment.replace('\\', "")
}

/// Matches one path segment against one pattern segment with Go's `path.Match`
/// rules: `*` any run, `?` one character, `[a-z]`/`[^a-z]` classes, `\` escapes.
/// A malformed class never matches.
pub fn glob_segment_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        '?' => !name.is_empty() && matches_from(rest, &name[1..]),
        '[' => {
            let Some((&c, name_rest)) = name.split_first() else {
                return false;
            };
            match match_class(rest, c) {
                Some((true, after)) => matches_from(after, name_rest),
                _ => false,
            }
        }
        '\\' => match rest.split_first() {
            Some((&literal, after)) => {
                name.first() == Some(&literal) && matches_from(after, &name[1..])
            }
            None => false,
        },
        literal => name.first() == Some(&literal) && matches_from(rest, &name[1..]),
    }
}

/// Parses a character class after `[`; returns whether `c` matched and the
/// pattern after the closing `]`, or `None` when the class is malformed.
fn match_class(pattern: &[char], c: char) -> Option<(bool, &[char])> {
    let (negated, mut rest) = match pattern.split_first() {
        Some(('^', after)) => (true, after),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        let (&lo, after) = rest.split_first()?;
        if lo == ']' && !first {
            return Some((matched != negated, after));
        }
        first = false;
        let (lo, after) = if lo == '\\' {
            let (&escaped, after) = after.split_first()?;
            (escaped, after)
        } else {
            (lo, after)
        };
        let (hi, after) = match after {
            ['-', hi, tail @ ..] if *hi != ']' => (*hi, tail),
            _ => (lo, after),
        };
        if lo <= c && c <= hi {
            matched = true;
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(pairs: &[(&str, &str)]) -> Arc<Snapshot> {
        Arc::new(Snapshot::from_pairs(pairs.iter().copied()))
    }

    fn names(children: Vec<Child>) -> Vec<String> {
        children.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn clean_key_normalises_like_path_clean() {
        assert_eq!(clean_key(""), "/");
        assert_eq!(clean_key("/"), "/");
        assert_eq!(clean_key("a/b/"), "/a/b");
        assert_eq!(clean_key("//a//b/./c/../d"), "/a/b/d");
        assert_eq!(
            join_keys("/production", "/services/"),
            "/production/services"
        );
        assert_eq!(join_keys("/", "/x"), "/x");
    }

    #[test]
    fn is_within_does_not_overmatch_siblings() {
        assert!(is_within("/app", "/app"));
        assert!(is_within("/app/x", "/app"));
        assert!(!is_within("/apple", "/app"));
        assert!(is_within("/anything", "/"));
    }

    #[test]
    fn minimal_roots_drops_nested_roots() {
        assert_eq!(
            minimal_roots(["/a/b", "/a", "/ab", "/a/"]),
            vec!["/a".to_string(), "/ab".to_string()]
        );
        assert_eq!(minimal_roots(["/x", "/"]), vec!["/".to_string()]);
    }

    #[test]
    fn last_value_wins_for_duplicate_keys() {
        let s = Snapshot::from_pairs([("/a", "1"), ("/a/", "2")]);
        assert_eq!(s.len(), 1);
        assert_eq!(s.get("/a"), Some("2"));
    }

    #[test]
    fn children_skip_subtrees_and_merge_leaf_and_dir() {
        let s = snap(&[
            ("/a", "leaf"),
            ("/a.b", "x"),
            ("/a/x/y", "1"),
            ("/a/z", "2"),
            ("/b/c", "3"),
            ("/c", "4"),
        ]);
        let kids = s.children("/");
        assert_eq!(
            kids,
            vec![
                Child {
                    name: "a".into(),
                    is_dir: true
                },
                Child {
                    name: "a.b".into(),
                    is_dir: false
                },
                Child {
                    name: "b".into(),
                    is_dir: true
                },
                Child {
                    name: "c".into(),
                    is_dir: false
                },
            ]
        );
        assert_eq!(names(s.children("/a")), vec!["x", "z"]);
        assert!(s.children("/missing").is_empty());
        assert!(s.children("/c").is_empty());
    }

    #[test]
    fn view_strips_prefix_and_hides_keys_outside_roots() {
        let s = snap(&[
            ("/production/services/web/a", "1"),
            ("/production/services/db/b", "2"),
            ("/production/secret", "3"),
            ("/staging/services/web/a", "9"),
        ]);
        let v = View::new(s, "/production", &["/services/web".to_string()]);
        assert_eq!(v.get("/services/web/a"), Some("1"));
        assert_eq!(v.get("/services/db/b"), None);
        assert_eq!(v.get("/secret"), None);
        assert_eq!(names(v.children("/")), vec!["services"]);
        assert_eq!(names(v.children("/services")), vec!["web"]);
        assert_eq!(names(v.children("/services/web/")), vec!["a"]);
        assert_eq!(v.key_count(), 1);
    }

    #[test]
    fn view_children_of_a_root_that_is_a_leaf() {
        let s = snap(&[("/app/name", "x"), ("/app/port", "1")]);
        let v = View::new(s, "", &["/app/name".to_string()]);
        let kids = v.children("/app");
        assert_eq!(
            kids,
            vec![Child {
                name: "name".into(),
                is_dir: false
            }]
        );
        assert!(v.children("/nothing").is_empty());
    }

    #[test]
    fn glob_matches_one_segment_per_star_and_sorts_by_key() {
        let s = snap(&[
            ("/upstream/app2", "10.0.1.11:8080"),
            ("/upstream/app1", "10.0.1.10:8080"),
            ("/upstream/deep/app3", "no"),
            ("/upstreamx/app4", "no"),
        ]);
        let v = View::new(s, "/", &["/".to_string()]);
        let got: Vec<String> = v.glob("/upstream/*").into_iter().map(|p| p.key).collect();
        assert_eq!(got, vec!["/upstream/app1", "/upstream/app2"]);
        let deep: Vec<String> = v.glob("/*/*/app?").into_iter().map(|p| p.key).collect();
        assert_eq!(deep, vec!["/upstream/deep/app3"]);
        assert_eq!(v.glob("/upstream/app1").len(), 1);
        assert!(v.glob("/nothing/*").is_empty());
    }

    #[test]
    fn glob_segment_rules_follow_go_path_match() {
        assert!(glob_segment_matches("*", "anything"));
        assert!(glob_segment_matches("*", ""));
        assert!(glob_segment_matches("a*c", "abbbc"));
        assert!(glob_segment_matches("a?c", "abc"));
        assert!(!glob_segment_matches("a?c", "ac"));
        assert!(glob_segment_matches("[a-c]x", "bx"));
        assert!(!glob_segment_matches("[^a-c]x", "bx"));
        assert!(glob_segment_matches("\\*", "*"));
        assert!(!glob_segment_matches("[a-", "a"));
    }

    #[test]
    fn glob_respects_prefix_and_roots() {
        let s = snap(&[("/p/a/x", "1"), ("/p/b/x", "2")]);
        let v = View::new(s, "/p", &["/a".to_string()]);
        let got = v.glob("/*/x");
        assert_eq!(
            got,
            vec![Pair {
                key: "/a/x".into(),
                value: "1".into()
            }]
        );
    }
}

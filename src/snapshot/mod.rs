//! The key space a pass renders from: one sorted, immutable list of `key → value`
//! pairs read once per backend per pass and shared by every resource, plus the
//! per-resource [`View`] that applies the resource's prefix and `keys` filter.
//!
//! Lookups by exact key go through a hash index; `ls`/`lsdir` are a binary
//! search followed by a walk that skips whole subtrees, so their cost follows
//! the number of children, not the number of keys below them; globs scan only
//! the range below their literal prefix. The Go confd scans every key of the
//! store on every `ls`/`gets` call, which is what makes it slow at scale.

mod glob;
mod keys;
mod list;
mod view;

use std::borrow::Cow;

pub use glob::glob_segment_matches;
pub(crate) use keys::clean_cow;
pub use keys::{clean_key, is_within, join_keys, minimal_roots};
pub use list::PairList;
pub use view::{Pair, View};

/// Where one pair's text lies in [`Pairs::text`]: the key's bytes, then the
/// value's.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    key_len: usize,
    value_len: usize,
}

impl Span {
    fn end(&self) -> usize {
        self.start + self.key_len + self.value_len
    }
}

/// Sorted pairs with all their text in one buffer (in the order read after
/// a build, in key order after a compaction) and one span per pair: two
/// allocations however many keys, no per-pair allocator overhead, and
/// nothing for the allocator to fragment while the daemon keeps a snapshot
/// between passes. A changed
/// or added pair is appended to the buffer; the buffer is rewritten once
/// more than half of it is unused.
#[derive(Clone, Default)]
struct Pairs {
    text: String,
    spans: Vec<Span>,
    /// Bytes of `text` that no span uses any more.
    unused: usize,
}

impl Pairs {
    /// Sorted, de-duplicated pairs from clean keys in any order; for a key
    /// given twice the later pair wins.
    fn build<'a>(pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>) -> Pairs {
        let mut built = Pairs::default();
        for (key, value) in pairs {
            let span = built.append(&key, &value);
            built.spans.push(span);
        }
        built.sorted()
    }

    /// These pairs (clean keys, in any order) sorted and de-duplicated, the
    /// later of two equal keys winning. Only the spans move: the text stays
    /// where it is unless duplicates left part of it unused (a second copy
    /// of every key and value would double the peak memory of a large
    /// read for a little locality).
    fn sorted(mut self) -> Pairs {
        let text = &self.text;
        let key = |s: &Span| &text[s.start..s.start + s.key_len];
        if self.spans.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return self;
        }
        // Equal keys stay in input order (their start), so the later one
        // can replace the earlier; unstable sorting needs no extra buffer.
        self.spans
            .sort_unstable_by(|a, b| key(a).cmp(key(b)).then(a.start.cmp(&b.start)));
        let mut dropped = 0;
        self.spans.dedup_by(|later, earlier| {
            let same = key(later) == key(earlier);
            if same {
                dropped += earlier.key_len + earlier.value_len;
                *earlier = *later;
            }
            same
        });
        self.unused += dropped;
        self.compact_if_mostly_unused();
        self
    }

    fn append(&mut self, key: &str, value: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(key);
        self.text.push_str(value);
        Span {
            start,
            key_len: key.len(),
            value_len: value.len(),
        }
    }

    /// Rewrites the buffer with the live pairs only, in key order.
    fn compact(&mut self) {
        let live: usize = self.spans.iter().map(|s| s.key_len + s.value_len).sum();
        let mut text = String::with_capacity(live);
        for span in &mut self.spans {
            let start = text.len();
            text.push_str(&self.text[span.start..span.end()]);
            span.start = start;
        }
        self.text = text;
        self.unused = 0;
    }

    fn compact_if_mostly_unused(&mut self) {
        if self.unused > 4096 && self.unused * 2 > self.text.len() {
            self.compact();
        }
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn key(&self, i: usize) -> &str {
        let s = self.spans[i];
        &self.text[s.start..s.start + s.key_len]
    }

    fn value(&self, i: usize) -> &str {
        let s = self.spans[i];
        &self.text[s.start + s.key_len..s.end()]
    }

    /// The key at `i`, or `None` past the end.
    fn key_at(&self, i: usize) -> Option<&str> {
        (i < self.spans.len()).then(|| self.key(i))
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.spans.len()).map(|i| (self.key(i), self.value(i)))
    }

    /// The first position whose key is not below `key`.
    fn lower_bound(&self, key: &str) -> usize {
        self.lower_bound_in(0..self.spans.len(), key)
    }

    /// [`lower_bound`](Self::lower_bound) searching only `range`, which must
    /// hold the answer.
    fn lower_bound_in(&self, range: std::ops::Range<usize>, key: &str) -> usize {
        let start = range.start;
        start
            + self.spans[range].partition_point(|s| &self.text[s.start..s.start + s.key_len] < key)
    }

    fn set_value(&mut self, i: usize, value: &str) {
        let old = self.spans[i];
        let key_start = old.start;
        if value.len() <= old.value_len {
            // Fits where the old value was.
            let at = key_start + old.key_len;
            self.text.replace_range(at..at + value.len(), value);
            self.unused += old.value_len - value.len();
            self.spans[i].value_len = value.len();
        } else {
            let key = self.text[key_start..key_start + old.key_len].to_string();
            self.spans[i] = self.append(&key, value);
            self.unused += old.key_len + old.value_len;
        }
        self.compact_if_mostly_unused();
    }

    fn insert(&mut self, i: usize, key: &str, value: &str) {
        let span = self.append(key, value);
        self.spans.insert(i, span);
    }

    fn remove_range(&mut self, range: std::ops::Range<usize>) {
        for span in self.spans.drain(range) {
            self.unused += span.key_len + span.value_len;
        }
        self.compact_if_mostly_unused();
    }
}

/// A sorted, de-duplicated set of clean keys with their values.
#[derive(Clone, Default)]
pub struct Snapshot {
    entries: Pairs,
    /// Positions in `entries`, by key hash: `getv` is one hash lookup.
    index: hashbrown::HashTable<u32>,
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("keys", &self.entries.len())
            .finish_non_exhaustive()
    }
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
        V: AsRef<str>,
    {
        let pairs: Vec<(K, V)> = pairs.into_iter().collect();
        let entries = Pairs::build(
            pairs
                .iter()
                .map(|(k, v)| (clean_cow(k.as_ref()), Cow::Borrowed(v.as_ref()))),
        );
        let mut snapshot = Snapshot {
            entries,
            index: hashbrown::HashTable::new(),
            hasher: ahash::RandomState::new(),
        };
        snapshot.reindex();
        snapshot
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
        self.entries.iter()
    }

    /// The value of a clean key.
    pub fn get(&self, key: &str) -> Option<&str> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&p| self.entries.key_at(p as usize) == Some(key))
            .map(|&p| self.entries.value(p as usize))
    }

    fn lower_bound(&self, key: &str) -> usize {
        self.entries.lower_bound(key)
    }

    /// The index range of the keys strictly below directory `dir`.
    fn below(&self, dir: &str) -> std::ops::Range<usize> {
        if dir == "/" {
            return 0..self.entries.len();
        }
        // Keys below `/a` are exactly those in ["/a/", "/a0"): '0' follows '/'.
        let mut bound = String::with_capacity(dir.len() + 1);
        bound.push_str(dir);
        bound.push('/');
        let start = self.lower_bound(&bound);
        bound.pop();
        bound.push('0');
        let end = self.lower_bound(&bound);
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
        let prefix_len = if dir == "/" { 1 } else { dir.len() + 1 };
        let range = self.below(dir);
        let mut found: Vec<Child> = Vec::new();
        let mut seek = String::new();
        let mut i = range.start;
        while i < range.end {
            let key = self.entries.key(i);
            let rest = &key[prefix_len..];
            match rest.find('/') {
                Some(slash) => {
                    let name = &rest[..slash];
                    found.push(Child {
                        name: name.to_string(),
                        is_dir: true,
                    });
                    // Skip the child's subtree ("<dir>/<name>/…"): a few steps
                    // for a small one, else a binary search for the first key
                    // after it, "<dir>/<name>0".
                    let subtree = &key[..prefix_len + slash + 1];
                    let mut next = i + 1;
                    let mut steps = 0;
                    while next < range.end
                        && steps < 8
                        && self.entries.key(next).starts_with(subtree)
                    {
                        next += 1;
                        steps += 1;
                    }
                    if steps == 8 && next < range.end && self.entries.key(next).starts_with(subtree)
                    {
                        // A large subtree: gallop to a key past it, then
                        // search only the last stride, so the cost follows
                        // the subtree's size rather than the whole range's.
                        let mut stride = 8;
                        let mut past = next + stride;
                        while past < range.end && self.entries.key(past).starts_with(subtree) {
                            next = past;
                            stride *= 2;
                            past = next + stride;
                        }
                        seek.clear();
                        seek.push_str(&key[..prefix_len + slash]);
                        seek.push('0');
                        next = self
                            .entries
                            .lower_bound_in(next..past.min(range.end), &seek);
                    }
                    i = next;
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
        merge_children(&mut found);
        found
    }

    /// The pairs strictly below `dir`, in key order.
    fn pairs_below(&self, dir: &str) -> impl Iterator<Item = (&str, &str)> {
        self.below(dir)
            .map(|i| (self.entries.key(i), self.entries.value(i)))
    }

    /// The position of a clean key, through the hash index.
    fn position(&self, key: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.index
            .find(hash, |&p| self.entries.key_at(p as usize) == Some(key))
            .map(|&p| p as usize)
    }

    /// Rebuilds the hash index from `entries` (after a change that moved many
    /// positions).
    fn reindex(&mut self) {
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.clear();
        self.index.reserve(entries.len(), |&p| {
            hasher.hash_one(entries.key_at(p as usize).unwrap_or(""))
        });
        for (position, (key, _)) in entries.iter().enumerate() {
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            self.index
                .insert_unique(hasher.hash_one(key), position, |&p| {
                    hasher.hash_one(entries.key_at(p as usize).unwrap_or(""))
                });
        }
    }

    /// Sets `key` to `value`, adding the key when it is new; returns whether
    /// the snapshot changed. The key is cleaned first.
    pub fn insert(&mut self, key: &str, value: &str) -> bool {
        let key = clean_cow(key);
        if let Some(position) = self.position(&key) {
            if self.entries.value(position) == value {
                return false;
            }
            self.entries.set_value(position, value);
            return true;
        }
        let position = self.lower_bound(&key);
        // Every later entry moves one place up.
        for p in self.index.iter_mut() {
            if *p as usize >= position {
                *p += 1;
            }
        }
        self.entries.insert(position, &key, value);
        let entries = &self.entries;
        let hasher = &self.hasher;
        self.index.insert_unique(
            hasher.hash_one(key.as_ref()),
            u32::try_from(position).unwrap_or(u32::MAX),
            |&p| hasher.hash_one(entries.key_at(p as usize).unwrap_or("")),
        );
        true
    }

    /// Removes `key` only (keys below it stay: etcd v3's keys are flat);
    /// returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let key = clean_cow(key);
        let Some(position) = self.position(&key) else {
            return false;
        };
        self.entries.remove_range(position..position + 1);
        let hash = self.hasher.hash_one(key.as_ref());
        if let Ok(entry) = self.index.find_entry(hash, |&p| p as usize == position) {
            entry.remove();
        }
        // Every later entry moves one place down.
        for p in self.index.iter_mut() {
            if *p as usize > position {
                *p -= 1;
            }
        }
        true
    }

    /// Removes `key` and every key below it (etcd v2 deletes a directory
    /// with everything in it); returns whether the snapshot changed.
    pub fn remove_tree(&mut self, key: &str) -> bool {
        let key = clean_cow(key);
        let below = self.below(&key);
        if below.is_empty() {
            return self.remove(&key);
        }
        let exact = if key == "/" {
            None
        } else {
            self.position(&key)
        };
        // The key sorts before its subtree: removing the subtree first leaves
        // its position as it is.
        self.entries.remove_range(below);
        if let Some(position) = exact {
            self.entries.remove_range(position..position + 1);
        }
        self.reindex();
        true
    }

    /// Replaces everything at or below any of `roots` with `pairs` (a fresh
    /// read of those subtrees); pairs outside the roots are ignored.
    pub fn replace_trees(&mut self, roots: &[String], pairs: &[(String, String)]) {
        let roots: Vec<String> = roots.iter().map(|r| clean_key(r)).collect();
        let within = |key: &str| roots.iter().any(|r| is_within(key, r));
        let old = std::mem::take(&mut self.entries);
        let kept = old
            .iter()
            .filter(|(k, _)| !within(k))
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
        let read = pairs
            .iter()
            .map(|(k, v)| (clean_cow(k), Cow::Borrowed(v.as_str())))
            .filter(|(k, _)| within(k));
        self.entries = Pairs::build(kept.chain(read));
        self.reindex();
    }
}

/// Sorts children by name and merges a name seen both as a leaf and as a
/// directory ("/a" and "/a/b"; siblings such as "a.b" sort between them).
pub(super) fn merge_children(found: &mut Vec<Child>) {
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.dedup_by(|later, earlier| {
        if later.name == earlier.name {
            earlier.is_dir |= later.is_dir;
            true
        } else {
            false
        }
    });
}

#[cfg(test)]
mod tests;

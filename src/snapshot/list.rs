//! A compact list of pairs that a backend fills while it parses an answer:
//! all the text in one buffer and one span per pair, the same storage a
//! [`Snapshot`] keeps, so a read becomes a snapshot by sorting the spans
//! instead of copying every key and value once more. 100,000 keys cost two
//! allocations here, where a `Vec<(String, String)>` costs 200,001.

use std::borrow::Cow;

use super::{Pairs, Snapshot, clean_cow, is_within};

/// Pairs in the order they were read: clean keys (cleaned when pushed),
/// duplicates allowed (the later one wins in the snapshot).
#[derive(Clone, Default)]
pub struct PairList {
    pairs: Pairs,
}

impl std::fmt::Debug for PairList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairList")
            .field("pairs", &self.pairs.len())
            .field("bytes", &self.pairs.text.len())
            .finish()
    }
}

/// Two lists are equal when they hold the same pairs in the same order.
impl PartialEq for PairList {
    fn eq(&self, other: &PairList) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PairList {}

impl PairList {
    /// An empty list.
    pub fn new() -> PairList {
        PairList::default()
    }

    /// Adds a pair; the key is cleaned first.
    pub fn push(&mut self, key: &str, value: &str) {
        let key = clean_cow(key);
        let span = self.pairs.append(&key, value);
        self.pairs.spans.push(span);
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when no pair was pushed.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Drops the pairs pushed after the first `len` (a parser that pushed
    /// children before learning that their parent is not a directory).
    pub fn truncate(&mut self, len: usize) {
        if let Some(first_dropped) = self.pairs.spans.get(len) {
            // Pairs are appended in order, so the text ends where the first
            // dropped pair starts.
            self.pairs.text.truncate(first_dropped.start);
            self.pairs.spans.truncate(len);
        }
    }

    /// Every pair, in the order pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for PairList {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> PairList {
        let mut list = PairList::new();
        for (key, value) in pairs {
            list.push(key.as_ref(), value.as_ref());
        }
        list
    }
}

impl From<Vec<(String, String)>> for PairList {
    fn from(pairs: Vec<(String, String)>) -> PairList {
        pairs.into_iter().collect()
    }
}

impl Snapshot {
    /// Builds a snapshot from a list, reusing its buffer: for a key given
    /// twice the later value wins.
    pub fn from_list(list: PairList) -> Snapshot {
        let mut snapshot = Snapshot {
            entries: list.pairs.sorted(),
            index: hashbrown::HashTable::new(),
            hasher: ahash::RandomState::new(),
        };
        snapshot.reindex();
        snapshot
    }

    /// [`Snapshot::replace_trees`] from a list: `roots` and everything
    /// below them become what `list` holds within them.
    pub fn replace_trees_from_list(&mut self, roots: &[String], list: &PairList) {
        let roots: Vec<String> = roots.iter().map(|r| clean_cow(r).into_owned()).collect();
        let within = |key: &str| roots.iter().any(|r| is_within(key, r));
        let old = std::mem::take(&mut self.entries);
        let kept = old
            .iter()
            .filter(|(k, _)| !within(k))
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
        let read = list
            .iter()
            .filter(|(k, _)| within(k))
            .map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)));
        self.entries = Pairs::build(kept.chain(read));
        self.reindex();
    }

    /// Replaces everything at or below `root` with the list's pairs there
    /// (a watch that reports a whole prefix at once); returns whether that
    /// changed anything, so an answer equal to what is kept renders nothing.
    pub fn replace_tree_from_list(&mut self, root: &str, list: &PairList) -> bool {
        let root = clean_cow(root).into_owned();
        let new: PairList = list.iter().filter(|(k, _)| is_within(k, &root)).collect();
        let new = Snapshot::from_list(new);
        let old = self
            .get(&root)
            .map(|value| (root.as_str(), value))
            .into_iter()
            .chain(
                self.below(&root)
                    .map(|i| (self.entries.key(i), self.entries.value(i))),
            );
        if old.eq(new.iter()) {
            return false;
        }
        self.replace_trees_from_list(std::slice::from_ref(&root), list);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_becomes_the_same_snapshot_as_its_pairs() {
        let pairs = [
            ("/b//x/", "1"),
            ("/a", "2"),
            ("/b/x", "3"),
            ("/a/c", ""),
            ("/é", "4"),
        ];
        let list: PairList = pairs.iter().copied().collect();
        assert_eq!(list.len(), 5);
        let from_list = Snapshot::from_list(list);
        let from_pairs = Snapshot::from_pairs(pairs);
        let got: Vec<_> = from_list.iter().collect();
        assert_eq!(got, from_pairs.iter().collect::<Vec<_>>());
        assert_eq!(
            got,
            vec![("/a", "2"), ("/a/c", ""), ("/b/x", "3"), ("/é", "4")]
        );
        assert_eq!(from_list.get("/b/x"), Some("3"));
        assert_eq!(from_list.children("/b").len(), 1);
    }

    #[test]
    fn sorted_lists_keep_their_buffer_and_truncate_drops_the_tail() {
        let mut list = PairList::new();
        list.push("/a", "1");
        list.push("/b", "2");
        list.push("/b/c", "3");
        list.truncate(2);
        assert_eq!(
            list.iter().collect::<Vec<_>>(),
            vec![("/a", "1"), ("/b", "2")]
        );
        list.truncate(5);
        assert_eq!(list.len(), 2);
        let snapshot = Snapshot::from_list(list);
        assert_eq!(snapshot.get("/b"), Some("2"));
        assert_eq!(snapshot.get("/a"), Some("1"));
        assert!(Snapshot::from_list(PairList::new()).is_empty());
    }

    #[test]
    fn replacing_trees_from_a_list_keeps_the_rest() {
        let mut s = Snapshot::from_pairs([("/a", "0"), ("/a/old", "1"), ("/ab", "2")]);
        let list: PairList = [("/a/new", "4"), ("/b/outside", "x")].into_iter().collect();
        s.replace_trees_from_list(&["/a".to_string()], &list);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![("/a/new", "4"), ("/ab", "2")]
        );
    }
}

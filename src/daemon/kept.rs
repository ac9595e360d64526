//! The data a watching daemon keeps between passes: a copy of every watched
//! prefix, kept current by applying the changes watch events report (etcd's
//! keys and values, or Consul's whole prefix), so a change renders without
//! reading the prefix again. A prefix whose watch only says "something
//! changed" (files), or
//! that lost its watch or its history, is stale and read again by the next
//! pass that needs it. Each prefix remembers the index it is current at, so
//! its watch resumes exactly after it and older events are ignored.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::backend::{Change, Fetched};
use crate::snapshot::{Snapshot, clean_key, is_within};

/// The kept copy of the watched prefixes.
#[derive(Debug, Default)]
pub struct Kept {
    data: Arc<Snapshot>,
    /// The prefixes whose data in `data` is current.
    fresh: HashSet<String>,
    /// The index each prefix is current at (its last read or change).
    index: HashMap<String, u64>,
}

/// What a reported change meant for the kept data.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The change is older than what is kept: nothing to do.
    Covered,
    /// These keys changed (`true`: the key and everything below it).
    Keys(Vec<(String, bool)>),
    /// What changed is unknown: the prefix is stale and must be read.
    Stale,
}

impl Kept {
    /// The kept data, to render from.
    pub fn data(&self) -> Arc<Snapshot> {
        self.data.clone()
    }

    /// The index `root` is current at, 0 when never read.
    pub fn index_of(&self, root: &str) -> u64 {
        self.index.get(root).copied().unwrap_or(0)
    }

    /// The highest index of any prefix (what a pass reports).
    pub fn latest_index(&self) -> u64 {
        self.index.values().copied().max().unwrap_or(0)
    }

    /// Takes a watch's report of a change under `root` at `index`.
    pub fn apply(&mut self, root: &str, index: u64, changes: Option<&[Change]>) -> Applied {
        if self.index.get(root).is_some_and(|&known| index <= known) {
            return Applied::Covered;
        }
        let Some(changes) = changes.filter(|_| self.fresh.contains(root)) else {
            self.fresh.remove(root);
            return Applied::Stale;
        };
        self.index.insert(root.to_string(), index);
        let data = Arc::make_mut(&mut self.data);
        let mut changed = Vec::new();
        for change in changes {
            let (key, tree, effective) = match change {
                Change::Put { key, value } => (key, false, data.insert(key, value)),
                Change::Delete { key } => (key, false, data.remove(key)),
                Change::DeleteTree { key } => (key, true, data.remove_tree(key)),
                Change::ReplaceTree { key, pairs } => {
                    (key, true, data.replace_tree_from_list(key, pairs))
                }
            };
            if effective {
                changed.push((clean_key(key), tree));
            }
        }
        Applied::Keys(changed)
    }

    /// `root` must be read again (its watch failed or lost its history).
    pub fn invalidate(&mut self, root: &str) {
        self.fresh.remove(root);
    }

    /// Which of `roots` are stale and overlap one of `wanted` (the subtrees
    /// of the resources about to render).
    pub fn stale_among(&self, roots: &[String], wanted: &[String]) -> Vec<String> {
        roots
            .iter()
            .filter(|root| !self.fresh.contains(*root))
            .filter(|root| {
                wanted
                    .iter()
                    .any(|k| is_within(k, root) || is_within(root, k))
            })
            .cloned()
            .collect()
    }

    /// Replaces `roots` with what a read returned. Returns the roots whose
    /// index went backwards (a restored or rebuilt store): their watches
    /// must start over from this read, not wait for the old, higher index.
    pub fn store_read(&mut self, roots: &[String], fetched: &Fetched) -> Vec<String> {
        Arc::make_mut(&mut self.data).replace_trees_from_list(roots, &fetched.pairs);
        let mut went_back = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            self.fresh.insert(root.clone());
            let index = fetched.index_of(i);
            if self
                .index
                .insert(root.clone(), index)
                .is_some_and(|p| index < p)
            {
                went_back.push(root.clone());
            }
        }
        went_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(pairs: &[(&str, &str)], index: u64) -> Fetched {
        Fetched {
            pairs: pairs.iter().copied().collect(),
            index,
            root_indexes: Vec::new(),
        }
    }

    fn put(key: &str, value: &str) -> Change {
        Change::Put {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn changes_apply_to_fresh_prefixes_and_same_values_change_nothing() {
        let mut kept = Kept::default();
        let roots = vec!["/app".to_string()];
        assert_eq!(kept.stale_among(&roots, &roots), roots);
        kept.store_read(&roots, &fetched(&[("/app/a", "1")], 10));
        assert!(kept.stale_among(&roots, &roots).is_empty());
        assert_eq!(
            kept.apply("/app", 11, Some(&[put("/app/a", "2")])),
            Applied::Keys(vec![("/app/a".to_string(), false)])
        );
        assert_eq!(kept.data().get("/app/a"), Some("2"));
        assert_eq!(
            kept.apply("/app", 12, Some(&[put("/app/a", "2")])),
            Applied::Keys(vec![])
        );
        assert_eq!(
            kept.apply("/app", 12, Some(&[put("/app/a", "3")])),
            Applied::Covered
        );
        assert_eq!(kept.index_of("/app"), 12);
    }

    #[test]
    fn a_whole_prefix_replaces_its_copy_and_an_equal_one_changes_nothing() {
        let mut kept = Kept::default();
        let roots = ["/app".to_string(), "/other".to_string()];
        let read = fetched(&[("/app/a", "1"), ("/app/b", "2"), ("/other", "x")], 5);
        kept.store_read(&roots, &read);
        let replace = |pairs: &[(&str, &str)]| {
            vec![Change::ReplaceTree {
                key: "/app".to_string(),
                pairs: pairs.iter().copied().collect(),
            }]
        };
        assert_eq!(
            kept.apply(
                "/app",
                6,
                Some(&replace(&[("/app/a", "1"), ("/app/b", "2")]))
            ),
            Applied::Keys(Vec::new()),
            "the same prefix again changes nothing"
        );
        assert_eq!(
            kept.apply(
                "/app",
                7,
                Some(&replace(&[("/app/a", "1"), ("/app/c", "3")]))
            ),
            Applied::Keys(vec![("/app".to_string(), true)])
        );
        let data = kept.data();
        assert_eq!(data.get("/app/b"), None);
        assert_eq!(data.get("/app/c"), Some("3"));
        assert_eq!(data.get("/other"), Some("x"), "outside the prefix stays");
        assert_eq!(kept.index_of("/app"), 7);
        assert_eq!(
            kept.apply("/app", 7, Some(&replace(&[]))),
            Applied::Covered,
            "an answer at a known index is old"
        );
        assert_eq!(
            kept.apply("/app", 8, Some(&replace(&[]))),
            Applied::Keys(vec![("/app".to_string(), true)])
        );
        assert_eq!(
            kept.data().get("/app/a"),
            None,
            "an empty answer empties the prefix"
        );
    }

    #[test]
    fn unknown_changes_and_invalidation_make_a_prefix_stale() {
        let mut kept = Kept::default();
        let roots = vec!["/a".to_string(), "/b".to_string()];
        kept.store_read(&roots, &fetched(&[], 5));
        assert_eq!(kept.apply("/a", 6, None), Applied::Stale);
        kept.invalidate("/b");
        assert_eq!(
            kept.stale_among(&roots, &["/a/x".to_string()]),
            vec!["/a".to_string()]
        );
        assert_eq!(kept.stale_among(&roots, &roots), roots);
        // A stale prefix takes no changes: they would apply to old data.
        assert_eq!(
            kept.apply("/b", 7, Some(&[put("/b/k", "v")])),
            Applied::Stale
        );
    }

    #[test]
    fn an_index_that_goes_backwards_is_reported() {
        let mut kept = Kept::default();
        let roots = vec!["/a".to_string()];
        assert!(kept.store_read(&roots, &fetched(&[], 50)).is_empty());
        assert_eq!(kept.store_read(&roots, &fetched(&[], 3)), roots);
        assert_eq!(kept.index_of("/a"), 3);
    }
}

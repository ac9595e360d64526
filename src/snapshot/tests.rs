//! Unit tests of the snapshot module.

use super::*;
use std::sync::Arc;

/// Every key is found through the index at the position the order says,
/// and the pairs equal those of a snapshot built from scratch.
fn assert_consistent(s: &Snapshot, expected: &[(&str, &str)]) {
    let fresh = Snapshot::from_pairs(expected.iter().copied());
    let got: Vec<(&str, &str)> = s.iter().collect();
    let want: Vec<(&str, &str)> = fresh.iter().collect();
    assert_eq!(got, want);
    for (key, value) in want {
        assert_eq!(s.get(key), Some(value), "{key} through the index");
    }
    assert_eq!(s.index.len(), s.entries.len());
}

#[test]
fn insert_updates_values_and_adds_keys_in_order() {
    let mut s = Snapshot::from_pairs([("/a/x", "1"), ("/c", "3")]);
    assert!(!s.insert("/a/x", "1"), "same value: no change");
    assert!(s.insert("/a/x", "2"));
    assert!(s.insert("/b", "new"));
    assert!(s.insert("//a/./y/", "cleaned"));
    assert!(s.insert("/0", "first"));
    assert_consistent(
        &s,
        &[
            ("/0", "first"),
            ("/a/x", "2"),
            ("/a/y", "cleaned"),
            ("/b", "new"),
            ("/c", "3"),
        ],
    );
}

#[test]
fn remove_tree_removes_a_key_or_a_whole_directory_but_not_siblings() {
    let pairs = [
        ("/app", "leaf"),
        ("/app-x", "sibling"),
        ("/app/a", "1"),
        ("/app/b/c", "2"),
        ("/apple", "3"),
        ("/z", "4"),
    ];
    let mut s = Snapshot::from_pairs(pairs);
    assert!(!s.remove_tree("/nothing"));
    assert!(s.remove_tree("/app"));
    assert_consistent(&s, &[("/app-x", "sibling"), ("/apple", "3"), ("/z", "4")]);

    let mut s = Snapshot::from_pairs(pairs);
    assert!(s.remove_tree("/app/a"));
    assert_consistent(
        &s,
        &[
            ("/app", "leaf"),
            ("/app-x", "sibling"),
            ("/app/b/c", "2"),
            ("/apple", "3"),
            ("/z", "4"),
        ],
    );
    assert!(s.remove_tree("/app/b"));
    assert!(s.remove_tree("/"));
    assert_consistent(&s, &[]);
}

#[test]
fn remove_takes_one_key_and_leaves_the_keys_below_it() {
    let mut s = Snapshot::from_pairs([("/a", "0"), ("/a/b", "1"), ("/a-c", "2")]);
    assert!(!s.remove("/missing"));
    assert!(s.remove("/a"));
    assert_consistent(&s, &[("/a/b", "1"), ("/a-c", "2")]);
}

#[test]
fn replace_trees_swaps_those_subtrees_only() {
    let mut s = Snapshot::from_pairs([("/a", "0"), ("/a/old", "1"), ("/ab", "2"), ("/b/x", "3")]);
    s.replace_trees(
        &["/a".to_string()],
        &[
            ("/a/new".to_string(), "4".to_string()),
            ("/b/outside".to_string(), "ignored".to_string()),
        ],
    );
    assert_consistent(&s, &[("/a/new", "4"), ("/ab", "2"), ("/b/x", "3")]);
}

#[test]
fn many_random_changes_match_a_rebuilt_snapshot() {
    // A small deterministic generator: inserts, updates and deletes over
    // a few nested keys, checked against a map after every step.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut s = Snapshot::default();
    let mut model: std::collections::BTreeMap<String, String> = Default::default();
    for step in 0..2_000 {
        let key = format!("/k{}/{}", next() % 4, next() % 6);
        let key = if next() % 3 == 0 {
            format!("/k{}", next() % 4)
        } else {
            key
        };
        if next() % 5 == 0 {
            let changed = s.remove(&key);
            assert_eq!(
                changed,
                model.remove(&key).is_some(),
                "step {step}: remove {key}"
            );
        } else if next() % 4 == 0 {
            let changed = s.remove_tree(&key);
            let before = model.len();
            model.retain(|k, _| !is_within(k, &key));
            assert_eq!(changed, model.len() != before, "step {step}: remove {key}");
        } else {
            // Values of varied lengths: some fit in place, some are
            // appended, and the buffer gets compacted along the way.
            let value = "v".repeat((next() % 48) as usize);
            let changed = s.insert(&key, &value);
            let old = model.insert(key.clone(), value.clone());
            assert_eq!(
                changed,
                old.as_deref() != Some(value.as_str()),
                "step {step}: set {key}"
            );
        }
        let expected: Vec<(&str, &str)> = model
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_consistent(&s, &expected);
    }
}

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

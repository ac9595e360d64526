//! The streamed parser against the tree it replaced: the same pairs on
//! random nested trees, the same verdict on malformed and truncated text.

use serde::Deserialize;

use super::*;

/// The tree the answer used to be deserialized into.
#[derive(Debug, Deserialize)]
struct Node {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    dir: bool,
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct GetResponse {
    node: Node,
}

fn flatten(node: Node, out: &mut Vec<(String, String)>) {
    if node.dir {
        for child in node.nodes {
            flatten(child, out);
        }
    } else if let Some(key) = node.key {
        out.push((key, node.value.unwrap_or_default()));
    }
}

/// The pairs (keys cleaned, as the list holds them) the old tree gives.
fn through_the_tree(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    let parsed: GetResponse = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    flatten(parsed.node, &mut out);
    Ok(out
        .into_iter()
        .map(|(k, v)| (crate::snapshot::clean_key(&k), v))
        .collect())
}

fn streamed(text: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = PairList::new();
    parse_get(&mut &text[..], &mut out).map_err(|e| e.to_string())?;
    Ok(out
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A small deterministic generator (xorshift).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        let pieces = ["a", "é", "\"", "\\", "\n", "x y", "/", "\u{1F600}", ""];
        (0..self.below(4))
            .map(|_| pieces[self.below(pieces.len() as u64) as usize])
            .collect()
    }
}

/// A random node as JSON text, its fields in a random order, with the odd
/// shapes a server could send: a leaf with children, a directory with a
/// value, no key, null values, unknown fields holding nested data.
fn node(random: &mut Random, path: &str, depth: u32) -> String {
    let mut fields: Vec<String> = Vec::new();
    let is_dir = depth < 4 && random.below(3) > 0;
    if random.below(10) > 0 {
        fields.push(format!("\"key\":{}", serde_json::json!(path)));
    } else if random.below(2) == 0 {
        fields.push("\"key\":null".to_string());
    }
    if is_dir || random.below(8) == 0 {
        fields.push(format!("\"dir\":{}", is_dir));
    }
    match random.below(6) {
        0 => fields.push("\"value\":null".to_string()),
        1 if is_dir => {}
        _ => fields.push(format!("\"value\":{}", serde_json::json!(random.text()))),
    }
    if is_dir || random.below(10) == 0 {
        let children: Vec<String> = (0..random.below(5))
            .map(|i| {
                let child = format!("{path}/{}{i}", random.text());
                node(random, &child, depth + 1)
            })
            .collect();
        fields.push(format!("\"nodes\":[{}]", children.join(",")));
    }
    if random.below(3) == 0 {
        fields.push("\"modifiedIndex\":7,\"createdIndex\":3".to_string());
    }
    if random.below(8) == 0 {
        fields.push("\"expiration\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"}".to_string());
    }
    for i in (1..fields.len()).rev() {
        fields.swap(i, random.below(i as u64 + 1) as usize);
    }
    format!("{{{}}}", fields.join(","))
}

#[test]
fn random_trees_give_the_pairs_the_tree_gave() {
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut leaves = 0;
    for round in 0..400 {
        let text = format!(
            "{{\"action\":\"get\",\"node\":{}}} \n",
            node(&mut random, "/s", 0)
        );
        let expected = through_the_tree(text.as_bytes());
        assert_eq!(streamed(text.as_bytes()), expected, "round {round}: {text}");
        leaves += expected.map(|p| p.len()).unwrap_or(0);
    }
    assert!(leaves > 500, "the trees hold too few leaves: {leaves}");
}

#[test]
fn cut_or_malformed_answers_fail_like_the_tree() {
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let text = format!("{{\"node\":{}}}", node(&mut random, "/s", 0));
    for cut in 0..text.len() {
        let Some(head) = text.get(..cut) else {
            continue;
        };
        assert!(streamed(head.as_bytes()).is_err(), "cut at {cut}: {head}");
    }
    for bad in [
        "",
        "[]",
        "{}",
        "{\"node\":null}",
        "{\"node\":{\"dir\":true,\"nodes\":null}}",
        "{\"node\":{\"dir\":\"yes\"}}",
        "{\"node\":{\"key\":1}}",
        "{\"node\":{\"key\":\"/a\",\"key\":\"/b\"}}",
        "{\"node\":{},\"node\":{}}",
        "{\"node\":{}} trailing",
        "{\"node\":{\"key\":\"/a\",\"value\":\"\\udc00\"}}",
    ] {
        assert!(through_the_tree(bad.as_bytes()).is_err(), "tree: {bad}");
        let error = streamed(bad.as_bytes()).expect_err(bad);
        assert!(!error.contains('\n'), "{error}");
    }
    let not_utf8 = b"{\"node\":{\"key\":\"/a\",\"value\":\"\xff\xfe\"}}";
    assert!(streamed(not_utf8).is_err());
}

#[test]
fn nested_directories_flatten_to_leaves() {
    let json = r#"{"action":"get","node":{"key":"/s","dir":true,"nodes":[
        {"key":"/s/a","value":"1","modifiedIndex":5},
        {"key":"/s/d","dir":true,"nodes":[{"key":"/s/d/x","value":""}]},
        {"key":"/s/empty","dir":true}]}}"#;
    assert_eq!(
        streamed(json.as_bytes()),
        Ok(vec![
            ("/s/a".to_string(), "1".to_string()),
            ("/s/d/x".to_string(), String::new())
        ])
    );
    let fine = br#"{"node":{"key":"/a","value":"\u00e9"}}"#;
    assert_eq!(
        streamed(fine),
        Ok(vec![("/a".to_string(), "é".to_string())])
    );
}

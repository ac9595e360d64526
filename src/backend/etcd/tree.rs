//! etcd v2's answer to a recursive GET, parsed as it arrives: the nested
//! tree of nodes is walked by a serde visitor that pushes each leaf into a
//! [`PairList`], so no node of the tree is ever kept (the answer of 100,000
//! keys used to become a tree of 100,000 `Node`s before being flattened).
//! What it accepts and yields is exactly what deserializing the tree and
//! flattening it would (the tests hold the two side by side).

use std::fmt;
use std::io::Read;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::backend::http::OptionalText;
use crate::snapshot::PairList;

/// Parses `{"node": {…}, …}` from `reader`, pushing every leaf (a node that
/// is not a directory and has a key) into `out`, depth first, in the order
/// of the answer. Nothing but whitespace may follow the object.
pub(super) fn parse_get(reader: impl Read, out: &mut PairList) -> serde_json::Result<()> {
    let mut json = serde_json::Deserializer::from_reader(reader);
    let mut scratch = Vec::new();
    Answer {
        out,
        scratch: &mut scratch,
    }
    .deserialize(&mut json)?;
    json.end()
}

/// The fields of the answer's top-level object.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum AnswerField {
    Node,
    #[serde(other)]
    Other,
}

/// The fields of a node; the indexes and TTLs are not needed.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum NodeField {
    Key,
    Value,
    Dir,
    Nodes,
    #[serde(other)]
    Other,
}

struct Answer<'a> {
    out: &'a mut PairList,
    scratch: &'a mut Scratch,
}

/// A key and a value buffer per depth of the tree, reused from node to
/// node: a node's text is copied into the list, never allocated on its own
/// (allocating two strings per node took longer than the rest of the parse).
type Scratch = Vec<(String, String)>;

impl<'de> DeserializeSeed<'de> for Answer<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Answer<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an etcd v2 answer")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(field) = map.next_key::<AnswerField>()? {
            match field {
                AnswerField::Node if seen => return Err(de::Error::duplicate_field("node")),
                AnswerField::Node => {
                    map.next_value_seed(NodeSeed {
                        out: &mut *self.out,
                        scratch: &mut *self.scratch,
                        depth: 0,
                    })?;
                    seen = true;
                }
                AnswerField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("node"))
        }
    }
}

/// One node: a leaf is pushed once the node's object ends (its fields come
/// in any order); a directory's children are pushed as they are read.
struct NodeSeed<'a> {
    out: &'a mut PairList,
    scratch: &'a mut Scratch,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

/// Fails on a field given twice, as a derived `Deserialize` does.
fn once<E: de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an etcd v2 node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let first_child = self.out.len();
        if self.scratch.len() <= self.depth {
            self.scratch.resize_with(self.depth + 1, Default::default);
        }
        let (mut key, mut value) = std::mem::take(&mut self.scratch[self.depth]);
        key.clear();
        value.clear();
        let mut has_key = false;
        let mut dir = false;
        let mut seen = [false; 4];
        while let Some(field) = map.next_key::<NodeField>()? {
            match field {
                NodeField::Key => {
                    once(&mut seen[0], "key")?;
                    has_key = map.next_value_seed(OptionalText(&mut key))?;
                }
                NodeField::Value => {
                    once(&mut seen[1], "value")?;
                    map.next_value_seed(OptionalText(&mut value))?;
                }
                NodeField::Dir => {
                    once(&mut seen[2], "dir")?;
                    dir = map.next_value()?;
                }
                NodeField::Nodes => {
                    once(&mut seen[3], "nodes")?;
                    map.next_value_seed(Children {
                        out: &mut *self.out,
                        scratch: &mut *self.scratch,
                        depth: self.depth + 1,
                    })?;
                }
                NodeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !dir {
            // Only a directory's children count: a leaf that (oddly) came
            // with "nodes" is the leaf alone.
            self.out.truncate(first_child);
            if has_key {
                self.out.push(&key, &value);
            }
        }
        self.scratch[self.depth] = (key, value);
        Ok(())
    }
}

/// A directory's `nodes` array.
struct Children<'a> {
    out: &'a mut PairList,
    scratch: &'a mut Scratch,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Children<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Children<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of etcd v2 nodes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(NodeSeed {
                out: &mut *self.out,
                scratch: &mut *self.scratch,
                depth: self.depth,
            })?
            .is_some()
        {}
        Ok(())
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;

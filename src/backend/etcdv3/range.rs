//! One page of a `/v3/kv/range` answer, parsed as it arrives: each key and
//! value is decoded from base64 into reused buffers and pushed into a
//! [`PairList`] as soon as its object ends, so neither the body nor a list
//! of entries is ever held whole.

use std::fmt;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{Header, text_key, text_value};
use crate::backend::http::{OptionalText, quote_server};
use crate::snapshot::PairList;

/// What a page said besides its pairs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Page {
    /// The store's revision (`header.revision`).
    pub revision: u64,
    /// Whether more keys follow in the range.
    pub more: bool,
    /// The page's last key, raw: the next page starts after it.
    pub last: Option<Vec<u8>>,
}

/// Parses one page from `reader`, pushing each key under `root` with its
/// value into `out` (the range also covers siblings such as `/app-x`,
/// skipped). Fails with the message to give: a key or value that is not
/// base64, a key under `root` or a value that is not UTF-8; anything else
/// is an unexpected response.
pub(super) fn parse_page(
    reader: impl Read,
    root: &str,
    out: &mut PairList,
) -> Result<Page, String> {
    let mut refusal = None;
    let mut page = Page::default();
    let mut json = serde_json::Deserializer::from_reader(reader);
    let parsed = PageSeed {
        state: State {
            root,
            out,
            page: &mut page,
            refusal: &mut refusal,
            key: String::new(),
            value: String::new(),
            decoded: Vec::new(),
        },
    }
    .deserialize(&mut json)
    .and_then(|()| json.end());
    match (parsed, refusal) {
        (Ok(()), _) => Ok(page),
        (Err(_), Some(refusal)) => Err(refusal),
        (Err(e), None) => Err(format!("unexpected response: {}", quote_server(e))),
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum PageField {
    Header,
    Kvs,
    More,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum KvField {
    Key,
    Value,
    #[serde(other)]
    Other,
}

struct State<'a> {
    root: &'a str,
    out: &'a mut PairList,
    page: &'a mut Page,
    refusal: &'a mut Option<String>,
    /// The key and value as sent, and the value decoded: buffers reused
    /// from key to key.
    key: String,
    value: String,
    decoded: Vec<u8>,
}

struct PageSeed<'a> {
    state: State<'a>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an etcd range answer")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut header = false;
        let mut seen = [false; 2];
        while let Some(field) = map.next_key::<PageField>()? {
            match field {
                PageField::Header if header => return Err(de::Error::duplicate_field("header")),
                PageField::Header => {
                    self.state.page.revision = map.next_value::<Header>()?.revision;
                    header = true;
                }
                PageField::Kvs => {
                    if std::mem::replace(&mut seen[0], true) {
                        return Err(de::Error::duplicate_field("kvs"));
                    }
                    map.next_value_seed(Kvs {
                        state: &mut self.state,
                    })?;
                }
                PageField::More => {
                    if std::mem::replace(&mut seen[1], true) {
                        return Err(de::Error::duplicate_field("more"));
                    }
                    self.state.page.more = map.next_value()?;
                }
                PageField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if header {
            Ok(())
        } else {
            Err(de::Error::missing_field("header"))
        }
    }
}

struct Kvs<'a, 'b> {
    state: &'a mut State<'b>,
}

impl<'de> DeserializeSeed<'de> for Kvs<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Kvs<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of keys")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Kv {
                state: &mut *self.state,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct Kv<'a, 'b> {
    state: &'a mut State<'b>,
}

impl<'de> DeserializeSeed<'de> for Kv<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Kv<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key and its value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut key = std::mem::take(&mut self.state.key);
        let mut value = std::mem::take(&mut self.state.value);
        key.clear();
        value.clear();
        let (mut has_key, mut has_value) = (false, false);
        while let Some(field) = map.next_key::<KvField>()? {
            match field {
                KvField::Key if has_key => return Err(de::Error::duplicate_field("key")),
                KvField::Key => {
                    has_key = true;
                    if !map.next_value_seed(OptionalText(&mut key))? {
                        return Err(de::Error::invalid_type(de::Unexpected::Unit, &"a key"));
                    }
                }
                KvField::Value if has_value => {
                    return Err(de::Error::duplicate_field("value"));
                }
                KvField::Value => {
                    has_value = true;
                    map.next_value_seed(OptionalText(&mut value))?;
                }
                KvField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !has_key {
            return Err(de::Error::missing_field("key"));
        }
        let pushed = self.state.push(&key, &value);
        self.state.key = key;
        self.state.value = value;
        pushed.map_err(|refusal| {
            *self.state.refusal = Some(refusal);
            de::Error::custom("refused")
        })
    }
}

impl State<'_> {
    /// Decodes one key and value and pushes them when the key lies under
    /// the root; the raw key becomes the page's last either way.
    fn push(&mut self, key: &str, value: &str) -> Result<(), String> {
        let mut raw_key = self.page.last.take().unwrap_or_default();
        raw_key.clear();
        BASE64
            .decode_vec(key.as_bytes(), &mut raw_key)
            .map_err(|e| format!("bad key encoding: {e}"))?;
        self.decoded.clear();
        BASE64
            .decode_vec(value.as_bytes(), &mut self.decoded)
            .map_err(|e| format!("bad value encoding: {e}"))?;
        if let Some(key) = text_key(self.root, &raw_key)? {
            self.out.push(&key, text_value(&key, &self.decoded)?);
        }
        self.page.last = Some(raw_key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(root: &str, text: &str) -> Result<(Page, Vec<(String, String)>), String> {
        let mut out = PairList::new();
        let page = parse_page(&mut text.as_bytes(), root, &mut out)?;
        let pairs = out
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok((page, pairs))
    }

    #[test]
    fn pages_yield_pairs_under_the_root_the_revision_and_the_last_key() {
        // /app/a = 1, /app-x = 2 (a sibling in the range), /app/b = "" (no value).
        let (page, pairs) = parse(
            "/app",
            r#"{"header":{"cluster_id":"1","revision":"42"},"kvs":[
                {"key":"L2FwcC9h","create_revision":"2","value":"MQ=="},
                {"key":"L2FwcC14","value":"Mg=="},
                {"key":"L2FwcC9i"}],"more":true,"count":"9"}"#,
        )
        .expect("parses");
        assert_eq!(
            page,
            Page {
                revision: 42,
                more: true,
                last: Some(b"/app/b".to_vec())
            }
        );
        assert_eq!(
            pairs,
            vec![
                ("/app/a".to_string(), "1".to_string()),
                ("/app/b".to_string(), String::new())
            ]
        );
        let (page, pairs) = parse("/", r#"{"header":{"revision":7}}"#).expect("parses");
        assert_eq!(
            (page.revision, page.more, page.last, pairs.len()),
            (7, false, None, 0)
        );
    }

    #[test]
    fn bad_text_is_refused_naming_the_key() {
        let error = parse(
            "/app",
            r#"{"header":{"revision":"3"},"kvs":[{"key":"L2FwcC9iaW4=","value":"//54"}]}"#,
        )
        .expect_err("not UTF-8");
        assert!(
            error.contains("key /app/bin") && error.contains("UTF-8"),
            "{error}"
        );
        let error = parse(
            "/app",
            r#"{"header":{"revision":"3"},"kvs":[{"key":"L2FwcC//","value":""}]}"#,
        )
        .expect_err("not UTF-8");
        assert!(error.contains("key /app/\u{fffd}"), "{error}");
        let error = parse("/app", r#"{"header":{},"kvs":[{"key":"%"}]}"#).expect_err("base64");
        assert!(error.starts_with("bad key encoding"), "{error}");
    }

    #[test]
    fn malformed_or_cut_pages_are_one_line_errors() {
        let text =
            r#"{"header":{"revision":"3"},"kvs":[{"key":"L2E=","value":"MQ=="}],"more":false}"#;
        for cut in 0..text.len() {
            let error = parse("/", &text[..cut]).expect_err("cut");
            assert!(error.starts_with("unexpected response: "), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
        for bad in [
            "[]",
            r#"{"kvs":[]}"#,
            r#"{"header":{"revision":"x"}}"#,
            r#"{"header":{},"kvs":[{"value":"MQ=="}]}"#,
            r#"{"header":{},"more":"yes"}"#,
            r#"{"header":{}} {}"#,
        ] {
            let error = parse("/", bad).expect_err(bad);
            assert!(error.starts_with("unexpected response: "), "{bad}: {error}");
        }
    }
}

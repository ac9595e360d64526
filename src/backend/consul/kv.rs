//! Consul's answer to a KV `?recurse` GET, parsed as it arrives: each entry
//! of the array is decoded (base64, then UTF-8) and pushed into a
//! [`PairList`] as soon as its object ends, so neither the entries nor the
//! body are ever held whole.

use std::fmt;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::backend::http::{OptionalText, quote_server};
use crate::snapshot::{PairList, clean_key, is_within};

/// Parses the array of entries from `reader`, pushing each key within
/// `root` with its value into `out`: folder placeholders (`app/`) and keys
/// outside `root` (Consul matches `app` as a plain prefix, so `apple/x`
/// comes too) are skipped, a null value is "". Fails with the message to
/// give: a value that is not base64 or not UTF-8 names its key; anything
/// else is an unexpected response.
pub(super) fn parse_entries(
    reader: impl Read,
    root: &str,
    out: &mut PairList,
) -> Result<(), String> {
    let mut refusal = None;
    let mut json = serde_json::Deserializer::from_reader(reader);
    let parsed = Entries {
        root,
        out,
        refusal: &mut refusal,
        key: String::new(),
        value: String::new(),
        decoded: Vec::new(),
    }
    .deserialize(&mut json)
    .and_then(|()| json.end());
    match (parsed, refusal) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(refusal)) => Err(refusal),
        (Err(e), None) => Err(format!("unexpected response: {}", quote_server(e))),
    }
}

/// The fields of an entry; the indexes, flags and session are not needed.
#[derive(Deserialize)]
#[serde(field_identifier)]
enum EntryField {
    Key,
    Value,
    #[serde(other)]
    Other,
}

struct Entries<'a> {
    root: &'a str,
    out: &'a mut PairList,
    /// Why the data was refused, when it was (the parse error that stops
    /// the parse only carries this up).
    refusal: &'a mut Option<String>,
    /// The entry's key and value as sent, and the value decoded: buffers
    /// reused from entry to entry.
    key: String,
    value: String,
    decoded: Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of Consul KV entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Entry { list: &mut self })?.is_some() {}
        Ok(())
    }
}

struct Entry<'a, 'b> {
    list: &'a mut Entries<'b>,
}

impl<'de> DeserializeSeed<'de> for Entry<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Entry<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Consul KV entry")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut key = std::mem::take(&mut self.list.key);
        let mut value = std::mem::take(&mut self.list.value);
        key.clear();
        value.clear();
        // Whether each field came, and whether the value was a string.
        let (mut has_key, mut has_value, mut value_text) = (false, false, false);
        while let Some(field) = map.next_key::<EntryField>()? {
            match field {
                EntryField::Key if has_key => return Err(de::Error::duplicate_field("Key")),
                EntryField::Key => {
                    has_key = true;
                    if !map.next_value_seed(OptionalText(&mut key))? {
                        return Err(de::Error::invalid_type(de::Unexpected::Unit, &"a key"));
                    }
                }
                EntryField::Value if has_value => {
                    return Err(de::Error::duplicate_field("Value"));
                }
                EntryField::Value => {
                    has_value = true;
                    value_text = map.next_value_seed(OptionalText(&mut value))?;
                }
                EntryField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !has_key {
            return Err(de::Error::missing_field("Key"));
        }
        if !has_value {
            return Err(de::Error::missing_field("Value"));
        }
        let pushed = self.list.push(&key, value_text.then_some(value.as_str()));
        self.list.key = key;
        self.list.value = value;
        pushed.map_err(|refusal| {
            *self.list.refusal = Some(refusal);
            de::Error::custom("refused")
        })
    }
}

impl Entries<'_> {
    fn push(&mut self, key: &str, value: Option<&str>) -> Result<(), String> {
        // A folder placeholder ("app/") only gives shape, through its
        // children; any other key with a null value holds "".
        if key.ends_with('/') {
            return Ok(());
        }
        let key = clean_key(key);
        if !is_within(&key, self.root) {
            return Ok(());
        }
        self.decoded.clear();
        if let Some(encoded) = value {
            BASE64
                .decode_vec(encoded.as_bytes(), &mut self.decoded)
                .map_err(|e| format!("key {}: value is not base64: {e}", quote_server(&key)))?;
        }
        // Replacing bytes that are not UTF-8 would write altered data and
        // report success: refuse the read instead.
        let value = std::str::from_utf8(&self.decoded).map_err(|e| {
            format!(
                "key {}: the value is not valid UTF-8 (byte {} of {}); confd renders text only and never writes altered data",
                quote_server(&key),
                e.valid_up_to(),
                self.decoded.len()
            )
        })?;
        self.out.push(&key, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(root: &str, text: &[u8]) -> Result<Vec<(String, String)>, String> {
        let mut out = PairList::new();
        parse_entries(&mut &text[..], root, &mut out)?;
        Ok(out
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn folders_are_skipped_and_siblings_filtered() {
        let body = br#"[{"Key":"app/","Value":null},{"LockIndex":0,"Key":"app/x","Flags":0,"Value":"MQ==","CreateIndex":5},{"Key":"apple/y","Value":"Mg=="},{"Value":"Mw==","Key":"app"},{"Key":"app/empty","Value":null}]"#;
        assert_eq!(
            parse("/app", body),
            Ok(vec![
                ("/app/x".to_string(), "1".to_string()),
                ("/app".to_string(), "3".to_string()),
                ("/app/empty".to_string(), String::new())
            ])
        );
        assert_eq!(parse("/", b" [] "), Ok(Vec::new()));
    }

    #[test]
    fn a_value_that_is_not_utf8_or_base64_is_an_error_naming_the_key() {
        let error = parse(
            "/app",
            br#"[{"Key":"app/ok","Value":"MQ=="},{"Key":"app/bin","Value":"//54"}]"#,
        )
        .expect_err("not UTF-8");
        assert!(
            error.starts_with("key /app/bin: the value is not valid UTF-8 (byte 0 of 3)"),
            "{error}"
        );
        let error = parse("/app", br#"[{"Key":"app/b64","Value":"%%"}]"#).expect_err("base64");
        assert!(
            error.starts_with("key /app/b64: value is not base64"),
            "{error}"
        );
        // Outside the root, the value is not looked at.
        assert_eq!(
            parse("/app", br#"[{"Key":"apple","Value":"%%"}]"#),
            Ok(Vec::new())
        );
    }

    #[test]
    fn malformed_or_cut_answers_are_one_line_errors() {
        let body = br#"[{"Key":"app/x","Value":"MQ=="},{"Key":"app/y","Value":null}]"#;
        for cut in 0..body.len() {
            let error = parse("/app", &body[..cut]).expect_err("cut");
            assert!(error.starts_with("unexpected response: "), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
        for bad in [
            &b"{}"[..],
            b"[{\"Value\":null}]",
            b"[{\"Key\":\"a\"}]",
            b"[{\"Key\":\"a\",\"Key\":\"b\",\"Value\":null}]",
            b"[{\"Key\":1,\"Value\":null}]",
            b"[] []",
            b"[{\"Key\":\"a\xff\",\"Value\":null}]",
        ] {
            let error = parse("/", bad).expect_err("malformed");
            assert!(error.starts_with("unexpected response: "), "{error}");
        }
    }
}

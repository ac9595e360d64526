//! Vault's key/value secrets engines seen as confd keys: which engine a
//! mount runs (from the mount table), where a logical path is listed and
//! read (KV version 2 puts `data/` and `metadata/` after the mount), and how
//! a secret's fields become keys, as confd's vault backend maps them.
//!
//! Everything here is pure (JSON in, paths and pairs out), so the mapping
//! rules are tested without a server.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::snapshot::{clean_key, is_within};

/// The engines confd reads. Any other engine (database, pki, aws…) is
/// refused: reading its paths could issue credentials on every pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// KV version 1 (and `generic`, its old name, and `cubbyhole`): a secret
    /// is read and listed at its own path.
    V1,
    /// KV version 2: read under `<mount>/data/`, listed under
    /// `<mount>/metadata/`, the fields inside `data.data`.
    V2,
}

/// A secrets engine mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Its path without a leading `/`, with a trailing one (`secret/`,
    /// `team/kv/`), as Vault's mount table spells it.
    pub path: String,
    /// The engine it runs.
    pub engine: Engine,
}

/// Which engine a mount table entry (`type`, `options.version`) describes;
/// an error naming the type for engines confd does not read.
pub fn engine_of(entry: &Value) -> Result<Engine, String> {
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
    let version = entry
        .get("options")
        .and_then(|o| o.get("version"))
        .and_then(Value::as_str);
    match (kind, version) {
        ("kv", Some("2")) => Ok(Engine::V2),
        ("kv" | "generic" | "cubbyhole", _) => Ok(Engine::V1),
        ("", _) => Err("the mount table does not say which engine this is".to_string()),
        (other, _) => Err(format!(
            "a {other} secrets engine; the vault backend reads kv (version 1 or 2) and cubbyhole mounts only"
        )),
    }
}

/// The mount that holds a path, from `sys/internal/ui/mounts/<path>`'s
/// `data`.
pub fn mount_of(data: &Value) -> Result<Mount, String> {
    let path = data
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| "the mount table entry has no path".to_string())?;
    Ok(Mount {
        path: mount_path(path),
        engine: engine_of(data)?,
    })
}

/// Every secrets engine mount confd can read, from `sys/internal/ui/mounts`'s
/// `data` (for the root key `/`), sorted by path; other engines are left out
/// (they are not key/value data).
pub fn readable_mounts(data: &Value) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = data
        .get("secret")
        .and_then(Value::as_object)
        .map(|table| {
            table
                .iter()
                .filter_map(|(path, entry)| {
                    engine_of(entry).ok().map(|engine| Mount {
                        path: mount_path(path),
                        engine,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    mounts.sort_by(|a, b| a.path.cmp(&b.path));
    mounts
}

fn mount_path(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}

/// A confd key (clean, absolute) as a Vault path without the leading `/`.
pub fn vault_path(key: &str) -> &str {
    key.trim_start_matches('/')
}

impl Mount {
    /// The part of `path` (no leading `/`) below this mount, without a
    /// trailing `/`: `""` for the mount itself, `None` when the path is not
    /// inside the mount.
    pub fn relative<'a>(&self, path: &'a str) -> Option<&'a str> {
        let bare = self.path.trim_end_matches('/');
        if path == bare {
            Some("")
        } else {
            path.strip_prefix(self.path.as_str())
                .map(|rest| rest.trim_end_matches('/'))
        }
    }

    /// Where the secret at `relative` is read.
    pub fn read_path(&self, relative: &str) -> String {
        match self.engine {
            Engine::V1 => format!("{}{relative}", self.path),
            Engine::V2 => format!("{}data/{relative}", self.path),
        }
    }

    /// Where the folder at `relative` is listed.
    pub fn list_path(&self, relative: &str) -> String {
        let folder = match self.engine {
            Engine::V1 => format!("{}{relative}", self.path),
            Engine::V2 => format!("{}metadata/{relative}", self.path),
        };
        folder.trim_end_matches('/').to_string()
    }

    /// The confd key of the secret at `relative`: its logical path, never
    /// the `data/` path KV version 2 reads it from.
    pub fn key(&self, relative: &str) -> String {
        clean_key(&format!("/{}{relative}", self.path))
    }

    /// The fields of a secret from the `data` of its read answer, or `None`
    /// when there are none (a KV v2 secret whose latest version is deleted).
    pub fn fields<'a>(&self, data: &'a Value) -> Option<&'a Map<String, Value>> {
        match self.engine {
            Engine::V1 => data.as_object(),
            Engine::V2 => data.get("data").and_then(Value::as_object),
        }
    }
}

/// The names a LIST answer's `data.keys` holds: folders end in `/`.
pub fn listed_names(data: &Value) -> Vec<String> {
    data.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The path of `name` (as a LIST answer spells it: folders end in `/`)
/// in `folder`; `None` for a name that is empty or would climb out (`..`),
/// which a well-behaved server never lists.
pub fn child(folder: &str, name: &str) -> Option<String> {
    let bare = name.trim_end_matches('/');
    if bare.is_empty()
        || bare
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    Some(if folder.is_empty() {
        bare.to_string()
    } else {
        format!("{folder}/{bare}")
    })
}

/// The keys collected from one read, with the precedence rule that makes the
/// result independent of the order secrets were read in: a secret's own key
/// always wins over a key made from another secret's field
/// (`/app/db` holding a field `user` and a secret `/app/db/user` give the
/// secret's value).
#[derive(Debug, Default)]
pub struct Collected {
    secrets: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    /// Fields skipped because their name would leave their secret (`..`,
    /// an empty segment), as (secret key, field name), for one warning each.
    pub skipped: Vec<(String, String)>,
}

impl Collected {
    /// Adds the secret at `key` with `fields`, by confd's rule: a secret
    /// whose only field is a string `value` is that key's value; any other
    /// becomes its JSON (fields sorted, as Go encodes a map) plus one key
    /// per field, nested objects flattened (`/app/db/tls/cert`). Numbers and
    /// booleans are written as in JSON, lists as their JSON, null as `""`.
    pub fn add_secret(&mut self, key: &str, fields: &Map<String, Value>) {
        if fields.len() == 1
            && let Some(Value::String(value)) = fields.get("value")
        {
            self.secrets.insert(key.to_string(), value.clone());
            return;
        }
        let json = Value::Object(fields.clone()).to_string();
        self.secrets.insert(key.to_string(), json);
        self.flatten(key, key, fields);
    }

    fn flatten(&mut self, secret: &str, base: &str, fields: &Map<String, Value>) {
        for (name, value) in fields {
            let key = clean_key(&format!("{base}/{name}"));
            // `..`, `.` or an empty name would land outside the field's
            // place, possibly on another secret's key: skip it.
            let bad_segment = name
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..");
            if bad_segment || key == base || !is_within(&key, base) {
                self.skipped.push((secret.to_string(), name.clone()));
                continue;
            }
            match value {
                Value::Object(inner) => self.flatten(secret, &key, inner),
                Value::String(text) => {
                    self.fields.insert(key, text.clone());
                }
                Value::Null => {
                    self.fields.insert(key, String::new());
                }
                other => {
                    self.fields.insert(key, other.to_string());
                }
            }
        }
    }

    /// The pairs within `roots`, sorted by key.
    pub fn into_pairs(self, roots: &[String]) -> Vec<(String, String)> {
        let mut all = self.fields;
        all.extend(self.secrets);
        all.into_iter()
            .filter(|(key, _)| crate::backend::within_roots(key, roots))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn v2() -> Mount {
        Mount {
            path: "secret/".into(),
            engine: Engine::V2,
        }
    }

    #[test]
    fn engines_come_from_the_mount_table() {
        let mount =
            mount_of(&json!({"path": "secret/", "type": "kv", "options": {"version": "2"}}));
        assert_eq!(mount, Ok(v2()));
        let v1 = json!({"path": "kv1", "type": "kv", "options": {"version": "1"}});
        assert_eq!(
            mount_of(&v1).map(|m| (m.path, m.engine)),
            Ok(("kv1/".into(), Engine::V1))
        );
        for old in [
            json!({"type": "kv", "options": null}),
            json!({"type": "generic"}),
            json!({"type": "cubbyhole"}),
        ] {
            assert_eq!(engine_of(&old), Ok(Engine::V1), "{old}");
        }
        let pki = engine_of(&json!({"type": "pki"})).expect_err("pki");
        assert!(pki.contains("a pki secrets engine"), "{pki}");
        assert!(mount_of(&json!({"type": "kv"})).is_err());
    }

    #[test]
    fn the_root_key_reads_every_kv_mount() {
        let data = json!({"secret": {
            "secret/": {"type": "kv", "options": {"version": "2"}},
            "cubbyhole/": {"type": "cubbyhole"},
            "pki/": {"type": "pki"},
            "a/kv1/": {"type": "kv", "options": {"version": "1"}}
        }, "auth": {"token/": {"type": "token"}}});
        let paths: Vec<String> = readable_mounts(&data).into_iter().map(|m| m.path).collect();
        assert_eq!(paths, ["a/kv1/", "cubbyhole/", "secret/"]);
    }

    #[test]
    fn v2_paths_keep_their_logical_keys() {
        let m = v2();
        assert_eq!(m.relative("secret"), Some(""));
        assert_eq!(m.relative("secret/app/db"), Some("app/db"));
        assert_eq!(m.relative("secrets/x"), None);
        assert_eq!(m.read_path("app/db"), "secret/data/app/db");
        assert_eq!(m.list_path("app"), "secret/metadata/app");
        assert_eq!(m.list_path(""), "secret/metadata");
        assert_eq!(m.key("app/db"), "/secret/app/db");
        assert_eq!(m.key(""), "/secret");
        let v1 = Mount {
            path: "kv1/".into(),
            engine: Engine::V1,
        };
        assert_eq!(v1.read_path("app/db"), "kv1/app/db");
        assert_eq!(v1.list_path(""), "kv1");
        let answer = json!({"data": {"user": "u"}, "metadata": {"version": 3}});
        assert_eq!(m.fields(&answer).map(|f| f.len()), Some(1));
        assert_eq!(m.fields(&json!({"data": null, "metadata": {}})), None);
        assert_eq!(v1.fields(&json!({"user": "u"})).map(|f| f.len()), Some(1));
        assert_eq!(
            listed_names(&json!({"keys": ["db", "db/", 3]})),
            ["db", "db/"]
        );
    }

    type Pairs = Vec<(String, String)>;

    /// The pairs of `secrets`, and the fields skipped.
    fn pairs(secrets: &[(&str, Value)]) -> (Pairs, Pairs) {
        let mut c = Collected::default();
        for (key, value) in secrets {
            c.add_secret(key, value.as_object().expect("object"));
        }
        let skipped = c.skipped.clone();
        (c.into_pairs(&["/".to_string()]), skipped)
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_lone_string_value_is_the_keys_value() {
        let (got, _) = pairs(&[("/kv/host", json!({"value": "127.0.0.1"}))]);
        assert_eq!(got, owned(&[("/kv/host", "127.0.0.1")]));
        // A lone `value` that is not a string is an ordinary field.
        let (got, _) = pairs(&[("/kv/port", json!({"value": 5432}))]);
        assert_eq!(
            got,
            owned(&[("/kv/port", "{\"value\":5432}"), ("/kv/port/value", "5432")])
        );
    }

    #[test]
    fn other_secrets_are_json_plus_one_key_per_field() {
        let secret = json!({
            "username": "app", "port": 5432, "ratio": 1.5, "tls": {"on": true, "ca": {"pem": "x"}},
            "hosts": ["a", "b"], "note": null, "value": "v"
        });
        let (got, skipped) = pairs(&[("/secret/app/db", secret)]);
        assert!(skipped.is_empty());
        assert_eq!(
            got,
            owned(&[
                (
                    "/secret/app/db",
                    r#"{"hosts":["a","b"],"note":null,"port":5432,"ratio":1.5,"tls":{"ca":{"pem":"x"},"on":true},"username":"app","value":"v"}"#
                ),
                ("/secret/app/db/hosts", r#"["a","b"]"#),
                ("/secret/app/db/note", ""),
                ("/secret/app/db/port", "5432"),
                ("/secret/app/db/ratio", "1.5"),
                ("/secret/app/db/tls/ca/pem", "x"),
                ("/secret/app/db/tls/on", "true"),
                ("/secret/app/db/username", "app"),
                ("/secret/app/db/value", "v"),
            ])
        );
    }

    #[test]
    fn a_secret_wins_over_a_field_in_either_order() {
        let parent = ("/s/db", json!({"user": "from-field", "x": "1"}));
        let child = ("/s/db/user", json!({"value": "from-secret"}));
        for order in [[parent.clone(), child.clone()], [child, parent]] {
            let (got, _) = pairs(&order);
            let user = got
                .iter()
                .find(|(k, _)| k == "/s/db/user")
                .map(|(_, v)| v.as_str());
            assert_eq!(user, Some("from-secret"));
        }
    }

    #[test]
    fn fields_that_would_leave_their_secret_are_skipped() {
        let (got, skipped) = pairs(&[
            (
                "/s/db",
                json!({"..": "a", "../../etc": "b", "": "c", "a/./b": "d", "a/b": "e"}),
            ),
            ("/s/other", json!({"value": "kept"})),
        ]);
        assert_eq!(
            got.iter().filter(|(k, _)| !k.starts_with("/s/db")).count(),
            1
        );
        assert!(got.contains(&("/s/other".to_string(), "kept".to_string())));
        assert!(got.contains(&("/s/db/a/b".to_string(), "e".to_string())));
        assert_eq!(skipped.len(), 4, "{skipped:?}");
    }

    #[test]
    fn pairs_outside_the_roots_are_dropped() {
        let mut c = Collected::default();
        c.add_secret("/s/app", json!({"value": "1"}).as_object().expect("object"));
        c.add_secret(
            "/s/apple",
            json!({"value": "2"}).as_object().expect("object"),
        );
        assert_eq!(
            c.into_pairs(&["/s/app".to_string()]),
            owned(&[("/s/app", "1")])
        );
    }
}

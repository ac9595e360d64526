//! The `file` backend: keys from YAML or JSON files. Nested maps become paths
//! (`services: {web: {port: 80}}` is `/services/web/port = "80"`), lists are
//! indexed (`/hosts/0`, `/hosts/1`). `-file` may be given several times and may
//! name a directory (every `.yaml`, `.yml` and `.json` below it, sorted, or
//! with `-filter GLOB` every file whose name matches the glob, as confd's
//! `-filter`); later files override earlier ones key by key.
//!
//! With `-watch`, one file-system watcher (inotify, through `notify`) covers
//! every input: it watches the folders holding the files (editors replace
//! files by renaming over them) and the given folders recursively, and bumps a
//! generation counter on every change touching an input: a modification, a
//! creation, a rename or a deletion. Opening, reading and closing a file
//! without writing are not changes: the backend's own reads cause them, and
//! counting them would make an idle daemon read its files again forever. The
//! counter is the backend's index: a watch returns as soon as it moves past
//! the index of the last read, so no edit made during a render is lost.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use notify::Watcher as _;
use tokio::sync::watch;

use super::{Backend, BackendError, Fetched, WatchEvent, within_roots};
use crate::error::ConfigError;

/// What the file backend reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// Files or directories, in the order given.
    pub paths: Vec<PathBuf>,
    /// Which files of a directory are read: a glob on the file name (Go's
    /// `path.Match`, as confd's `-filter`); `None`: `.yaml`, `.yml`, `.json`.
    pub filter: Option<String>,
}

/// Checks a `-filter` glob the way Go's `path.Match` would reject it: a
/// class without its `]`, or a `\` with nothing to escape. A file name
/// never holds a `/`, so a glob with one could never match.
pub fn check_filter(glob: &str) -> Result<(), String> {
    if glob.is_empty() {
        return Err("an empty glob matches no file".to_string());
    }
    if glob.contains('/') {
        return Err("the glob is matched against file names, which never hold a '/'".to_string());
    }
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => {
                return Err("ends with a '\\' that escapes nothing".to_string());
            }
            '[' => {
                let mut closed = false;
                let mut first = true;
                while let Some(c) = chars.next() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    if c == '\\' && chars.next().is_none() {
                        break;
                    }
                    first = first && c == '^';
                }
                if !closed {
                    return Err("a '[' class has no closing ']'".to_string());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Re-reads its files at every pass, so edits are picked up by the next one.
pub struct FileBackend {
    config: FileConfig,
    generation: watch::Sender<u64>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FileBackend {
    /// Checks that at least one path was given.
    pub fn new(config: FileConfig) -> Result<Self, ConfigError> {
        if config.paths.is_empty() {
            return Err(ConfigError::setting(
                "-backend file",
                "needs at least one -file PATH (YAML or JSON)",
            ));
        }
        Ok(FileBackend {
            config,
            generation: watch::channel(0).0,
            watcher: Mutex::new(None),
        })
    }

    /// Starts the file-system watcher once; later calls do nothing.
    fn ensure_watcher(&self) -> Result<(), BackendError> {
        let mut slot = self
            .watcher
            .lock()
            .map_err(|_| Self::error(Path::new("-file"), "watcher state poisoned".to_string()))?;
        if slot.is_some() {
            return Ok(());
        }
        let inputs: Vec<PathBuf> = self
            .config
            .paths
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let generation = self.generation.clone();
        let relevant = inputs.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let touches_input = match &event {
                    Ok(event) => {
                        is_change(&event.kind)
                            && event.paths.iter().any(|changed| {
                                relevant.iter().any(|input| changed.starts_with(input))
                            })
                    }
                    // An overflow or watcher error: assume something changed.
                    Err(_) => true,
                };
                if touches_input {
                    generation.send_modify(|g| *g += 1);
                }
            })
            .map_err(|e| Self::error(Path::new("-file"), format!("cannot watch files: {e}")))?;
        for input in &inputs {
            let (target, mode) = if input.is_dir() {
                (input.clone(), notify::RecursiveMode::Recursive)
            } else {
                let parent = match input.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                (parent, notify::RecursiveMode::NonRecursive)
            };
            watcher
                .watch(&target, mode)
                .map_err(|e| Self::error(&target, format!("cannot watch: {e}")))?;
        }
        *slot = Some(watcher);
        Ok(())
    }

    fn error(location: &Path, message: String) -> BackendError {
        BackendError {
            backend: "file",
            location: location.display().to_string(),
            message,
            transient: false,
        }
    }

    fn expand(&self) -> Result<Vec<PathBuf>, BackendError> {
        let mut files = Vec::new();
        for path in &self.config.paths {
            if path.is_dir() {
                for entry in walkdir::WalkDir::new(path)
                    .follow_links(true)
                    .sort_by_file_name()
                {
                    let entry = entry.map_err(|e| Self::error(path, e.to_string()))?;
                    let is_data = match &self.config.filter {
                        Some(glob) => entry
                            .file_name()
                            .to_str()
                            .is_some_and(|name| crate::snapshot::glob_segment_matches(glob, name)),
                        None => matches!(
                            entry.path().extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        ),
                    };
                    if entry.file_type().is_file() && is_data {
                        files.push(entry.into_path());
                    }
                }
            } else {
                files.push(path.clone());
            }
        }
        Ok(files)
    }
}

/// Whether a file-system event can change what a read returns. Opening,
/// reading and closing without writing cannot (and the backend's own reads
/// cause them); a close after writing ends a modification, so it counts.
/// Unknown kinds count, since missing an edit is worse than one extra read.
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => true,
    }
}

/// Parses one file's text into flattened pairs.
pub fn parse_file(path: &Path, text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))?;
        flatten_json("", &value, &mut pairs);
    } else {
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        flatten_yaml("", &value, &mut pairs);
    }
    Ok(pairs)
}

fn flatten_json(path: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                flatten_json(&format!("{path}/{k}"), v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_json(&format!("{path}/{i}"), v, out);
            }
        }
        serde_json::Value::Null => out.push((path.to_string(), String::new())),
        serde_json::Value::String(s) => out.push((path.to_string(), s.clone())),
        other => out.push((path.to_string(), other.to_string())),
    }
}

fn yaml_scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::Null => Some(String::new()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn flatten_yaml(path: &str, value: &serde_yaml_ng::Value, out: &mut Vec<(String, String)>) {
    match value {
        serde_yaml_ng::Value::Mapping(map) => {
            for (k, v) in map {
                let name = yaml_scalar(k).unwrap_or_else(|| format!("{k:?}"));
                flatten_yaml(&format!("{path}/{name}"), v, out);
            }
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_yaml(&format!("{path}/{i}"), v, out);
            }
        }
        serde_yaml_ng::Value::Tagged(tagged) => flatten_yaml(path, &tagged.value, out),
        scalar => out.push((path.to_string(), yaml_scalar(scalar).unwrap_or_default())),
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn name(&self) -> &'static str {
        "file"
    }

    fn can_watch(&self) -> bool {
        true
    }

    fn prepare_watch(&self) -> Result<(), BackendError> {
        self.ensure_watcher()
    }

    async fn watch(&self, _root: &str, index: u64) -> Result<WatchEvent, BackendError> {
        self.ensure_watcher()?;
        let mut generation = self.generation.subscribe();
        match generation.wait_for(|g| *g > index).await {
            Ok(g) => Ok(WatchEvent::changed(*g)),
            Err(_) => Ok(WatchEvent::Quiet),
        }
    }

    async fn read(&self, roots: &[String]) -> Result<Fetched, BackendError> {
        // Taken before reading, so an edit during the read is seen as newer.
        let index = *self.generation.borrow();
        let mut pairs = Vec::new();
        for file in self.expand()? {
            let text = std::fs::read_to_string(&file).map_err(|e| BackendError {
                // A file that is not there yet may be written soon (-wait-keys).
                transient: e.kind() == std::io::ErrorKind::NotFound,
                ..Self::error(&file, crate::error::io_reason(&e))
            })?;
            let parsed = parse_file(&file, &text).map_err(|m| Self::error(&file, m))?;
            pairs.extend(parsed.into_iter().filter_map(|(k, v)| {
                let key = crate::snapshot::clean_key(&k);
                within_roots(&key, roots).then_some((key, v))
            }));
        }
        Ok(Fetched {
            pairs: pairs.into(),
            index,
            root_indexes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_maps_and_lists_flatten_to_paths() {
        let text = "services:\n  web:\n    port: 80\n    hosts: [a, b]\n    on: true\n    none: ~\n    ratio: 1.5\n";
        let mut pairs = parse_file(Path::new("x.yaml"), text).expect("valid yaml");
        pairs.sort();
        assert_eq!(
            pairs,
            vec![
                ("/services/web/hosts/0".into(), "a".into()),
                ("/services/web/hosts/1".into(), "b".into()),
                ("/services/web/none".into(), "".into()),
                ("/services/web/on".into(), "true".into()),
                ("/services/web/port".into(), "80".into()),
                ("/services/web/ratio".into(), "1.5".into()),
            ]
        );
    }

    #[test]
    fn json_flattens_and_errors_have_positions() {
        let pairs = parse_file(Path::new("x.json"), "{\"a\": {\"b\": [1, \"x\"]}}").expect("json");
        assert_eq!(
            pairs,
            vec![("/a/b/0".into(), "1".into()), ("/a/b/1".into(), "x".into())]
        );
        let e = parse_file(Path::new("x.json"), "{\n\"a\": }").expect_err("broken");
        assert!(e.starts_with("line 2"), "{e}");
    }

    #[test]
    fn only_changes_count_not_the_backends_own_reads() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, EventKind, MetadataKind, ModifyKind,
            RemoveKind, RenameMode,
        };
        for own_read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Any),
        ] {
            assert!(!is_change(&own_read), "{own_read:?}");
        }
        for change in [
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
        ] {
            assert!(is_change(&change), "{change:?}");
        }
    }

    #[test]
    fn filter_globs_are_checked_as_go_does() {
        for good in ["*", "*.conf", "app-[0-9].y?ml", "[^.]*", "a\\*b"] {
            assert_eq!(check_filter(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("[a-z", "closing ']'"),
            ("x\\", "escapes nothing"),
            ("conf/*.yaml", "never hold a '/'"),
            ("", "matches no file"),
        ] {
            let e = check_filter(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_filter_picks_the_files_of_a_folder_and_named_files_stay() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["a.conf", "b.yaml", "c.conf.bak", "sub/d.conf"] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "k: v\n").expect("write");
        }
        let named = dir.path().join("c.conf.bak");
        let backend = |filter: Option<&str>| {
            FileBackend::new(FileConfig {
                paths: vec![dir.path().to_path_buf(), named.clone()],
                filter: filter.map(str::to_string),
            })
            .expect("backend")
        };
        let names = |b: FileBackend| -> Vec<String> {
            b.expand()
                .expect("expand")
                .iter()
                .map(|p| {
                    p.strip_prefix(dir.path())
                        .expect("inside")
                        .display()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            names(backend(Some("*.conf"))),
            ["a.conf", "sub/d.conf", "c.conf.bak"]
        );
        assert_eq!(names(backend(None)), ["b.yaml", "c.conf.bak"]);
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(parse_file(Path::new("x.yaml"), "a: [1, 2\nb: c").is_err());
    }
}

//! Template resources: the `conf.d/**/*.toml` files in confd's format, parsed
//! strictly (an unknown key, a missing field or a bad mode/owner is an error
//! naming the file, line and column) into [`Resource`]s the sync engine uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{ConfigError, line_col};
use crate::output_format::OutputFormat;
use crate::size::{format_size, parse_size};
use crate::snapshot::{clean_key, join_keys};
use crate::template::{MAX_OUTPUT_LIMIT, MAX_RENDER_TIMEOUT, MIN_RENDER_TIMEOUT, RenderLimits};

/// How long check and reload commands may run unless a resource says otherwise.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest `command_timeout`: a day. A check or reload that may take longer
/// is a typo, and it holds up every other resource of the pass meanwhile.
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// One template resource: what to render, where to, and what to run.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The resource file's path relative to `conf.d` (its name in logs).
    pub name: String,
    /// The resource file.
    pub file: PathBuf,
    /// The template file (under `<confdir>/templates`).
    pub src: PathBuf,
    /// The file kept in sync.
    pub dest: PathBuf,
    /// Line and column of `dest` in the file, for errors about it.
    pub dest_position: (usize, usize),
    /// The subtrees the template may read, relative to `prefix`.
    pub keys: Vec<String>,
    /// Global prefix joined with the resource's own prefix.
    pub prefix: String,
    /// File mode to apply; `None` keeps dest's mode (or 0644 for a new file).
    pub mode: Option<u32>,
    /// Owner to apply; `None` keeps dest's (or the process's for a new file).
    pub uid: Option<u32>,
    /// Group to apply; `None` keeps dest's (or the process's for a new file).
    pub gid: Option<u32>,
    /// Command validating the staged file; `{{.src}}` is its path.
    pub check_cmd: Option<String>,
    /// Command telling the owning program to reload; `{{.dest}}` is dest.
    pub reload_cmd: Option<String>,
    /// Refuse to write when the resource sees fewer keys than this.
    pub min_keys: Option<usize>,
    /// Line and column of `min_keys` in the file, for `confd check`.
    pub min_keys_position: Option<(usize, usize)>,
    /// Refuse to write when the key count fell by more than this fraction
    /// since the last good render (daemon).
    pub max_shrink: Option<f64>,
    /// Time limit for check_cmd and reload_cmd.
    pub command_timeout: Duration,
    /// Coalescing window for this resource (`wait = "MIN:MAX"`), overriding
    /// `-wait`.
    pub wait: Option<(Duration, Duration)>,
    /// How long the render may run and how much it may write
    /// (`render_timeout`, `max_output_size`; defaults 10 s and 64 MiB).
    pub render_limits: RenderLimits,
    /// The syntax the rendered text must have (`format`), checked before
    /// check_cmd; `None` checks nothing.
    pub format: Option<OutputFormat>,
}

impl Resource {
    /// The absolute subtrees this resource reads (prefix applied).
    pub fn roots(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| join_keys(&self.prefix, k))
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceFile {
    template: Spanned<RawResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    src: Option<Spanned<String>>,
    dest: Option<Spanned<String>>,
    keys: Option<Spanned<Vec<String>>>,
    prefix: Option<String>,
    mode: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    uid: Option<Spanned<i64>>,
    group: Option<Spanned<String>>,
    gid: Option<Spanned<i64>>,
    check_cmd: Option<String>,
    reload_cmd: Option<String>,
    min_keys: Option<Spanned<i64>>,
    max_shrink: Option<Spanned<String>>,
    command_timeout: Option<Spanned<String>>,
    wait: Option<Spanned<String>>,
    render_timeout: Option<Spanned<String>>,
    max_output_size: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

/// Loads every `*.toml` under `<confdir>/conf.d` (recursively, sorted by
/// path) and refuses a resource whose dest another one already writes (see
/// [`shared_dests`]). Returns the resources that loaded and every problem
/// found.
pub fn load_all(confdir: &Path, global_prefix: &str) -> (Vec<Resource>, Vec<ConfigError>) {
    let (mut resources, mut errors) = load_each(confdir, global_prefix);
    let shared = shared_dests(&resources);
    let refused: Vec<usize> = shared.iter().map(|(i, _)| *i).collect();
    errors.extend(shared.into_iter().map(|(_, e)| e));
    let mut position = 0;
    resources.retain(|_| {
        let keep = !refused.contains(&position);
        position += 1;
        keep
    });
    (resources, errors)
}

/// Two resources writing one file would overwrite each other's content at
/// every pass. Returns, for each resource whose dest an earlier one (in path
/// order) already writes, its index and an error naming both resource files
/// and the dest. Dests are compared as files: `/etc/x`, `/etc//x` and
/// `/etc/./x` are one file, and so are two spellings through a symlinked
/// folder.
pub fn shared_dests(resources: &[Resource]) -> Vec<(usize, ConfigError)> {
    let mut writers: std::collections::HashMap<PathBuf, usize> = Default::default();
    let mut shared = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        match writers.entry(same_file(&r.dest)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = &resources[*first.get()];
                let also = if first.dest.as_os_str() == r.dest.as_os_str() {
                    String::new()
                } else {
                    format!(" as {:?}", first.dest.display().to_string())
                };
                shared.push((
                    i,
                    ConfigError::at(
                        &r.file,
                        r.dest_position,
                        format!(
                            "dest {:?} is already written by {}{also}; two resources must not write one file",
                            r.dest.display().to_string(),
                            first.file.display(),
                        ),
                    ),
                ));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    shared
}

/// The file `dest` names, spelled one way: absolute, without `.`, repeated
/// or trailing slashes, its folder resolved through symlinks when it exists.
/// `..` is left to that resolution: lexically it would be wrong after a
/// symlinked folder.
fn same_file(dest: &Path) -> PathBuf {
    let absolute = std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf());
    let cleaned: PathBuf = absolute.components().collect();
    match (cleaned.parent(), cleaned.file_name()) {
        (Some(folder), Some(name)) => match std::fs::canonicalize(folder) {
            Ok(real) => real.join(name),
            Err(_) => cleaned,
        },
        _ => cleaned,
    }
}

/// Loads every `*.toml` under `<confdir>/conf.d` (recursively, sorted by
/// path), each on its own. Returns the resources that loaded and every
/// problem found, so that `confd check` can report all of them at once.
pub fn load_each(confdir: &Path, global_prefix: &str) -> (Vec<Resource>, Vec<ConfigError>) {
    let conf_d = confdir.join("conf.d");
    if !conf_d.is_dir() {
        return (
            Vec::new(),
            vec![ConfigError::file(
                &conf_d,
                "no such directory (set -confdir to the folder holding conf.d/ and templates/)",
            )],
        );
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    for entry in walkdir::WalkDir::new(&conf_d)
        .follow_links(true)
        .sort_by_file_name()
    {
        match entry {
            Ok(e) if e.file_type().is_file() && e.path().extension() == Some("toml".as_ref()) => {
                files.push(e.into_path())
            }
            Ok(_) => {}
            Err(e) => errors.push(ConfigError::file(&conf_d, e.to_string())),
        }
    }
    let templates = confdir.join("templates");
    let mut resources = Vec::with_capacity(files.len());
    for file in files {
        let name = file
            .strip_prefix(&conf_d)
            .unwrap_or(&file)
            .display()
            .to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse(&name, &file, &text, &templates, global_prefix) {
                Ok(resource) => resources.push(resource),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(ConfigError::file(&file, crate::error::io_reason(&e))),
        }
    }
    (resources, errors)
}

/// Parses one resource file's text.
pub fn parse(
    name: &str,
    file: &Path,
    text: &str,
    template_dir: &Path,
    global_prefix: &str,
) -> Result<Resource, ConfigError> {
    let parsed: ResourceFile =
        toml::from_str(text).map_err(|e| ConfigError::toml(file, text, &e))?;
    let table_span = parsed.template.span();
    let raw = parsed.template.into_inner();
    let at = |span: std::ops::Range<usize>, message: String| {
        ConfigError::at(file, line_col(text, span.start), message)
    };
    let missing = |field: &str| {
        at(
            table_span.clone(),
            format!("[template] is missing `{field}`"),
        )
    };

    let src = raw.src.ok_or_else(|| missing("src"))?;
    if src.get_ref().trim().is_empty() {
        return Err(at(src.span(), "`src` is empty".to_string()));
    }
    let dest = raw.dest.ok_or_else(|| missing("dest"))?;
    if dest.get_ref().trim().is_empty() {
        return Err(at(dest.span(), "`dest` is empty".to_string()));
    }
    let keys = raw.keys.ok_or_else(|| missing("keys"))?;
    if keys.get_ref().is_empty() {
        return Err(at(
            keys.span(),
            "`keys` must list at least one key".to_string(),
        ));
    }

    let mode = match raw.mode {
        Some(mode) => Some(parse_mode(mode.get_ref()).ok_or_else(|| {
            at(
                mode.span(),
                format!(
                    "mode {:?} is not an octal file mode such as \"0644\"",
                    mode.get_ref()
                ),
            )
        })?),
        None => None,
    };
    let uid = match (raw.owner, raw.uid) {
        (Some(_), Some(uid)) => {
            return Err(at(
                uid.span(),
                "give `owner` or `uid`, not both".to_string(),
            ));
        }
        (Some(owner), None) => Some(resolve_user(owner.get_ref()).map_err(|reason| {
            at(
                owner.span(),
                format!("owner {:?}: {reason}", owner.get_ref()),
            )
        })?),
        (None, Some(uid)) => Some(
            id_in_range(*uid.get_ref())
                .ok_or_else(|| at(uid.span(), format!("uid {} is out of range", uid.get_ref())))?,
        ),
        (None, None) => None,
    };
    let gid = match (raw.group, raw.gid) {
        (Some(_), Some(gid)) => {
            return Err(at(
                gid.span(),
                "give `group` or `gid`, not both".to_string(),
            ));
        }
        (Some(group), None) => Some(resolve_group(group.get_ref()).map_err(|reason| {
            at(
                group.span(),
                format!("group {:?}: {reason}", group.get_ref()),
            )
        })?),
        (None, Some(gid)) => Some(
            id_in_range(*gid.get_ref())
                .ok_or_else(|| at(gid.span(), format!("gid {} is out of range", gid.get_ref())))?,
        ),
        (None, None) => None,
    };
    let min_keys_position = raw
        .min_keys
        .as_ref()
        .map(|n| line_col(text, n.span().start));
    let min_keys = match raw.min_keys {
        Some(n) => Some(
            usize::try_from(*n.get_ref())
                .map_err(|_| at(n.span(), "min_keys must be 0 or more".to_string()))?,
        ),
        None => None,
    };
    let max_shrink = match raw.max_shrink {
        Some(text_value) => Some(parse_percent(text_value.get_ref()).ok_or_else(|| {
            at(
                text_value.span(),
                format!(
                    "max_shrink {:?} is not a percentage such as \"50%\"",
                    text_value.get_ref()
                ),
            )
        })?),
        None => None,
    };
    let command_timeout = match raw.command_timeout {
        Some(t) => parse_command_timeout(t.get_ref()).map_err(|e| at(t.span(), e))?,
        None => DEFAULT_COMMAND_TIMEOUT,
    };

    let wait = match raw.wait {
        Some(w) => Some(
            crate::config::parse_wait(w.get_ref())
                .map_err(|e| at(w.span(), format!("wait {:?}: {e}", w.get_ref())))?,
        ),
        None => None,
    };

    let dest_position = line_col(text, dest.span().start);

    let mut render_limits = RenderLimits::default();
    if let Some(t) = raw.render_timeout {
        render_limits.timeout = parse_render_timeout(t.get_ref())
            .map_err(|e| at(t.span(), format!("render_timeout {:?}: {e}", t.get_ref())))?;
    }
    if let Some(size) = raw.max_output_size {
        render_limits.max_output = parse_max_output(size.get_ref()).map_err(|e| {
            at(
                size.span(),
                format!("max_output_size {:?}: {e}", size.get_ref()),
            )
        })?;
    }

    let format = match raw.format {
        Some(f) => Some(OutputFormat::parse(f.get_ref()).ok_or_else(|| {
            at(
                f.span(),
                format!(
                    "format {:?} is not one of \"json\", \"yaml\", \"toml\"",
                    f.get_ref()
                ),
            )
        })?),
        None => None,
    };

    let prefix = join_keys(global_prefix, raw.prefix.as_deref().unwrap_or(""));
    Ok(Resource {
        name: name.to_string(),
        file: file.to_path_buf(),
        src: template_dir.join(src.get_ref()),
        dest: PathBuf::from(dest.into_inner()),
        dest_position,
        keys: keys.into_inner().iter().map(|k| clean_key(k)).collect(),
        prefix,
        mode,
        uid,
        gid,
        check_cmd: raw.check_cmd.filter(|c| !c.trim().is_empty()),
        reload_cmd: raw.reload_cmd.filter(|c| !c.trim().is_empty()),
        min_keys,
        min_keys_position,
        max_shrink,
        command_timeout,
        wait,
        render_limits,
        format,
    })
}

/// A command's time limit: more than zero (zero would kill every command at
/// once) and at most [`MAX_COMMAND_TIMEOUT`].
fn parse_command_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text.trim())
        .map_err(|e| format!("command_timeout {text:?}: {e} (write e.g. \"30s\")"))?;
    if timeout.is_zero() {
        return Err(format!(
            "command_timeout {text:?} must be longer than 0 (write e.g. \"30s\")"
        ));
    }
    crate::config::at_most(timeout, MAX_COMMAND_TIMEOUT, "a day (24h)")
        .map_err(|e| format!("command_timeout {text:?} is {e}"))
}

/// `render_timeout`: a duration such as `"30s"` or `"500ms"`, from 1 ms to
/// 1 hour (a render needing longer is a bug, and the daemon's pass waits for
/// it).
fn parse_render_timeout(text: &str) -> Result<Duration, String> {
    let timeout =
        humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (write e.g. \"30s\")"))?;
    if timeout.is_zero() {
        return Err("must be more than zero (write e.g. \"30s\")".to_string());
    }
    if timeout < MIN_RENDER_TIMEOUT {
        return Err(format!(
            "must be {} or more",
            humantime::format_duration(MIN_RENDER_TIMEOUT)
        ));
    }
    if timeout > MAX_RENDER_TIMEOUT {
        return Err(format!(
            "must be {} or less",
            humantime::format_duration(MAX_RENDER_TIMEOUT)
        ));
    }
    Ok(timeout)
}

/// `max_output_size`: a size such as `"16MiB"`, from 1 byte to 1 GiB (the
/// whole output is held in memory).
fn parse_max_output(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    if size == 0 {
        return Err("must be more than zero (write e.g. \"16MiB\")".to_string());
    }
    let limit = MAX_OUTPUT_LIMIT as u64;
    if size > limit {
        return Err(format!("must be {} or less", format_size(limit)));
    }
    usize::try_from(size).map_err(|_| format!("must be {} or less", format_size(limit)))
}

/// Parses a file mode as octal, with or without a leading 0 or `0o`
/// (`"644"` is 0644; confd would read it as decimal).
pub fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    let mode = u32::from_str_radix(digits, 8).ok()?;
    (mode <= 0o7777).then_some(mode)
}

fn parse_percent(text: &str) -> Option<f64> {
    let number: f64 = text.trim().strip_suffix('%')?.trim().parse().ok()?;
    (0.0..=100.0).contains(&number).then_some(number / 100.0)
}

fn id_in_range(id: i64) -> Option<u32> {
    u32::try_from(id).ok()
}

fn resolve_user(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    match nix::unistd::User::from_name(name) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err("no such user".to_string()),
        Err(e) => Err(format!("cannot look up user: {e}")),
    }
}

fn resolve_group(name: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => Err("no such group".to_string()),
        Err(e) => Err(format!("cannot look up group: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Resource, ConfigError> {
        parse(
            "t.toml",
            Path::new("conf.d/t.toml"),
            text,
            Path::new("/c/templates"),
            "/global",
        )
    }

    fn error(text: &str) -> String {
        match parse_text(text) {
            Ok(r) => panic!("parsed {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    const MINIMAL: &str = "[template]\nsrc = \"a.tmpl\"\ndest = \"/tmp/a\"\nkeys = [\"/a/\"]\n";

    #[test]
    fn minimal_resource_gets_defaults_and_prefixes() {
        let r = parse_text(MINIMAL).expect("valid");
        assert_eq!(r.src, Path::new("/c/templates/a.tmpl"));
        assert_eq!(r.keys, vec!["/a"]);
        assert_eq!(r.prefix, "/global");
        assert_eq!(r.roots(), vec!["/global/a"]);
        assert_eq!(r.mode, None);
        assert_eq!(r.command_timeout, DEFAULT_COMMAND_TIMEOUT);
        assert_eq!(r.render_limits, RenderLimits::default());
    }

    #[test]
    fn render_limits_are_read() {
        let r = parse_text(&format!(
            "{MINIMAL}render_timeout = \"30s\"\nmax_output_size = \"16MiB\"\n"
        ))
        .expect("valid");
        assert_eq!(
            r.render_limits,
            RenderLimits {
                timeout: Duration::from_secs(30),
                max_output: 16 << 20,
            }
        );
        let r = parse_text(&format!(
            "{MINIMAL}render_timeout = \"1h\"\nmax_output_size = \"1 GiB\"\n"
        ))
        .expect("valid");
        assert_eq!(r.render_limits.timeout, Duration::from_secs(3600));
        assert_eq!(r.render_limits.max_output, 1 << 30);
        // One set alone keeps the other's default.
        let r = parse_text(&format!("{MINIMAL}max_output_size = \"512 KB\"\n")).expect("valid");
        assert_eq!(r.render_limits.max_output, 512_000);
        assert_eq!(r.render_limits.timeout, RenderLimits::default().timeout);
        let r = parse_text(&format!("{MINIMAL}render_timeout = \"250ms\"\n")).expect("valid");
        assert_eq!(r.render_limits.timeout, Duration::from_millis(250));
        assert_eq!(
            r.render_limits.max_output,
            RenderLimits::default().max_output
        );
    }

    #[test]
    fn format_is_parsed_strictly() {
        let r = parse_text(&format!("{MINIMAL}format = \"json\"\n")).expect("valid");
        assert_eq!(r.format, Some(OutputFormat::Json));
        let r = parse_text(&format!("{MINIMAL}format = \"yaml\"\n")).expect("valid");
        assert_eq!(r.format, Some(OutputFormat::Yaml));
        let r = parse_text(&format!("{MINIMAL}format = \"toml\"\n")).expect("valid");
        assert_eq!(r.format, Some(OutputFormat::Toml));
        assert_eq!(parse_text(MINIMAL).expect("valid").format, None);
        let e = error(&format!("{MINIMAL}format = \"xml\"\n"));
        assert_eq!(
            e,
            "conf.d/t.toml:5:10: format \"xml\" is not one of \"json\", \"yaml\", \"toml\""
        );
        assert!(error(&format!("{MINIMAL}format = 1\n")).starts_with("conf.d/t.toml:5:"));
    }

    #[test]
    fn bad_render_limits_are_pointed_at() {
        let cases = [
            (
                "render_timeout = \"0s\"",
                "render_timeout \"0s\": must be more than zero",
            ),
            ("render_timeout = \"soon\"", "render_timeout \"soon\": "),
            ("render_timeout = \"30\"", "render_timeout \"30\": "),
            ("render_timeout = \"100us\"", "must be 1ms or more"),
            ("render_timeout = \"2h\"", "must be 1h or less"),
            ("render_timeout = \"100years\"", "must be 1h or less"),
            (
                "max_output_size = \"0MiB\"",
                "max_output_size \"0MiB\": must be more than zero",
            ),
            ("max_output_size = \"0\"", "must be more than zero"),
            ("max_output_size = \"2GiB\"", "must be 1 GiB or less"),
            ("max_output_size = \"16M\"", "ambiguous"),
            ("max_output_size = \"lots\"", "not a size"),
            ("max_output_size = \"1.5MiB\"", "unit"),
            ("max_output_size = \"99999999999999999999999\"", "too large"),
        ];
        for (line, expected) in cases {
            let e = error(&format!("{MINIMAL}{line}\n"));
            let column = line.find('"').map_or(0, |i| i + 1);
            assert!(
                e.starts_with(&format!("conf.d/t.toml:5:{column}: ")),
                "{line}: {e}"
            );
            assert!(e.contains(expected), "{line}: {e}");
            assert!(!e.contains('\n'), "{line}: {e}");
        }
        // A number is not a size: sizes and durations are strings.
        let e = error(&format!("{MINIMAL}max_output_size = 1024\n"));
        assert!(e.starts_with("conf.d/t.toml:5:"), "{e}");
    }

    #[test]
    fn resource_prefix_joins_with_one_slash() {
        let r = parse_text(&format!("{MINIMAL}prefix = \"/production/\"\n")).expect("valid");
        assert_eq!(r.prefix, "/global/production");
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("644"), Some(0o644));
        assert_eq!(parse_mode("0644"), Some(0o644));
        assert_eq!(parse_mode("0o600"), Some(0o600));
        assert_eq!(parse_mode("4755"), Some(0o4755));
        assert_eq!(parse_mode("888"), None);
        assert_eq!(parse_mode(""), None);
        assert_eq!(parse_mode("77777"), None);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = error(&format!("{MINIMAL}reload = \"x\"\n"));
        assert!(e.starts_with("conf.d/t.toml:5:1:"), "{e}");
        assert!(e.contains("reload"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        assert!(error("[template]\ndest = \"/x\"\nkeys = [\"/a\"]\n").contains("missing `src`"));
        assert!(error("[template]\nsrc = \"x\"\nkeys = [\"/a\"]\n").contains("missing `dest`"));
        assert!(error("[template]\nsrc = \"x\"\ndest = \"/x\"\n").contains("missing `keys`"));
        assert!(
            error("[template]\nsrc = \"x\"\ndest = \"/x\"\nkeys = []\n").contains("at least one")
        );
        assert!(error("src = \"x\"\n").contains("t.toml"));
    }

    #[test]
    fn bad_values_are_pointed_at() {
        let e = error(&format!("{MINIMAL}mode = \"rw-r--r--\"\n"));
        assert!(e.starts_with("conf.d/t.toml:5:8:"), "{e}");
        let e = error(&format!("{MINIMAL}owner = \"surely-no-such-user\"\n"));
        assert!(e.contains("no such user"), "{e}");
        let e = error(&format!("{MINIMAL}uid = -1\n"));
        assert!(e.contains("out of range"), "{e}");
        let e = error(&format!("{MINIMAL}owner = \"root\"\nuid = 0\n"));
        assert!(e.contains("not both"), "{e}");
        let e = error(&format!("{MINIMAL}max_shrink = \"half\"\n"));
        assert!(e.contains("percentage"), "{e}");
        let e = error(&format!("{MINIMAL}command_timeout = \"soon\"\n"));
        assert!(e.contains("command_timeout"), "{e}");
        let e = error(&format!("{MINIMAL}wait = \"5s:1s\"\n"));
        assert!(e.contains("wait") && e.contains("MAX"), "{e}");
    }

    #[test]
    fn command_timeout_is_more_than_zero_and_at_most_a_day() {
        for (value, reason) in [
            ("0s", "longer than 0"),
            ("0", "longer than 0"),
            ("24h 1s", "longer than a day"),
            ("18446744073709551615s", ""),
        ] {
            let e = error(&format!("{MINIMAL}command_timeout = {value:?}\n"));
            assert!(
                e.starts_with("conf.d/t.toml:5:19: command_timeout") && e.contains(reason),
                "{value}: {e}"
            );
        }
        let r = parse_text(&format!("{MINIMAL}command_timeout = \"24h\"\n")).expect("valid");
        assert_eq!(r.command_timeout, MAX_COMMAND_TIMEOUT);
    }

    #[test]
    fn wait_is_at_most_a_year() {
        for value in ["18446744073709551615s", "1s:400d", "366d"] {
            let e = error(&format!("{MINIMAL}wait = {value:?}\n"));
            assert!(
                e.starts_with("conf.d/t.toml:5:8: wait") && e.contains("longer than a year"),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn owner_and_group_resolve_by_name_or_number() {
        let r = parse_text(&format!("{MINIMAL}owner = \"root\"\ngroup = \"0\"\n")).expect("valid");
        assert_eq!((r.uid, r.gid), (Some(0), Some(0)));
        let r = parse_text(&format!("{MINIMAL}max_shrink = \"50%\"\n")).expect("valid");
        assert_eq!(r.max_shrink, Some(0.5));
    }

    fn with_dest(name: &str, dest: &str) -> Resource {
        let text = format!("[template]\nsrc = \"a.tmpl\"\ndest = {dest:?}\nkeys = [\"/a\"]\n");
        let file = format!("conf.d/{name}");
        parse(name, Path::new(&file), &text, Path::new("/c/templates"), "").expect("valid")
    }

    #[test]
    fn two_resources_writing_one_file_are_refused_naming_both() {
        let folder = tempfile::tempdir().expect("temp dir");
        let root = folder.path().display().to_string();
        std::fs::create_dir(folder.path().join("real")).expect("mkdir");
        std::os::unix::fs::symlink(folder.path().join("real"), folder.path().join("link"))
            .expect("symlink");
        for (first, second) in [
            ("/etc/x", "/etc/x"),
            ("/etc/x", "/etc//x"),
            ("/etc/x", "/etc/./x"),
            ("/etc/x", "//etc/x/"),
            (&format!("{root}/real/x") as &str, &format!("{root}/link/x")),
            (&format!("{root}/real/x"), &format!("{root}/real/../real/x")),
        ] {
            let resources = vec![
                with_dest("a.toml", first),
                with_dest("b.toml", "/elsewhere"),
                with_dest("c.toml", second),
            ];
            let shared = shared_dests(&resources);
            assert_eq!(shared.len(), 1, "{first} {second}");
            let (index, error) = &shared[0];
            assert_eq!(*index, 2);
            let text = error.to_string();
            assert!(
                text.starts_with("conf.d/c.toml:3:8: ")
                    && text.contains("conf.d/a.toml")
                    && text.contains(&format!("{second:?}")),
                "{text}"
            );
        }
        let distinct = vec![with_dest("a.toml", "/etc/x"), with_dest("b.toml", "/etc/y")];
        assert!(shared_dests(&distinct).is_empty());
    }

    #[test]
    fn malformed_toml_is_one_line_with_position() {
        let e = error("[template\nsrc = 1\n");
        assert!(e.starts_with("conf.d/t.toml:1:"), "{e}");
        assert!(!e.contains('\n'));
    }
}

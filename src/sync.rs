//! Bringing one destination file in line with its rendered content, safely:
//! compare content (confd's md5 check), mode and owner with what is there;
//! stage the new content next to dest (same file system, so the rename is
//! atomic) with mode 0600; let check_cmd judge the staged file; apply owner
//! and mode; fsync; rename over dest; fsync the directory. Any failure leaves dest exactly as it was and
//! removes the stage file (unless asked to keep it).
//!
//! Reloading is not done here: the engine runs each distinct reload command
//! once per pass, after every resource has been written.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::command::{self, CommandError};
use crate::error::io_reason;

/// Mode of a destination file that did not exist before and has no `mode`.
pub const DEFAULT_MODE: u32 = 0o644;

/// The pass-wide switches that change what syncing does.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// Show what would change; write nothing, run nothing.
    pub noop: bool,
    /// Write files but run no check_cmd or reload_cmd.
    pub sync_only: bool,
    /// Keep stage files instead of deleting them.
    pub keep_stage_file: bool,
}

/// What a destination should look like after the sync.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The destination file.
    pub dest: &'a Path,
    /// Its new content.
    pub content: &'a [u8],
    /// Mode to enforce, or `None` to keep dest's (0644 for a new file).
    pub mode: Option<u32>,
    /// Owner to enforce, or `None` to keep dest's (the process's for a new file).
    pub uid: Option<u32>,
    /// Group to enforce, or `None` to keep dest's (the process's for a new file).
    pub gid: Option<u32>,
    /// Command that validates the staged file.
    pub check_cmd: Option<&'a str>,
    /// Time limit for check_cmd.
    pub command_timeout: Duration,
    /// Where check_cmd's duration is recorded, if anywhere.
    pub metrics: Option<&'a crate::ops::Metrics>,
}

/// What syncing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// dest already had this content, mode and owner; nothing was written.
    Unchanged,
    /// dest was replaced.
    Updated,
    /// `-noop`: dest differs; this is the unified diff (and attribute changes).
    WouldUpdate(String),
}

/// Why a destination could not be brought in line. dest is untouched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    /// dest exists but could not be read or inspected.
    #[error("{}: cannot read the current file: {reason}", .dest.display())]
    Inspect {
        /// The destination.
        dest: PathBuf,
        /// Why.
        reason: String,
    },
    /// The stage file could not be created, written, owned or synced.
    #[error("{}: cannot stage the new file: {reason}", .dest.display())]
    Stage {
        /// The destination.
        dest: PathBuf,
        /// Why.
        reason: String,
    },
    /// check_cmd rejected the staged file.
    #[error("{}: check_cmd rejected the new content: {source}", .dest.display())]
    Check {
        /// The destination.
        dest: PathBuf,
        /// The command's failure, with its output.
        source: CommandError,
    },
    /// The final rename failed.
    #[error("{}: cannot replace the file: {reason}", .dest.display())]
    Swap {
        /// The destination.
        dest: PathBuf,
        /// Why.
        reason: String,
    },
}

/// What is at dest now.
struct Current {
    content: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
}

fn inspect(dest: &Path) -> Result<Option<Current>, SyncError> {
    let fail = |reason: String| SyncError::Inspect {
        dest: dest.to_path_buf(),
        reason,
    };
    let meta = match fs::metadata(dest) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(io_reason(&e))),
    };
    if !meta.is_file() {
        return Err(fail("it is not a regular file".to_string()));
    }
    let content = fs::read(dest).map_err(|e| fail(io_reason(&e)))?;
    Ok(Some(Current {
        content,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    }))
}

/// Brings `target.dest` in line with `target`, following the module's rules.
pub async fn sync_file(target: &Target<'_>, options: SyncOptions) -> Result<Synced, SyncError> {
    let dest = target.dest;
    let current = inspect(dest)?;
    let mode = target
        .mode
        .or(current.as_ref().map(|c| c.mode))
        .unwrap_or(DEFAULT_MODE);
    let uid = target
        .uid
        .or(current.as_ref().map(|c| c.uid))
        .unwrap_or_else(|| nix::unistd::geteuid().as_raw());
    let gid = target
        .gid
        .or(current.as_ref().map(|c| c.gid))
        .unwrap_or_else(|| nix::unistd::getegid().as_raw());

    if let Some(current) = &current {
        // Equal bytes is what equal md5 sums stand for in confd; comparing
        // the bytes decides the same without hashing both files (a few
        // milliseconds per MiB on the path of every change).
        let same_content = current.content == target.content;
        if same_content && current.mode == mode && current.uid == uid && current.gid == gid {
            return Ok(Synced::Unchanged);
        }
        if !same_content && tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                dest = %dest.display(),
                current_md5 = %hex(&Md5::digest(&current.content)),
                new_md5 = %hex(&Md5::digest(target.content)),
                "out of sync"
            );
        }
    }
    let dir = parent_dir(dest);
    if !dir.is_dir() {
        return Err(SyncError::Stage {
            dest: dest.to_path_buf(),
            reason: format!("the directory {} does not exist", dir.display()),
        });
    }
    if options.noop {
        return Ok(Synced::WouldUpdate(describe_change(
            dest,
            current.as_ref(),
            target.content,
            (mode, uid, gid),
        )));
    }

    let stage_error = |reason: String| SyncError::Stage {
        dest: dest.to_path_buf(),
        reason,
    };
    let stage = create_stage(dest).map_err(|e| {
        stage_error(format!(
            "cannot create a file in {}: {}",
            dir.display(),
            io_reason(&e)
        ))
    })?;
    let stage = StageGuard {
        file: Some(stage),
        keep: options.keep_stage_file,
    };
    let staged = stage.file()?;
    write_stage(staged.as_file(), target.content, uid, gid)
        .map_err(|e| stage_error(format!("{} ({})", io_reason(&e), staged.path().display())))?;

    if let (Some(check), false) = (target.check_cmd, options.sync_only) {
        let src = staged.path().display().to_string();
        let line = command::expand(check, Some(&src), &dest.display().to_string());
        let started = tokio::time::Instant::now();
        let checked = command::run_shell(&line, target.command_timeout).await;
        if let Some(metrics) = target.metrics {
            metrics.command_took(crate::ops::CommandKind::Check, started.elapsed());
        }
        checked.map_err(|source| SyncError::Check {
            dest: dest.to_path_buf(),
            source,
        })?;
    }

    let file = staged.as_file();
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.sync_all())
        .map_err(|e| stage_error(io_reason(&e)))?;
    stage.persist(dest)?;
    sync_parent_dir(dest);
    Ok(Synced::Updated)
}

/// Owns the stage file until it is renamed; on any early return it is deleted,
/// or kept when `-keep-stage-file` asks for that.
struct StageGuard {
    file: Option<tempfile::NamedTempFile>,
    keep: bool,
}

impl StageGuard {
    fn file(&self) -> Result<&tempfile::NamedTempFile, SyncError> {
        self.file.as_ref().ok_or_else(|| SyncError::Stage {
            dest: PathBuf::new(),
            reason: "stage file already used".to_string(),
        })
    }

    fn persist(mut self, dest: &Path) -> Result<(), SyncError> {
        let Some(file) = self.file.take() else {
            return Err(SyncError::Swap {
                dest: dest.to_path_buf(),
                reason: "stage file already used".to_string(),
            });
        };
        file.persist(dest).map(|_| ()).map_err(|e| {
            let reason = io_reason(&e.error);
            self.file = Some(e.file);
            SyncError::Swap {
                dest: dest.to_path_buf(),
                reason,
            }
        })
    }
}

impl Drop for StageGuard {
    fn drop(&mut self) {
        if let Some(file) = self.file.take()
            && self.keep
        {
            let _ = file.keep();
        }
    }
}

/// Lower-case hexadecimal, as `md5sum` prints a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The directory holding `dest` (`.` for a bare file name).
fn parent_dir(dest: &Path) -> &Path {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn create_stage(dest: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let dir = parent_dir(dest);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // tempfile creates the file with mode 0600, as the stage must start.
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".stage")
        .tempfile_in(dir)
}

fn write_stage(file: &fs::File, content: &[u8], uid: u32, gid: u32) -> std::io::Result<()> {
    let mut writer = file;
    writer.write_all(content)?;
    let (euid, egid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    if uid != euid || gid != egid {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    }
    // The one fsync comes after the final mode is applied, just before the
    // rename: a file that is renamed is complete on disk, a file that never
    // is (check_cmd refused it) needs no fsync.
    Ok(())
}

/// Makes the rename durable; a failure here cannot be undone, so it is only
/// logged.
fn sync_parent_dir(dest: &Path) {
    let dir = parent_dir(dest);
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %io_reason(&e), "cannot fsync directory after rename");
    }
}

/// The `-noop` report: a unified diff plus any mode/owner change.
fn describe_change(
    dest: &Path,
    current: Option<&Current>,
    content: &[u8],
    (mode, uid, gid): (u32, u32, u32),
) -> String {
    let old_text = current
        .map(|c| String::from_utf8_lossy(&c.content).into_owned())
        .unwrap_or_default();
    let new_text = String::from_utf8_lossy(content);
    let shown = dest.display().to_string();
    let old_name = if current.is_some() {
        shown.clone()
    } else {
        "/dev/null".to_string()
    };
    let mut out = similar::TextDiff::from_lines(old_text.as_str(), new_text.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &shown)
        .to_string();
    match current {
        Some(c) => {
            if c.mode != mode {
                out.push_str(&format!("mode {:04o} -> {:04o}\n", c.mode, mode));
            }
            if (c.uid, c.gid) != (uid, gid) {
                out.push_str(&format!("owner {}:{} -> {uid}:{gid}\n", c.uid, c.gid));
            }
        }
        None => out.push_str(&format!("new file, mode {mode:04o}, owner {uid}:{gid}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target<'a>(dest: &'a Path, content: &'a [u8]) -> Target<'a> {
        Target {
            dest,
            content,
            mode: None,
            uid: None,
            gid: None,
            check_cmd: None,
            command_timeout: Duration::from_secs(5),
            metrics: None,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("readable dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test(flavor = "current_thread")]
    async fn creates_then_leaves_an_identical_file_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        let t = target(&dest, b"hello\n");
        assert_eq!(
            sync_file(&t, SyncOptions::default()).await.ok(),
            Some(Synced::Updated)
        );
        assert_eq!(fs::read(&dest).expect("written"), b"hello\n");
        let meta = fs::metadata(&dest).expect("meta");
        assert_eq!(meta.mode() & 0o7777, DEFAULT_MODE);
        assert_eq!(
            sync_file(&t, SyncOptions::default()).await.ok(),
            Some(Synced::Unchanged)
        );
        assert_eq!(entries(dir.path()), vec!["app.conf"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keeps_existing_mode_unless_told() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        fs::write(&dest, "old").expect("write");
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o640)).expect("chmod");
        let t = target(&dest, b"new");
        sync_file(&t, SyncOptions::default()).await.expect("sync");
        assert_eq!(fs::metadata(&dest).expect("meta").mode() & 0o7777, 0o640);
        let mut t = target(&dest, b"new");
        t.mode = Some(0o600);
        assert_eq!(
            sync_file(&t, SyncOptions::default()).await.ok(),
            Some(Synced::Updated)
        );
        assert_eq!(fs::metadata(&dest).expect("meta").mode() & 0o7777, 0o600);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn failing_check_leaves_dest_and_no_stage_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        fs::write(&dest, "old").expect("write");
        let mut t = target(&dest, b"new");
        t.check_cmd = Some("grep -q valid {{.src}} || { echo 'bad config' >&2; exit 1; }");
        let err = sync_file(&t, SyncOptions::default())
            .await
            .expect_err("rejected");
        let text = err.to_string();
        assert!(text.contains("check_cmd rejected"), "{text}");
        assert!(text.contains("bad config"), "{text}");
        assert_eq!(fs::read(&dest).expect("kept"), b"old");
        assert_eq!(entries(dir.path()), vec!["app.conf"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn keep_stage_file_keeps_the_rejected_stage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        let mut t = target(&dest, b"new");
        t.check_cmd = Some("false");
        let options = SyncOptions {
            keep_stage_file: true,
            ..SyncOptions::default()
        };
        assert!(sync_file(&t, options).await.is_err());
        let names = entries(dir.path());
        assert_eq!(names.len(), 1);
        assert!(names[0].starts_with(".app.conf."), "{names:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn check_sees_staged_content_with_mode_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        let mut t = target(&dest, b"valid");
        t.mode = Some(0o644);
        t.check_cmd = Some("test \"$(stat -c %a {{.src}})\" = 600 && grep -q valid {{ src }}");
        assert_eq!(
            sync_file(&t, SyncOptions::default()).await.ok(),
            Some(Synced::Updated)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn noop_reports_a_diff_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("app.conf");
        fs::write(&dest, "a\nb\n").expect("write");
        let t = target(&dest, b"a\nc\n");
        let options = SyncOptions {
            noop: true,
            ..SyncOptions::default()
        };
        match sync_file(&t, options).await {
            Ok(Synced::WouldUpdate(diff)) => {
                assert!(diff.contains("-b\n+c\n"), "{diff}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(fs::read(&dest).expect("kept"), b"a\nb\n");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn missing_directory_is_a_stage_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("nope").join("app.conf");
        let err = sync_file(&target(&dest, b"x"), SyncOptions::default())
            .await
            .expect_err("no dir");
        assert!(err.to_string().contains("cannot stage"), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let noop = SyncOptions {
            noop: true,
            ..SyncOptions::default()
        };
        assert!(sync_file(&target(&dest, b"x"), noop).await.is_err());
    }
}

//! Reads a path the manifests name — the one reader every such path goes
//! through (a prompt's `templateFile`, `modelsync.toml`'s `approvers`, the
//! files under `approvals/`; serving outputs next): [`read`] after
//! [`crate::manifest::paths::named`] has checked it as written, and
//! [`list`] for the files under a folder.
//!
//! From a [`paths::Snapshot`] (a git commit's tree, a saved plan) only its own
//! files are read. From the host ([`Tree::Host`]) the symbolic links below
//! the manifests root are followed one component at a time and must lead
//! inside it ([`paths::follow`]); what is read is then a regular file, at
//! most [`super::MAX_OTHER`] bytes of UTF-8, and the very file that was
//! checked (its device and inode compared after opening). Nothing outside
//! the root is opened: not `/proc`, not a device, not the working folder.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::manifest::paths::{self, Tree};

/// The text of `path` (as [`paths::named`] returned it) inside `root`.
pub fn read(tree: &Tree, root: &str, path: &str) -> Result<String, String> {
    match tree {
        Tree::Snapshot(snapshot) => snapshot.read(root, path),
        Tree::Host => read_host(root, path),
    }
}

/// The files under the folder `dir` (inside `root`), sorted, for
/// [`read`] to read: a snapshot's own; on the host, the regular files and
/// links below the folder (not hidden; folders reached through a link are
/// not entered; [`read`] refuses a link that leads out). None when there
/// is no such folder.
pub fn list(tree: &Tree, root: &str, dir: &str) -> Result<Vec<String>, String> {
    match tree {
        Tree::Snapshot(snapshot) => snapshot.list(root, dir),
        Tree::Host => {
            let resolved = paths::follow(root, dir, &mut host_link).map_err(|e| e.to_string())?;
            let mut found = Vec::new();
            if fs::symlink_metadata(host_path(&resolved)).is_ok_and(|m| m.is_dir()) {
                walk(&resolved, &mut found).map_err(|e| format!("{resolved}: {e}"))?;
            }
            found.sort();
            Ok(found)
        }
    }
}

fn walk(dir: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in fs::read_dir(host_path(dir))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// [`read`] from the host's file system.
pub fn read_host(root: &str, path: &str) -> Result<String, String> {
    let resolved = paths::follow(root, path, &mut host_link).map_err(|e| e.to_string())?;
    let shown = if resolved == paths::normalize(path) {
        String::new()
    } else {
        format!("{resolved}: ")
    };
    read_regular(&resolved).map_err(|e| format!("{shown}{e}"))
}

/// The target of `path` when it is a symbolic link on the host.
pub(super) fn host_link(path: &str) -> Option<String> {
    let p = host_path(path);
    let meta = fs::symlink_metadata(p).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = fs::read_link(p).ok()?;
    Some(target.to_string_lossy().into_owned())
}

/// Reads a path that names no link: a regular file (not a device, a FIFO,
/// a folder), the same one after opening, no larger than the cap.
fn read_regular(path: &str) -> Result<String, String> {
    let p = host_path(path);
    let checked = fs::symlink_metadata(p).map_err(|e| e.to_string())?;
    if !checked.file_type().is_file() {
        return Err("not a regular file".into());
    }
    let file = fs::File::open(p).map_err(|e| e.to_string())?;
    let opened = file.metadata().map_err(|e| e.to_string())?;
    if !same_file(&checked, &opened) {
        return Err("changed while it was read".into());
    }
    let mut bytes = Vec::new();
    file.take(super::MAX_OTHER as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > super::MAX_OTHER {
        return Err(format!("larger than {} bytes", super::MAX_OTHER));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    b.is_file() && a.len() == b.len()
}

/// A normalized path as the file system takes it (`""` is `.`).
fn host_path(path: &str) -> &Path {
    Path::new(if path.is_empty() { "." } else { path })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::manifest::paths::Snapshot;

    /// The host reader on a real folder: links inside are followed, links
    /// out (relative, absolute, to `/proc/self/environ`), devices and
    /// folders are refused, and what is outside is never opened.
    #[test]
    fn reads_only_regular_files_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        let m = base.join("m");
        fs::create_dir_all(m.join("real")).expect("mkdir");
        fs::write(m.join("real/t.txt"), "Hi {{name}}").expect("write");
        fs::write(base.join("outside.txt"), "SECRET").expect("write");
        symlink("real/t.txt", m.join("in.txt")).expect("link");
        symlink("real", m.join("dir")).expect("link");
        symlink("../outside.txt", m.join("out.txt")).expect("link");
        symlink(base.join("outside.txt"), m.join("abs.txt")).expect("link");
        symlink("/proc/self/environ", m.join("environ")).expect("link");
        symlink("/dev/zero", m.join("zero")).expect("link");
        symlink("..", m.join("up")).expect("link");
        let root = m.display().to_string();
        let at = |p: &str| format!("{root}/{p}");
        assert_eq!(
            read_host(&root, &at("real/t.txt")),
            Ok("Hi {{name}}".into())
        );
        assert_eq!(read_host(&root, &at("in.txt")), Ok("Hi {{name}}".into()));
        assert_eq!(read_host(&root, &at("dir/t.txt")), Ok("Hi {{name}}".into()));
        for (name, why) in [
            ("out.txt", "which leads outside the manifests root"),
            ("abs.txt", "an absolute target"),
            ("environ", "an absolute target"),
            ("zero", "an absolute target"),
            ("up/outside.txt", "which leads outside the manifests root"),
        ] {
            let err = read_host(&root, &at(name)).expect_err(name);
            assert!(err.contains(why), "{name}: {err}");
            assert!(!err.contains("SECRET"), "{name}: {err}");
        }
        assert_eq!(
            read_host(&root, &at("real")),
            Err("not a regular file".into())
        );
        fs::write(m.join("big.txt"), vec![b'a'; super::super::MAX_OTHER + 1]).expect("write");
        assert!(
            read_host(&root, &at("big.txt"))
                .unwrap_err()
                .starts_with("larger than")
        );
        let snapshot = Tree::Snapshot(Snapshot {
            name: "the saved plan".into(),
            ..Snapshot::default()
        });
        assert_eq!(
            read(&snapshot, &root, &at("real/t.txt")),
            Err("not in the saved plan".into()),
            "a snapshot never falls back to the host"
        );
    }
}

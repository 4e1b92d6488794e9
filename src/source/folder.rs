//! Reads manifest files (`*.yaml`, `*.yml`) found recursively under paths.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::SourceError;
use crate::manifest::SourceFile;

/// Files larger than this are not read whole: `manifest/` reports them as
/// oversized from the first `MAX_READ` bytes.
const MAX_READ: u64 = 4 * 1024 * 1024 + 1;

/// Reads every manifest under `paths` (files are taken as given, folders are
/// searched recursively, skipping hidden entries), sorted by path. A
/// manifest found in a folder that is a symbolic link must lead inside that
/// folder (`crate::manifest::paths::follow`).
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<SourceFile>, SourceError> {
    let mut found = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).map_err(|e| match broken_link(path, &e) {
            Some(err) => err,
            None if e.kind() == std::io::ErrorKind::NotFound => {
                SourceError::Missing(path.display().to_string())
            }
            None => io_err(path, e),
        })?;
        if meta.is_dir() {
            let mut under = Vec::new();
            walk(path, is_manifest, &mut under)?;
            for file in &under {
                inside(path, file)?;
            }
            found.extend(under);
        } else {
            found.push(path.clone());
        }
    }
    found.sort();
    found.dedup();
    found.iter().map(|p| read_one(p)).collect()
}

/// The manifests roots of `paths` (see `crate::manifest::paths`): each
/// folder, and the folder of each file given directly.
pub fn roots(paths: &[PathBuf]) -> Vec<String> {
    let mut roots: Vec<String> = paths
        .iter()
        .map(|p| {
            if p.is_dir() {
                display(p)
            } else {
                p.parent().map(display).unwrap_or_default()
            }
        })
        .collect();
    roots.dedup();
    roots
}

/// The template and approval files ([`super::is_other_file`]) under the folders among
/// `paths` (not hidden) that read inside their folder
/// ([`super::tree::read_host`]), as [`super::others`] keeps them: read so
/// that the daemon sees a template's edit.
pub fn read_others(
    paths: &[PathBuf],
) -> Result<std::collections::BTreeMap<String, String>, SourceError> {
    let mut read = Vec::new();
    for dir in paths.iter().filter(|p| p.is_dir()) {
        let mut found = Vec::new();
        walk(dir, super::is_other_file, &mut found)?;
        let root = display(dir);
        for path in found {
            let path = display(&path);
            if let Ok(text) = super::tree::read_host(&root, &path) {
                read.push((path, text.into_bytes()));
            }
        }
    }
    read.sort();
    read.dedup();
    Ok(super::others(read))
}

/// Refuses `file`, found under the folder `dir`, when it is a symbolic link
/// (or under one) that leads out of `dir`. A dangling link is left to
/// [`read_one`], which names it as such.
fn inside(dir: &Path, file: &Path) -> Result<(), SourceError> {
    if fs::metadata(file).is_err() {
        return Ok(());
    }
    let (root, path) = (display(dir), display(file));
    let named = crate::manifest::paths::normalize(&path);
    crate::manifest::paths::follow(&root, &named, &mut super::tree::host_link)
        .map(|_| ())
        .map_err(|escape| SourceError::Outside { path, escape })
}

/// Every non-hidden file under `dir` that `keep` accepts, recursively
/// (hidden folders are not entered).
fn walk(dir: &Path, keep: fn(&Path) -> bool, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if hidden {
            continue;
        }
        let kind = entry.file_type().map_err(|e| io_err(&path, e))?;
        if kind.is_dir() {
            walk(&path, keep, out)?;
        } else if keep(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn read_one(path: &Path) -> Result<SourceFile, SourceError> {
    let file = fs::File::open(path)
        .map_err(|e| broken_link(path, &e).unwrap_or_else(|| io_err(path, e)))?;
    let mut contents = Vec::new();
    file.take(MAX_READ)
        .read_to_end(&mut contents)
        .map_err(|e| io_err(path, e))?;
    Ok(SourceFile {
        path: display(path),
        contents,
    })
}

fn display(path: &Path) -> String {
    let s = path.display().to_string();
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

fn io_err(path: &Path, error: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// When opening `path` failed because it is a symbolic link to nothing,
/// the error that says so.
fn broken_link(path: &Path, e: &std::io::Error) -> Option<SourceError> {
    if e.kind() != std::io::ErrorKind::NotFound {
        return None;
    }
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let target = fs::read_link(path).ok().filter(|_| is_link)?;
    Some(SourceError::BrokenLink {
        path: display(path),
        target: target.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_yaml_recursively_sorted_skipping_hidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).expect("mkdir");
        fs::create_dir_all(root.join(".git")).expect("mkdir");
        fs::write(root.join("b/c/z.yml"), "a: 1").expect("write");
        fs::write(root.join("a.yaml"), "a: 2").expect("write");
        fs::write(root.join("notes.txt"), "x").expect("write");
        fs::write(root.join(".git/x.yaml"), "x").expect("write");
        let files = read_paths(&[root.to_path_buf()]).expect("read");
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(&root.display().to_string())
                    .unwrap_or(&f.path)
                    .to_string()
            })
            .collect();
        assert_eq!(names, vec!["/a.yaml", "/b/c/z.yml"]);
    }

    #[cfg(unix)]
    #[test]
    fn dangling_symlink_is_one_error_naming_it_and_its_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("gone.yaml");
        std::os::unix::fs::symlink(dir.path().join("nowhere.yaml"), &link).expect("symlink");
        let expected = format!(
            "{}: broken symbolic link: its target {} does not exist",
            link.display(),
            dir.path().join("nowhere.yaml").display()
        );
        // Found by walking a folder, and given directly.
        for given in [dir.path().to_path_buf(), link.clone()] {
            let err = read_paths(&[given]).unwrap_err();
            assert_eq!(err.to_string(), expected);
            assert_eq!(format!("{:#}", anyhow::Error::new(err)), expected);
        }
    }

    /// A manifest or template linked in from outside the folder is not
    /// read through the folder; links inside it are.
    #[cfg(unix)]
    #[test]
    fn links_out_of_the_folder_are_not_read_through_it() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        let (base, m) = (dir.path(), dir.path().join("m"));
        fs::create_dir_all(&m).expect("mkdir");
        fs::write(base.join("secret.yaml"), "a: SECRET").expect("write");
        fs::write(base.join("secret.txt"), "SECRET").expect("write");
        fs::write(m.join("t.txt"), "Hi").expect("write");
        symlink("../secret.yaml", m.join("s.yaml")).expect("symlink");
        symlink("../secret.txt", m.join("out.txt")).expect("symlink");
        symlink("t.txt", m.join("in.txt")).expect("symlink");
        let err = read_paths(std::slice::from_ref(&m))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("s.yaml -> ../secret.yaml, which leads outside the manifests root")
                || err.contains("which leads outside the manifests root"),
            "{err}"
        );
        assert!(
            read_paths(&[m.join("s.yaml")]).is_ok(),
            "a file given directly is the operator's choice"
        );
        fs::remove_file(m.join("s.yaml")).expect("rm");
        let others = read_others(std::slice::from_ref(&m)).expect("read");
        let names: Vec<&str> = others
            .keys()
            .map(|k| k.rsplit('/').next().unwrap_or(k))
            .collect();
        assert_eq!(names, ["in.txt", "t.txt"], "{others:?}");
        assert_eq!(roots(&[m.clone(), m.join("t.txt")]), [display(&m)]);
    }

    #[test]
    fn missing_path_is_an_error_naming_it() {
        let err = read_paths(&[PathBuf::from("/nonexistent/manifests")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/manifests: no such file or directory"
        );
    }
}

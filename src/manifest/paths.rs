//! Paths the manifests name — a prompt's `templateFile` today, and every
//! path a manifest or `modelsync.toml` names later — and the one rule for
//! where they may lead: **inside the manifests root**, after symbolic links.
//!
//! The manifests root of a manifest file is the folder it was found under:
//! the `PATH` argument of `validate`/`plan`/`apply`/`watch` that holds it
//! (the outermost, when several do), the folder of a file given directly,
//! `--path` in a git commit (`watch --git`), and for `apply --plan` the
//! roots the saved plan recorded. A named path is relative to the file that
//! names it; an absolute path, a path whose `..` leaves the root, and a
//! path that goes through a symbolic link leading out of the root are
//! refused; nothing else on the host (its other files, `/proc`, the
//! process's working directory) is ever read.
//!
//! This module is the pure part: [`named`] checks a path as written
//! (lexically, no I/O: `validate` reports it with file, line and column),
//! and [`follow`] resolves symbolic links through a lookup the caller
//! passes — a git commit's or saved plan's [`Snapshot`] here, the host's
//! file system in `source::tree`, the shell's reader every caller uses.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// The most symbolic links one path may go through (as Linux's `MAXSYMLINKS`).
pub const MAX_LINKS: usize = 40;

/// Why a named path is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// The path is empty.
    Empty,
    /// The path is absolute (`/etc/passwd`, `/proc/self/environ`).
    Absolute { root: String },
    /// The path's `..` lead out of the root.
    Outside { root: String },
    /// A symbolic link on the way has an absolute target.
    LinkAbsolute {
        link: String,
        target: String,
        root: String,
    },
    /// A symbolic link on the way leads out of the root.
    LinkOutside {
        link: String,
        target: String,
        root: String,
    },
    /// More than [`MAX_LINKS`] symbolic links (a loop).
    TooManyLinks { link: String },
}

impl fmt::Display for Escape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Escape::Empty => f.write_str("the path is empty"),
            Escape::Absolute { root } => write!(
                f,
                "an absolute path; a manifest may only read files inside its manifests root {}, named relative to the manifest",
                shown(root)
            ),
            Escape::Outside { root } => write!(
                f,
                "leads outside the manifests root {}; a manifest may only read files inside it",
                shown(root)
            ),
            Escape::LinkAbsolute { link, target, root } => write!(
                f,
                "goes through the symbolic link {link} -> {target}, an absolute target; a link must lead inside the manifests root {}, relative to the link",
                shown(root)
            ),
            Escape::LinkOutside { link, target, root } => write!(
                f,
                "goes through the symbolic link {link} -> {target}, which leads outside the manifests root {}; a manifest may only read files inside it",
                shown(root)
            ),
            Escape::TooManyLinks { link } => write!(
                f,
                "goes through more than {MAX_LINKS} symbolic links (a loop at {link})"
            ),
        }
    }
}

/// Where the paths the manifests name are read from. Plain data: the shell
/// (`source::tree::read`) reads [`Tree::Host`]; a [`Snapshot`] reads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tree {
    /// The host's folders (`validate`, `plan`, `apply`, `watch` of a
    /// folder): read through `source::tree`, links followed inside the root.
    Host,
    /// Only these files (a git commit's tree under `--path`, a saved plan's
    /// templates); nothing else exists.
    Snapshot(Snapshot),
}

impl Default for Tree {
    /// An empty snapshot: nothing can be read.
    fn default() -> Tree {
        Tree::Snapshot(Snapshot {
            name: "an empty set of files".to_string(),
            ..Snapshot::default()
        })
    }
}

/// Files and symbolic links by path (a git commit's, a saved plan's), and
/// what they are (for messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// What the snapshot is, as messages name it (`commit 1a2b… under
    /// manifests`, `the saved plan`).
    pub name: String,
    /// Text files: path -> text.
    pub files: BTreeMap<String, String>,
    /// Symbolic links: path -> target, as stored.
    pub links: BTreeMap<String, String>,
}

impl Snapshot {
    /// The text of `path` (as [`named`] returned it) inside `root`, links
    /// followed inside the root.
    pub fn read(&self, root: &str, path: &str) -> Result<String, String> {
        let resolved =
            follow(root, path, &mut |p| self.links.get(p).cloned()).map_err(|e| e.to_string())?;
        self.files
            .get(&resolved)
            .cloned()
            .ok_or_else(|| match resolved == path {
                true => format!("not in {}", self.name),
                false => format!("{resolved} is not in {}", self.name),
            })
    }
}

impl Snapshot {
    /// The files under the folder `dir` (inside `root`, links followed
    /// inside the root), sorted; none when there is no such folder.
    pub fn list(&self, root: &str, dir: &str) -> Result<Vec<String>, String> {
        let resolved =
            follow(root, dir, &mut |p| self.links.get(p).cloned()).map_err(|e| e.to_string())?;
        let prefix = format!("{resolved}/");
        Ok(self
            .files
            .keys()
            .filter(|p| resolved.is_empty() || p.starts_with(&prefix))
            .cloned()
            .collect())
    }
}

/// `named`, written in the manifest file `manifest` whose root is `root`,
/// as a path joined to the manifest's folder and normalized; refused when
/// it is empty, absolute or leaves the root. Lexical: links are
/// [`follow`]ed by the reader.
pub fn named(root: &str, manifest: &str, named: &str) -> Result<String, Escape> {
    let root = normalize(root);
    if named.trim().is_empty() {
        return Err(Escape::Empty);
    }
    if named.starts_with('/') {
        return Err(Escape::Absolute { root });
    }
    let path = normalize(&join(&parent(&normalize(manifest)), named));
    if inside(&root, &path) {
        Ok(path)
    } else {
        Err(Escape::Outside { root })
    }
}

/// The manifests root of the manifest file `file`: the outermost of
/// `roots` that holds it, else the file's own folder.
pub fn root_of(roots: &[String], file: &str) -> String {
    let dir = parent(&normalize(file));
    roots
        .iter()
        .map(|r| normalize(r))
        .filter(|r| inside(r, &dir))
        .min_by_key(String::len)
        .unwrap_or(dir)
}

/// Resolves the symbolic links of `path` (inside `root`, as [`named`]
/// returned it), component by component below the root: `link` answers a
/// link's target, `None` for anything that is not a link. Every target
/// must be relative and lead inside `root`. The result names no link.
pub fn follow(
    root: &str,
    path: &str,
    link: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, Escape> {
    let root = normalize(root);
    let path = normalize(path);
    if !inside(&root, &path) {
        return Err(Escape::Outside { root });
    }
    let mut rest: VecDeque<String> = below(&root, &path);
    let mut at = root.clone();
    let mut hops = 0;
    while let Some(component) = rest.pop_front() {
        let next = join(&at, &component);
        let Some(target) = link(&next) else {
            at = next;
            continue;
        };
        hops += 1;
        if hops > MAX_LINKS {
            return Err(Escape::TooManyLinks { link: next });
        }
        if target.starts_with('/') {
            let root = root.clone();
            return Err(Escape::LinkAbsolute {
                link: next,
                target,
                root,
            });
        }
        let resolved = normalize(&join(&at, &target));
        if !inside(&root, &resolved) {
            let root = root.clone();
            return Err(Escape::LinkOutside {
                link: next,
                target,
                root,
            });
        }
        let mut again = below(&root, &resolved);
        again.extend(rest);
        rest = again;
        at = root.clone();
    }
    Ok(at)
}

/// `path` without `.` and empty components, each `..` taking the component
/// before it away (kept at the start of a relative path, dropped at `/`).
/// The current folder is `""`.
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// True when the normalized `path` is `root` or below it.
fn inside(root: &str, path: &str) -> bool {
    match root {
        "" => !path.starts_with('/') && path != ".." && !path.starts_with("../"),
        "/" => path.starts_with('/'),
        _ => path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/')),
    }
}

/// The components of `path` below `root` (both normalized, `path` inside).
fn below(root: &str, path: &str) -> VecDeque<String> {
    let rest = match root {
        "" => path,
        "/" => &path[1..],
        _ => path[root.len()..].trim_start_matches('/'),
    };
    rest.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn join(a: &str, b: &str) -> String {
    match (a, b) {
        ("", b) => b.to_string(),
        (a, "") => a.to_string(),
        ("/", b) => format!("/{b}"),
        (a, b) => format!("{a}/{b}"),
    }
}

/// The folder of a normalized path (`""` for a bare name).
fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
        None => String::new(),
    }
}

/// A root as messages show it (`.` for the current folder).
fn shown(root: &str) -> &str {
    if root.is_empty() { "." } else { root }
}

#[cfg(test)]
#[path = "paths_tests.rs"]
mod tests;

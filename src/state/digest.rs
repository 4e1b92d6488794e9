//! The digest of a version's bytes: one definition, used by `resolve`, the
//! `modelsync.digest` tag recorded at registration or first move, the
//! `digest: unchanged` gate and copies across registries (`from:`).
//!
//! The **listing** of an artifact tree has one line per regular file,
//! ordered by path (byte order, as `LC_ALL=C sort` orders):
//!
//! ```text
//! <sha256 of the file, 64 lowercase hex> SP <size in bytes, decimal> SP <path> LF
//! ```
//!
//! where `path` is relative to the tree's root, `/`-separated, with no
//! leading `./`. The **digest** is `sha256:` followed by the lowercase hex
//! sha256 of the listing's bytes. A path holding a line break cannot be
//! listed (it would read as two lines) and is refused. `docs/serving.md`
//! gives the shell one-liner that computes the same value with `find`,
//! `sort`, `stat` and `sha256sum`.
//!
//! Pure: the bytes are read (streaming) in `registry/`; this module only
//! defines, renders, parses and compares listings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tags;

/// One file of an artifact tree.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    /// Relative to the tree's root, `/`-separated.
    pub path: String,
    pub size: u64,
    /// The file's sha256, lowercase hex (empty: not hashed, as in a saved
    /// plan written before the digest covered the bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
}

/// An artifact tree's files (sorted by path) and their digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeDigest {
    /// `sha256:<hex>` of [`listing`].
    pub digest: String,
    pub files: Vec<TreeFile>,
}

impl TreeDigest {
    /// The digest of `files` (in any order; sorted here). Refuses a path
    /// that is empty, holds a line break, starts with `/` or `./`, or
    /// appears twice.
    pub fn new(mut files: Vec<TreeFile>) -> Result<TreeDigest, String> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        for (i, f) in files.iter().enumerate() {
            if let Some(problem) = path_problem(&f.path) {
                return Err(problem);
            }
            if i > 0 && files[i - 1].path == f.path {
                return Err(format!("the file {:?} is listed twice", f.path));
            }
        }
        Ok(TreeDigest {
            digest: digest_of_listing(&listing(&files)),
            files,
        })
    }

    /// The canonical listing of the files.
    pub fn listing(&self) -> String {
        listing(&self.files)
    }

    /// The total size of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// How the bytes behind a version compare with the digest modelsync
/// recorded on it (`modelsync.digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// No digest was recorded.
    Unrecorded,
    /// The bytes are the ones recorded.
    Matches,
    /// The bytes changed: what differs, naming the first differing file
    /// when the listing was recorded too.
    Differs(String),
}

/// Compares `now` with the digest (and listing) recorded in a version's
/// `tags`.
pub fn check_pin(version_tags: &BTreeMap<String, String>, now: &TreeDigest) -> Pin {
    let Some(recorded) = version_tags.get(tags::DIGEST) else {
        return Pin::Unrecorded;
    };
    if *recorded == now.digest {
        return Pin::Matches;
    }
    let head = format!(
        "the bytes changed since modelsync recorded their digest ({recorded} then, {} now)",
        now.digest
    );
    // The listing counts only when it is the one the digest was taken of.
    let listed = version_tags
        .get(tags::DIGEST_FILES)
        .filter(|l| digest_of_listing(l) == *recorded)
        .and_then(|l| parse_listing(l).ok());
    Pin::Differs(
        match listed.and_then(|files| first_difference(&files, &now.files)) {
            Some(file) => format!("{head}: {file}"),
            None => format!("{head}; the listing was not recorded, so no file can be named"),
        },
    )
}

/// Why `path` cannot be listed, or `None`.
pub fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        Some("a file has an empty path".to_string())
    } else if path.contains('\n') || path.contains('\r') {
        Some(format!(
            "the file {path:?} has a line break in its name, which a listing cannot hold"
        ))
    } else if path.starts_with('/') || path.starts_with("./") {
        Some(format!("the file {path:?} is not relative to the tree"))
    } else {
        None
    }
}

/// The canonical listing of `files`, which must be sorted by path.
pub fn listing(files: &[TreeFile]) -> String {
    files
        .iter()
        .map(|f| format!("{} {} {}\n", f.sha256, f.size, f.path))
        .collect()
}

/// `sha256:<hex>` of a listing's bytes.
pub fn digest_of_listing(listing: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(listing.as_bytes()))
}

/// Reads a listing back (the `modelsync.digest.files` tag): its files, or
/// why it is not a listing.
pub fn parse_listing(text: &str) -> Result<Vec<TreeFile>, String> {
    let mut files = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bad = || {
            format!(
                "line {} of the listing is not `<sha256> <size> <path>`",
                n + 1
            )
        };
        let (sha256, rest) = line.split_once(' ').ok_or_else(bad)?;
        let (size, path) = rest.split_once(' ').ok_or_else(bad)?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        files.push(TreeFile {
            path: path.to_string(),
            size: size.parse().map_err(|_| bad())?,
            sha256: sha256.to_string(),
        });
    }
    Ok(files)
}

/// The first file (in path order) that differs between what was recorded
/// and what is there now, described: removed, added, or changed (size and
/// sha256 then and now). `None` when the two listings agree.
pub fn first_difference(recorded: &[TreeFile], now: &[TreeFile]) -> Option<String> {
    let mut paths: Vec<&str> = recorded
        .iter()
        .chain(now)
        .map(|f| f.path.as_str())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    let find = |files: &'_ [TreeFile], p: &str| files.iter().find(|f| f.path == p).cloned();
    paths
        .into_iter()
        .find_map(|p| match (find(recorded, p), find(now, p)) {
            (Some(_), None) => Some(format!("file {p} was removed")),
            (None, Some(f)) => Some(format!("file {p} was added ({} bytes)", f.size)),
            (Some(a), Some(b)) if a != b => Some(format!(
                "file {p} changed: {} bytes, sha256 {} when recorded; {} bytes, sha256 {} now",
                a.size,
                short(&a.sha256),
                b.size,
                short(&b.sha256)
            )),
            _ => None,
        })
}

/// The first 12 hex digits of a sha256, for messages.
pub fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// The digest copies made before the digest covered the bytes recorded in
/// their lineage tags: sha256 over `path NUL size LF` per file, sorted by
/// path. Read only to recognise those copies (`CopySource::is_lineage`).
pub fn legacy_listing_digest(files: &[TreeFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.size.to_string().as_bytes());
        h.update(b"\n");
    }
    format!("sha256:{:x}", h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, body: &[u8]) -> TreeFile {
        TreeFile {
            path: path.to_string(),
            size: body.len() as u64,
            sha256: format!("{:x}", Sha256::digest(body)),
        }
    }

    #[test]
    fn the_listing_is_sorted_by_path_bytes_and_the_digest_is_its_sha256() {
        let t = TreeDigest::new(vec![
            file("model/model.pkl", b"pickle"),
            file("MLmodel", b"flavors: {}\n"),
            file("model/a b.txt", b""),
        ])
        .expect("listable");
        let paths: Vec<&str> = t.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["MLmodel", "model/a b.txt", "model/model.pkl"]);
        let expected = format!(
            "{} 12 MLmodel\n{} 0 model/a b.txt\n{} 6 model/model.pkl\n",
            file("", b"flavors: {}\n").sha256,
            file("", b"").sha256,
            file("", b"pickle").sha256,
        );
        assert_eq!(t.listing(), expected);
        assert_eq!(
            t.digest,
            format!("sha256:{:x}", Sha256::digest(expected.as_bytes()))
        );
        // The order files arrive in does not matter.
        let again = TreeDigest::new(t.files.iter().rev().cloned().collect()).expect("listable");
        assert_eq!(again, t);
        assert_eq!(t.bytes(), 18);
    }

    #[test]
    fn paths_a_listing_cannot_hold_are_refused() {
        for bad in ["", "a\nb", "a\rb", "/abs", "./rel"] {
            let err = TreeDigest::new(vec![file(bad, b"x")]).unwrap_err();
            assert!(!err.is_empty(), "{bad:?}");
        }
        let twice = TreeDigest::new(vec![file("a", b"1"), file("a", b"2")]).unwrap_err();
        assert!(twice.contains("twice"), "{twice}");
    }

    #[test]
    fn a_listing_parses_back_to_its_files() {
        let t = TreeDigest::new(vec![file("x y/z", b"1"), file("a", b"22")]).expect("listable");
        assert_eq!(parse_listing(&t.listing()), Ok(t.files.clone()));
        assert!(parse_listing("nothex 1 a\n").is_err());
        assert!(parse_listing(&format!("{} x a\n", "0".repeat(64))).is_err());
        assert_eq!(parse_listing(""), Ok(Vec::new()));
    }

    #[test]
    fn the_first_difference_names_the_file() {
        let before = vec![file("a", b"1"), file("b", b"2"), file("c", b"3")];
        assert_eq!(first_difference(&before, &before), None);
        let changed = vec![file("a", b"1"), file("b", b"22"), file("c", b"4")];
        let d = first_difference(&before, &changed).expect("differs");
        assert!(d.starts_with("file b changed: 1 bytes"), "{d}");
        assert!(d.contains("2 bytes"), "{d}");
        let removed = vec![file("a", b"1"), file("c", b"3")];
        assert_eq!(
            first_difference(&before, &removed).as_deref(),
            Some("file b was removed")
        );
        let added = vec![file("0", b"new"), file("a", b"1")];
        assert_eq!(
            first_difference(&before[..1], &added).as_deref(),
            Some("file 0 was added (3 bytes)")
        );
    }

    #[test]
    fn a_pin_matches_is_missing_or_names_the_changed_file() {
        let then = TreeDigest::new(vec![file("MLmodel", b"m"), file("model.pkl", b"v1")])
            .expect("listable");
        let now = TreeDigest::new(vec![file("MLmodel", b"m"), file("model.pkl", b"v2!")])
            .expect("listable");
        let mut t = BTreeMap::new();
        assert_eq!(check_pin(&t, &now), Pin::Unrecorded);
        t.insert(tags::DIGEST.to_string(), then.digest.clone());
        let Pin::Differs(why) = check_pin(&t, &now) else {
            panic!("differs");
        };
        assert!(why.contains("no file can be named"), "{why}");
        t.insert(tags::DIGEST_FILES.to_string(), then.listing());
        assert_eq!(check_pin(&t, &then), Pin::Matches);
        let Pin::Differs(why) = check_pin(&t, &now) else {
            panic!("differs");
        };
        assert!(
            why.contains(&then.digest) && why.contains(&now.digest),
            "{why}"
        );
        assert!(
            why.ends_with(&format!(
                "file model.pkl changed: 2 bytes, sha256 {} when recorded; 3 bytes, sha256 {} now",
                short(&then.files[1].sha256),
                short(&now.files[1].sha256)
            )),
            "{why}"
        );
        // A listing that is not the one the digest was taken of names nothing.
        t.insert(tags::DIGEST_FILES.to_string(), now.listing());
        let Pin::Differs(why) = check_pin(&t, &now) else {
            panic!("differs");
        };
        assert!(why.contains("no file can be named"), "{why}");
    }

    #[test]
    fn the_legacy_digest_covers_paths_and_sizes_only() {
        let a = vec![file("a", b"1")];
        let b = vec![file("a", b"2")];
        assert_eq!(legacy_listing_digest(&a), legacy_listing_digest(&b));
        let mut h = Sha256::new();
        h.update(b"a\x001\n");
        assert_eq!(
            legacy_listing_digest(&a),
            format!("sha256:{:x}", h.finalize())
        );
    }
}

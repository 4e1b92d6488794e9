//! Git source tests against local repositories over `file://`.

use std::path::Path;

use std::collections::BTreeMap;

use git2::{Repository, Signature};

use super::*;

struct Upstream {
    _dir: tempfile::TempDir,
    repo: Repository,
    url: String,
}

impl Upstream {
    fn new() -> Upstream {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init(dir.path()).expect("init");
        let url = format!("file://{}", dir.path().display());
        Upstream {
            _dir: dir,
            repo,
            url,
        }
    }

    /// Commits `files` (path, contents) as the whole tree of `branch`, on top
    /// of `parent` (or as a root commit).
    fn commit(&self, branch: &str, files: &[(&str, &str)], parent: Option<Oid>) -> Oid {
        let files: Vec<(&str, &str, u32)> = files.iter().map(|(p, c)| (*p, *c, 0o100644)).collect();
        self.commit_modes(branch, &files, parent)
    }

    /// [`Upstream::commit`] with each entry's mode (`0o120000`: a symbolic
    /// link whose target is the contents).
    fn commit_modes(&self, branch: &str, files: &[(&str, &str, u32)], parent: Option<Oid>) -> Oid {
        let mut index = git2::Index::new().expect("index");
        for (path, contents, mode) in files {
            let blob = self.repo.blob(contents.as_bytes()).expect("blob");
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: *mode,
                uid: 0,
                gid: 0,
                file_size: contents.len() as u32,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).expect("add");
        }
        let tree_id = index.write_tree_to(&self.repo).expect("tree");
        let tree = self.repo.find_tree(tree_id).expect("find tree");
        let sig = Signature::now("t", "t@example.com").expect("sig");
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| self.repo.find_commit(p).expect("parent"))
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let id = self
            .repo
            .commit(None, &sig, &sig, "msg", &tree, &refs)
            .expect("commit");
        self.repo
            .reference(&format!("refs/heads/{branch}"), id, true, "test")
            .expect("ref");
        id
    }
}

fn source(up: &Upstream, cache: &Path, path: &str) -> GitSource {
    GitSource::new(GitOptions {
        url: up.url.clone(),
        branch: "main".into(),
        path: path.into(),
        cache_dir: cache.join("c"),
    })
}

fn names(f: &Fetched) -> Vec<&str> {
    f.files.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn reads_manifests_under_path_from_the_fetched_commit() {
    let up = Upstream::new();
    let c1 = up.commit(
        "main",
        &[
            ("manifests/a.yaml", "a: 1"),
            ("manifests/sub/b.yml", "b: 1"),
            ("manifests/.hidden/x.yaml", "x"),
            ("manifests/readme.md", "no"),
            ("other/c.yaml", "c"),
        ],
        None,
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let mut src = source(&up, cache.path(), "manifests/");
    let got = src.fetch().expect("fetch");
    assert_eq!(got.revision, Some(c1.to_string()));
    assert_eq!(names(&got), ["manifests/a.yaml", "manifests/sub/b.yml"]);
    assert_eq!(got.files[0].contents, b"a: 1");
    assert!(
        cache.path().join("c/HEAD").exists(),
        "bare repository in the cache"
    );
    assert!(
        !cache.path().join("c/manifests").exists(),
        "no working copy"
    );

    assert_eq!(got.roots, ["manifests"]);
    let Tree::Snapshot(snapshot) = &got.tree else {
        panic!("a commit is a snapshot: {:?}", got.tree);
    };
    assert_eq!(snapshot.name, format!("commit {c1} under --path manifests"));
    assert_eq!(
        snapshot.files,
        BTreeMap::from([("manifests/readme.md".to_string(), "no".to_string())]),
        "only the files under --path, not hidden, not other/"
    );

    let c2 = up.commit("main", &[("manifests/a.yaml", "a: 2")], Some(c1));
    let got = src.fetch().expect("fetch");
    assert_eq!(got.revision, Some(c2.to_string()));
    assert_eq!(names(&got), ["manifests/a.yaml"]);
    assert_eq!(got.files[0].contents, b"a: 2");
}

/// Symbolic links in the commit are kept as links (never followed on the
/// host): a template through a link inside `--path` reads; one leading out,
/// or a file only on the host, does not.
#[test]
fn links_in_the_commit_resolve_inside_the_path_only() {
    let up = Upstream::new();
    up.commit_modes(
        "main",
        &[
            ("m/a.yaml", "a: 1", 0o100644),
            ("m/tpl/t.txt", "Hi", 0o100644),
            ("m/in.txt", "tpl/t.txt", 0o120000),
            ("m/out.txt", "../other/s.txt", 0o120000),
            ("m/abs.txt", "/etc/passwd", 0o120000),
            ("other/s.txt", "SECRET", 0o100644),
        ],
        None,
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let got = source(&up, cache.path(), "m").fetch().expect("fetch");
    let read = |p: &str| crate::source::tree::read(&got.tree, "m", p);
    assert_eq!(read("m/tpl/t.txt"), Ok("Hi".into()));
    assert_eq!(read("m/in.txt"), Ok("Hi".into()));
    assert!(
        read("m/out.txt")
            .unwrap_err()
            .contains("leads outside the manifests root m")
    );
    assert!(
        read("m/abs.txt")
            .unwrap_err()
            .contains("an absolute target")
    );
    assert!(read("m/a.yaml").unwrap_err().contains("not in commit"));
    assert!(
        read("m/../../../etc/passwd").is_err(),
        "never the host's file system"
    );
}

#[test]
fn root_path_and_a_reopened_cache() {
    let up = Upstream::new();
    let c1 = up.commit("main", &[("a.yaml", "a"), ("d/b.yaml", "b")], None);
    let cache = tempfile::tempdir().expect("tempdir");
    let got = source(&up, cache.path(), ".").fetch().expect("fetch");
    assert_eq!(names(&got), ["a.yaml", "d/b.yaml"]);
    // A second daemon on the same cache reuses it.
    let got = source(&up, cache.path(), "").fetch().expect("fetch again");
    assert_eq!(got.revision, Some(c1.to_string()));
}

#[test]
fn a_force_push_is_just_a_new_head() {
    let up = Upstream::new();
    let c1 = up.commit("main", &[("a.yaml", "a: 1")], None);
    let _c2 = up.commit("main", &[("a.yaml", "a: 2")], Some(c1));
    let cache = tempfile::tempdir().expect("tempdir");
    let mut src = source(&up, cache.path(), ".");
    src.fetch().expect("fetch");
    let rewritten = up.commit("main", &[("a.yaml", "a: 3")], None);
    let got = src.fetch().expect("fetch after force-push");
    assert_eq!(got.revision, Some(rewritten.to_string()));
    assert_eq!(got.files[0].contents, b"a: 3");
}

#[test]
fn a_deleted_branch_is_an_error_and_recovers_when_it_returns() {
    let up = Upstream::new();
    let c1 = up.commit("main", &[("a.yaml", "a")], None);
    up.commit("other", &[("a.yaml", "a")], None);
    let cache = tempfile::tempdir().expect("tempdir");
    let mut src = source(&up, cache.path(), ".");
    src.fetch().expect("fetch");
    up.repo
        .find_reference("refs/heads/main")
        .expect("ref")
        .delete()
        .expect("delete");
    let err = src.fetch().unwrap_err();
    assert!(matches!(err, GitError::BranchMissing { .. }), "{err}");
    assert!(
        err.to_string().contains("branch \"main\" does not exist"),
        "{err}"
    );
    up.repo
        .reference("refs/heads/main", c1, true, "restore")
        .expect("restore");
    assert_eq!(src.fetch().expect("fetch").revision, Some(c1.to_string()));
}

#[test]
fn a_missing_branch_path_or_repository_is_an_error() {
    let up = Upstream::new();
    up.commit("main", &[("a.yaml", "a")], None);
    let cache = tempfile::tempdir().expect("tempdir");
    let err = source(&up, cache.path(), "manifests").fetch().unwrap_err();
    assert!(matches!(err, GitError::PathMissing { .. }), "{err}");
    let mut other = GitSource::new(GitOptions {
        url: up.url.clone(),
        branch: "nope".into(),
        path: ".".into(),
        cache_dir: cache.path().join("d"),
    });
    assert!(matches!(
        other.fetch().unwrap_err(),
        GitError::BranchMissing { .. }
    ));
    let mut gone = GitSource::new(GitOptions {
        url: "file:///nonexistent/repo".into(),
        branch: "main".into(),
        path: ".".into(),
        cache_dir: cache.path().join("e"),
    });
    assert!(matches!(gone.fetch().unwrap_err(), GitError::Git { .. }));
}

#[test]
fn cache_names_and_redaction() {
    let a = cache_name("https://github.com/org/models.git");
    assert!(a.starts_with("models-"), "{a}");
    assert_eq!(a.len(), "models-".len() + 16);
    assert_ne!(a, cache_name("https://github.com/other/models.git"));
    assert!(cache_name("file:///tmp/x y").starts_with("x_y-"));
    assert_eq!(
        without_userinfo("https://user:tok@github.com/org/r.git"),
        "https://github.com/org/r.git"
    );
    assert_eq!(without_userinfo("ssh://git@host/r.git"), "ssh://host/r.git");
    assert_eq!(without_userinfo("file:///tmp/r"), "file:///tmp/r");
}

/// What a new commit changed under `--path` since the one applied: files
/// with their contents then, `modelsync.toml` apart; nothing outside the
/// path or hidden.
#[test]
fn changes_between_two_fetched_commits() {
    let up = Upstream::new();
    let c1 = up.commit(
        "main",
        &[
            ("m/a.yaml", "a: 1"),
            ("m/b.yaml", "b: 1"),
            ("m/gone.yaml", "g: 1"),
            ("other/c.yaml", "c: 1"),
        ],
        None,
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let mut src = source(&up, cache.path(), "m");
    src.fetch().expect("fetch");
    let c2 = up.commit(
        "main",
        &[
            ("m/a.yaml", "a: 2"),
            ("m/b.yaml", "b: 1"),
            ("m/new.yaml", "n: 1"),
            ("m/.hidden/x.yaml", "x"),
            ("other/c.yaml", "c: 2"),
        ],
        Some(c1),
    );
    src.fetch().expect("fetch");
    let got = src
        .changes_between(&c1.to_string(), &c2.to_string())
        .expect("changes");
    let files: Vec<(&str, Option<&[u8]>)> = got
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.before.as_deref()))
        .collect();
    assert_eq!(
        files,
        [
            ("m/a.yaml", Some(&b"a: 1"[..])),
            ("m/gone.yaml", Some(&b"g: 1"[..])),
            ("m/new.yaml", None),
        ]
    );
    assert!(got.config.is_empty());
    assert_eq!(got.since, c1.to_string());

    let c3 = up.commit(
        "main",
        &[("m/a.yaml", "a: 2"), ("m/modelsync.toml", "")],
        Some(c2),
    );
    src.fetch().expect("fetch");
    let got = src
        .changes_between(&c2.to_string(), &c3.to_string())
        .expect("changes");
    assert_eq!(got.config, ["m/modelsync.toml"]);
    let unknown = "0".repeat(40);
    assert!(src.changes_between(&unknown, &c3.to_string()).is_err());
}

//! A git "remote" (a bare repository) and a clone to push from, for the
//! daemon's git source tests.

use std::path::Path;
use std::process::Command;

/// A bare repository reachable over `file://`, and a working clone.
pub struct GitRepo {
    pub url: String,
    pub work: std::path::PathBuf,
}

impl GitRepo {
    pub fn new(root: &Path) -> GitRepo {
        GitRepo::named(root, "remote.git")
    }

    /// A bare repository at `root/<rel>` (e.g. `acme/models.git`, so that
    /// its URL names an owner and a repository).
    pub fn named(root: &Path, rel: &str) -> GitRepo {
        let bare = root.join(rel);
        std::fs::create_dir_all(bare.parent().expect("parent")).expect("mkdir");
        let work = root.join("clone");
        git(
            root,
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                bare.to_str().expect("utf-8"),
            ],
        );
        git(
            root,
            &["init", "-q", "-b", "main", work.to_str().expect("utf-8")],
        );
        git(
            &work,
            &["remote", "add", "origin", bare.to_str().expect("utf-8")],
        );
        GitRepo {
            url: format!("file://{}", bare.display()),
            work,
        }
    }

    /// Writes one file, commits and pushes; returns the commit id.
    pub fn push(&self, rel: &str, contents: &str) -> String {
        self.push_signed(rel, contents, None)
    }

    /// As [`GitRepo::push`], with the commit SSH-signed by the private key
    /// file `key` (`git -c gpg.format=ssh commit -S`) when given.
    pub fn push_signed(&self, rel: &str, contents: &str, key: Option<&Path>) -> String {
        let id = self.commit_signed(rel, contents, key);
        git(&self.work, &["push", "-q", "origin", "main"]);
        id
    }

    /// Points the remote's `main` at `commit` (`git push --force`): a
    /// force-push back to an older commit, or to another branch's.
    pub fn force_push(&self, commit: &str) {
        let spec = format!("{commit}:refs/heads/main");
        git(&self.work, &["push", "-q", "--force", "origin", &spec]);
    }

    /// Checks out a new local branch `name` at `commit` in the clone (later
    /// commits go on it; nothing is pushed).
    pub fn branch(&self, name: &str, commit: &str) {
        git(&self.work, &["checkout", "-q", "-B", name, commit]);
    }

    /// Writes one file and commits it (signed with `key` when given) on the
    /// clone's current branch, without pushing; returns the commit id.
    pub fn commit_signed(&self, rel: &str, contents: &str, key: Option<&Path>) -> String {
        let p = self.work.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write");
        git(&self.work, &["add", "-A"]);
        match key {
            Some(key) => {
                let signing = format!("user.signingkey={}", key.display());
                git(
                    &self.work,
                    &[
                        "-c",
                        "gpg.format=ssh",
                        "-c",
                        &signing,
                        "commit",
                        "-q",
                        "-S",
                        "-m",
                        "change",
                    ],
                );
            }
            None => {
                git(&self.work, &["commit", "-q", "-m", "change"]);
            }
        }
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_string()
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

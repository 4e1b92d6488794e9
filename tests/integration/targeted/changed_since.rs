//! `--changed-since REF` against the real MLflow 3.17.2 server, in a git
//! repository the test makes: commits that change one manifest document,
//! one prompt's `templateFile`, and `modelsync.toml`, and changes not
//! committed yet. Each plan's targets are read from its JSON; requests
//! naming a model outside them are counted through the proxy.

use std::collections::BTreeSet;

use super::{model, naming};
use crate::support::cli::{Run, Workdir};
use crate::support::git::git;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

/// A prompt reading its one version from `tpl/p.txt`.
fn prompt(name: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: Prompt\nmetadata:\n  name: {name}\nspec:\n  versions:\n    v1:\n      templateFile: tpl/p.txt\n  aliases:\n    production: v1\n"
    )
}

struct Repo {
    w: Workdir,
    /// Models `a`, `b` (one file), `c` (another) and the prompt `p`.
    a: String,
    b: String,
    c: String,
    p: String,
}

impl Repo {
    fn new() -> Repo {
        let w = Workdir::new();
        let x = unique("since");
        let [a, b, c, p] = ["a", "b", "c", "p"].map(|s| format!("{x}-{s}"));
        git(w.path(), &["init", "-q", "-b", "main"]);
        // The embedded registry file is not part of the repository.
        w.write(".gitignore", "registry.json\n*.json\n");
        let repo = Repo { w, a, b, c, p };
        repo.write_ab(&[("champion", "a")]);
        repo.w
            .write("m/c.yaml", &model(&repo.c, &[("champion", "a")]));
        repo.w.write("m/p.yaml", &prompt(&repo.p));
        repo.w.write("m/tpl/p.txt", "Summarize {{text}}\n");
        repo.w.write("m/modelsync.toml", "protect = []\n");
        repo
    }

    fn write_ab(&self, b_aliases: &[(&str, &str)]) {
        self.w.write(
            "m/ab.yaml",
            &format!(
                "{}---\n{}",
                model(&self.a, &[("champion", "a")]),
                model(&self.b, b_aliases)
            ),
        );
    }

    fn commit(&self, tag: &str) {
        git(self.w.path(), &["add", "-A"]);
        git(self.w.path(), &["commit", "-q", "-m", tag]);
        git(self.w.path(), &["tag", tag]);
    }

    fn run(&self, registry: &str, args: &[&str]) -> Run {
        let mut all = vec!["--registry", registry];
        all.extend_from_slice(args);
        self.w.run(&all)
    }

    /// The targets of `plan --changed-since rev` (its JSON plan), and the
    /// requests that named a model outside them.
    async fn targets(&self, rev: &str) -> (BTreeSet<String>, Vec<String>) {
        let srv = server();
        let proxy = Proxy::start(&srv.url).await;
        let r = self.run(
            &proxy.url,
            &["plan", "m", "--changed-since", rev, "--format", "json"],
        );
        assert_eq!(r.code, 0, "--changed-since {rev}: {r:?}");
        let plan: serde_json::Value = serde_json::from_str(&r.stdout).expect("a JSON plan");
        let targets: BTreeSet<String> = plan["targets"]["models"]
            .as_array()
            .unwrap_or_else(|| panic!("a targeted plan: {r:?}"))
            .iter()
            .map(|m| m.as_str().expect("a name").to_string())
            .collect();
        let others: Vec<&str> = [&self.a, &self.b, &self.c, &self.p]
            .into_iter()
            .filter(|n| !targets.contains(*n))
            .map(String::as_str)
            .collect();
        (targets, naming(&proxy, &others))
    }

    fn set(&self, names: &[&String]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_since_picks_exactly_the_changed_models() {
    let srv = server();
    let repo = Repo::new();
    repo.commit("base");
    let r = repo.run(&srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");

    // One document of a two-document file.
    repo.write_ab(&[("champion", "a"), ("best", "b")]);
    repo.commit("one-document");
    let (targets, others) = repo.targets("base").await;
    assert_eq!(targets, repo.set(&[&repo.b]));
    assert_eq!(others, Vec::<String>::new());

    // The prompt's template file.
    repo.w.write("m/tpl/p.txt", "Summarize {{text}} briefly\n");
    repo.commit("template");
    let (targets, others) = repo.targets("one-document").await;
    assert_eq!(targets, repo.set(&[&repo.p]));
    assert_eq!(others, Vec::<String>::new());
    let (targets, _) = repo.targets("base").await;
    assert_eq!(targets, repo.set(&[&repo.b, &repo.p]));

    // Not committed: a comment is no change, an edit of c is.
    let c = model(&repo.c, &[("champion", "a")]);
    repo.w
        .write("m/c.yaml", &format!("# owned by the c team\n{c}"));
    let (targets, _) = repo.targets("template").await;
    assert_eq!(targets, BTreeSet::new(), "a comment changes nothing");
    let r = repo.run(&srv.url, &["plan", "m", "--changed-since", "template"]);
    assert!(
        r.stdout
            .starts_with("Targeted plan: only nothing (no declared model was selected);"),
        "{r:?}"
    );
    repo.w
        .write("m/c.yaml", &model(&repo.c, &[("champion", "b")]));
    let (targets, _) = repo.targets("template").await;
    assert_eq!(targets, repo.set(&[&repo.c]));
    repo.commit("c");

    // --model narrows --changed-since; a saved plan made with
    // --changed-since is applied with it.
    let (targets, _) = repo.targets("one-document").await;
    assert_eq!(targets, repo.set(&[&repo.c, &repo.p]));
    let r = repo.run(
        &srv.url,
        &[
            "plan",
            "m",
            "--changed-since",
            "one-document",
            "--model",
            &repo.c,
            "--out",
            "c.json",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = repo.run(
        &srv.url,
        &[
            "apply",
            "--plan",
            "c.json",
            "--changed-since",
            "one-document",
        ],
    );
    assert_eq!(r.code, 1, "selects c and p, the plan covers c: {r:?}");
    let r = repo.run(
        &srv.url,
        &[
            "apply",
            "--plan",
            "c.json",
            "--changed-since",
            "one-document",
            "--model",
            &repo.c,
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");

    // modelsync.toml: every model.
    repo.w
        .write("m/modelsync.toml", "protect = [\"Archived\"]\n");
    repo.commit("config");
    let (targets, _) = repo.targets("c").await;
    assert_eq!(targets, repo.set(&[&repo.a, &repo.b, &repo.c, &repo.p]));

    // A deleted document: a model no longer declared is left alone.
    repo.w
        .write("m/ab.yaml", &model(&repo.a, &[("champion", "a")]));
    repo.commit("deleted");
    let (targets, _) = repo.targets("config").await;
    assert_eq!(targets, BTreeSet::new());
    let r = repo.run(&srv.url, &["plan", "m", "--changed-since", "config"]);
    assert!(
        r.stderr.contains("its manifest document was deleted"),
        "{r:?}"
    );

    // A revision git does not know: exit 1, nothing read.
    let r = repo.run(&srv.url, &["plan", "m", "--changed-since", "no-such-rev"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--changed-since no-such-rev: no such revision"),
        "{r:?}"
    );
}

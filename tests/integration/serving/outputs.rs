//! Outputs (issue 20, point 3) against the real MLflow 3 server: the
//! examples' KServe InferenceService and Seldon Model in a `file://` bare
//! serving repository this test creates; commits signed with a key
//! `ssh-keygen` makes here and checked with `git verify-commit`. A move
//! writes one signed commit changing exactly the marked values (every
//! other byte stays), a pass with nothing to change writes nothing, a
//! move back writes the previous values back (a symbolic link out of the
//! repository to a host file is never followed) — through `plan`, `apply`,
//! `plan --out` + `apply --plan` and `watch --once`; a push that races
//! another commit is retried on the new head; a push that fails exits 1
//! and the registry move stays. `pull_request.rs`: pull-request mode.

mod pull_request;
mod pushes;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::copy::{model, run, train};
use crate::support::cli::Workdir;
use crate::support::git::{GitRepo, git};
use crate::support::mlflow::{MlflowServer, server, unique};

/// The examples' serving files, as (path in the serving repository, text).
pub const FILES: [&str; 2] = ["kserve/inferenceservice.yaml", "seldon/model.yaml"];

const ZERO: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// An example serving file with the model renamed to `name`.
pub fn example(rel: &str, name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/serving/serving-repo")
        .join(rel);
    std::fs::read_to_string(&path)
        .expect("the example exists")
        .replace("fraud-detector", name)
}

/// What a version's values are, as `modelsync resolve` prints them.
#[derive(Debug, Clone)]
pub struct Values {
    pub version: u64,
    pub uri: String,
    pub digest: String,
    pub run: String,
}

/// The example file `rel` with its placeholders replaced by `v`: what
/// the marked lines must hold, every other byte as in the example.
pub fn expected(rel: &str, name: &str, v: &Values) -> String {
    let text = example(rel, name);
    let placeholder = format!("s3://models/{name}/unset");
    match rel {
        "kserve/inferenceservice.yaml" => text
            .replace(
                "modelsync.io/version: \"0\"",
                &format!("modelsync.io/version: \"{}\"", v.version),
            )
            .replace(&format!("\"{ZERO}\""), &format!("\"{}\"", v.digest))
            .replace(
                "modelsync.io/run: \"unset\"",
                &format!("modelsync.io/run: \"{}\"", v.run),
            )
            .replace(&placeholder, &v.uri),
        _ => text
            .replace(
                "modelsync.io/version: '0'",
                &format!("modelsync.io/version: '{}'", v.version),
            )
            .replace(&format!("'{ZERO}'"), &format!("'{}'", v.digest))
            .replace(&format!("\"{placeholder}\""), &format!("\"{}\"", v.uri)),
    }
}

/// A workdir with a bare serving repository (`srv/acme/serving.git`)
/// holding the examples, a signing key, and `m/modelsync.toml` naming the
/// repository (`mode`).
pub struct Setup {
    pub wd: Workdir,
    pub repo: GitRepo,
    pub name: String,
    pub key: PathBuf,
    pub signers: PathBuf,
}

impl Setup {
    pub fn new(name: &str, mode: &str) -> Setup {
        let wd = Workdir::new();
        let repo = GitRepo::named(&wd.path().join("srv"), "acme/serving.git");
        for rel in FILES {
            repo.commit_signed(rel, &example(rel, name), None);
        }
        // A link out of the repository to a host file with a marker that
        // cannot be used: never followed (files come from the commit).
        let outside = wd.write(
            "outside.yaml",
            "x: 1 # {\"$modelsync\": \"unknown-model@champion:uri\"}\n",
        );
        std::os::unix::fs::symlink(&outside, repo.work.join("kserve/outside.yaml"))
            .expect("symlink");
        git(&repo.work, &["add", "-A"]);
        git(&repo.work, &["commit", "-q", "-m", "a link out"]);
        git(&repo.work, &["push", "-q", "origin", "main"]);
        let key = keygen(wd.path());
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let signers = wd.write(
            "allowed_signers",
            &format!("modelsync@acme.example {public}"),
        );
        wd.write(
            "m/modelsync.toml",
            &format!(
                "[outputs]\nrepo = \"{}\"\nbranch = \"main\"\npath = \".\"\nmode = \"{mode}\"\nauthor = \"modelsync <modelsync@acme.example>\"\n",
                repo.url
            ),
        );
        Setup {
            wd,
            repo,
            name: name.to_string(),
            key,
            signers,
        }
    }

    /// The manifest: `champion` on version `champion`, `Staging` on `staging`.
    pub fn manifest(&self, champion: u64, staging: u64) {
        let name = &self.name;
        let versions = if champion == staging {
            format!("a: {{version: {champion}}}")
        } else {
            format!("a: {{version: {champion}}}\n    b: {{version: {staging}}}")
        };
        let staging_handle = if champion == staging { "a" } else { "b" };
        self.wd.write(
            "m/model.yaml",
            &format!(
                "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
                 versions:\n    {versions}\n  \
                 stages:\n    Staging: {staging_handle}\n  aliases:\n    champion: a\n"
            ),
        );
    }

    /// The environment of every command: the signing key, and the cache
    /// (the outputs' clone) inside the workdir.
    pub fn env(&self, srv: &MlflowServer) -> Vec<(String, String)> {
        let mut env = srv.env.clone();
        env.push((
            "MODELSYNC_OUTPUTS_SIGNING_KEY".into(),
            self.key.display().to_string(),
        ));
        env.push((
            "XDG_CACHE_HOME".into(),
            self.wd.path().join("cache").display().to_string(),
        ));
        env
    }

    pub fn bare(&self) -> PathBuf {
        PathBuf::from(self.repo.url.trim_start_matches("file://"))
    }

    /// The commits of `branch`, newest first.
    pub fn commits(&self, branch: &str) -> Vec<String> {
        git(&self.bare(), &["rev-list", branch])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A file of `branch`'s head.
    pub fn file(&self, branch: &str, rel: &str) -> String {
        git(&self.bare(), &["show", &format!("{branch}:{rel}")])
    }

    /// `git verify-commit` of `commit` with the allowed signers file.
    pub fn verify(&self, commit: &str) -> String {
        let signers = format!("gpg.ssh.allowedSignersFile={}", self.signers.display());
        let out = Command::new("git")
            .current_dir(self.bare())
            .args(["-c", &signers, "verify-commit", "--raw", commit])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git verify-commit");
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "git verify-commit {commit}: {said}");
        said
    }
}

impl Setup {
    /// The check `watch --verify-signatures` makes (in process, against
    /// the same allowed signers file) accepts `commit`.
    pub fn verified_in_process(&self, commit: &str) {
        use modelsync::source::signature;
        let repo = git2::Repository::open_bare(self.bare()).expect("open the serving repository");
        let oid = git2::Oid::from_str(commit).expect("a commit id");
        let (sig, data) = repo.extract_signature(&oid, None).expect("a signed commit");
        let signers = signature::load(&self.signers).expect("allowed signers");
        let check = signature::check(&signers, Some(&sig), &data);
        assert!(
            matches!(check, signature::Check::Verified { .. }),
            "{check}"
        );
    }
}

/// An ed25519 key made by ssh-keygen; the private key's path.
fn keygen(dir: &Path) -> PathBuf {
    let key = dir.join("outputs-key");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "modelsync", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(out.status.success(), "{out:?}");
    key
}

/// Version `v` of `name` resolved by `modelsync resolve`.
pub fn resolved(srv: &MlflowServer, name: &str, v: u64) -> Values {
    let wd = Workdir::new();
    let vs = v.to_string();
    let r = run(
        &wd,
        &srv.url,
        &srv.env,
        &["resolve", name, "--version", &vs, "--format", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let doc: Value = serde_json::from_str(&r.stdout).expect("JSON");
    let s = |k: &str| doc[k].as_str().expect(k).to_string();
    Values {
        version: v,
        uri: s("uri"),
        digest: s("digest"),
        run: s("run"),
    }
}

/// Both serving files on `main` hold `v`'s values and nothing else moved;
/// the head is signed by the test's key.
fn holds(s: &Setup, v: &Values) {
    for rel in FILES {
        assert_eq!(
            s.file("main", rel),
            expected(rel, &s.name, v),
            "{rel} must differ from the example only in its marked values"
        );
    }
    let head = &s.commits("main")[0];
    let said = s.verify(head);
    assert!(said.contains("GOODSIG") || said.contains("Good"), "{said}");
    s.verified_in_process(head);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_writes_one_signed_commit_of_the_marked_values_and_a_move_back_the_previous_ones() {
    let srv = server();
    let name = unique("outputs");
    let (v1, v2) = (train(srv, &name, 0.8, 1.0), train(srv, &name, 0.9, 2.0));
    let s = Setup::new(&name, "commit");
    let env = s.env(srv);
    s.manifest(v1, v2);
    let start = s.commits("main");

    // Planning shows every marked value that will change; nothing is written.
    let plan = run(&s.wd, &srv.url, &env, &["plan", "m"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    let first = resolved(srv, &name, v1);
    let uri_change = format!(
        "kserve/inferenceservice.yaml:24 {name}@champion:uri: s3://models/{name}/unset -> {}",
        first.uri
    );
    assert!(plan.stdout.contains(&uri_change), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!(
            "seldon/model.yaml:9 {name}@champion:version: 0 -> {v1}"
        )),
        "{}",
        plan.stdout
    );
    let json = run(&s.wd, &srv.url, &env, &["plan", "m", "--format", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout).expect("JSON plan");
    assert_eq!(
        doc["outputs"][0]["changes"].as_array().map(Vec::len),
        Some(7),
        "{doc}"
    );
    assert_eq!(doc["outputs"][0]["result"]["result"], "planned");
    let md = run(
        &s.wd,
        &srv.url,
        &env,
        &["plan", "m", "--format", "markdown"],
    );
    assert!(md.stdout.contains("### Outputs"), "{}", md.stdout);
    assert_eq!(s.commits("main"), start, "plan writes nothing");

    // apply: the registry moves, then one signed commit.
    let r = run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("output {uri_change}")),
        "{}",
        r.stdout
    );
    let after = s.commits("main");
    assert_eq!(after.len(), start.len() + 1, "one commit per pass");
    assert_eq!(after[1], start[0]);
    assert!(
        r.stdout.contains(&format!("committed {}", after[0])),
        "{}",
        r.stdout
    );
    holds(&s, &first);
    let m = model(&srv.registry(), &name).await;
    assert_eq!(m.aliases.get("champion"), Some(&v1));

    // Nothing to change: no commit.
    let r = run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    assert_eq!(s.commits("main"), after);

    // The next promotion, reviewed as a saved plan.
    s.manifest(v2, v2);
    let p = run(&s.wd, &srv.url, &env, &["plan", "m", "--out", "p.json"]);
    assert_eq!(p.code, 0, "{p:?}");
    let r = run(&s.wd, &srv.url, &env, &["apply", "--plan", "p.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.commits("main").len(), after.len() + 1);
    holds(&s, &resolved(srv, &name, v2));

    // A move back (the manifest names the previous version again), by the
    // daemon: the previous values are written back.
    s.manifest(v1, v2);
    let r = run(&s.wd, &srv.url, &env, &["watch", "m", "--once"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.commits("main").len(), after.len() + 2);
    holds(&s, &first);

    // Someone puts the placeholders back by hand: with the registry as
    // declared, only the outputs differ; the next pass writes them again.
    git(&s.repo.work, &["pull", "-q", "origin", "main"]);
    let rel = FILES[0];
    s.repo.commit_signed(rel, &example(rel, &name), None);
    git(&s.repo.work, &["push", "-q", "origin", "main"]);
    let plan = run(&s.wd, &srv.url, &env, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "output changes are changes: {plan:?}");
    assert!(
        plan.stdout.contains("No changes. The registry matches"),
        "{}",
        plan.stdout
    );
    let r = run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.commits("main").len(), after.len() + 4);
    holds(&s, &first);
}

//! `watch --git … --verify-signatures --allowed-signers FILE`: commits
//! over file:// signed with keys ssh-keygen makes here. A commit signed by
//! a listed key is applied; an unsigned one and one signed by an unlisted
//! key are not (the last verified revision stays applied), and `/status`,
//! `/metrics`, the page and the notifications say which commit and which
//! signer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::git::GitRepo;
use crate::support::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(90);

fn model(champion: &str) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: signed-m\nspec:\n  versions:\n    \
         v1: {{source: s3://bucket/signed/1}}\n    v2: {{source: s3://bucket/signed/2}}\n    \
         v3: {{source: s3://bucket/signed/3}}\n  aliases:\n    champion: {champion}\n"
    )
}

/// An ed25519 key pair made by ssh-keygen; returns the private key path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(out.status.success(), "{out:?}");
    key
}

fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub")).expect("public key")
}

fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

#[test]
fn only_commits_signed_by_allowed_keys_are_applied() {
    let w = Workdir::new();
    let keys = w.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let alice = keygen(&keys, "alice");
    let mallory = keygen(&keys, "mallory");
    let signers = w.write(
        "allowed_signers",
        &format!("alice@example.com {}", public(&alice)),
    );
    let repo = GitRepo::new(w.path());
    let hook = Receiver::start(0);
    let c1 = repo.push_signed("m/a.yaml", &model("v1"), Some(&alice));

    let mut cmd = w.command(&[
        "watch",
        "--git",
        &repo.url,
        "--path",
        "m",
        "--interval",
        "200ms",
    ]);
    cmd.args([
        "--cache-dir",
        w.path().join("cache").to_str().expect("utf-8"),
    ])
    .arg("--verify-signatures")
    .arg("--allowed-signers")
    .arg(&signers)
    .args(["--notify", &hook.url]);
    let mut d = Daemon::start(cmd);
    let s = d.wait_status("c1 applied", WAIT, |s| {
        s["last_applied_revision"] == c1.as_str()
    });
    assert_eq!(s["signature"]["verified"], true, "{s:#}");
    assert_eq!(s["signature"]["signer"], "alice@example.com", "{s:#}");
    assert!(
        s["last_applied_commit"]["author"]
            .as_str()
            .is_some_and(|a| a.contains("t@example.com")),
        "{s:#}"
    );
    let champion = |d: &Daemon| d.status()["models"][0]["aliases"][0]["version"].clone();
    assert_eq!(champion(&d), 1);

    // Unsigned: not applied, and said so everywhere.
    let c2 = repo.push("m/a.yaml", &model("v2"));
    let s = d.wait_status("c2 refused", WAIT, |s| {
        s["signature"]["commit"] == c2.as_str()
    });
    assert_eq!(s["signature"]["verified"], false, "{s:#}");
    assert!(
        s["signature"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not signed")),
        "{s:#}"
    );
    assert_eq!(
        s["last_applied_revision"],
        c1.as_str(),
        "the verified revision stays applied"
    );
    assert_eq!(s["last_error"]["kind"], "unverified");
    assert!(
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&c2)),
        "{s:#}"
    );
    assert_eq!(champion(&d), 1);
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "modelsync_unverified_commit_info{{commit=\"{c2}\",signer=\"unsigned\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("modelsync_reconciles_total{outcome=\"unverified\"} 1"),
        "{metrics}"
    );
    let page = d.get("/").body;
    assert!(page.contains("id=\"signature\""), "{page}");
    assert!(
        page.contains(&format!("{c1}</code> by t &lt;t@example.com&gt; at ")),
        "last applied commit, author, time: {page}"
    );
    assert!(page.contains(&c2), "{page}");
    let event = hook.wait_for("unverified event", WAIT, |r| {
        r.json()["type"] == "io.modelsync.reconcile.unverified"
    });
    assert_eq!(event.json()["data"]["signature"]["commit"], c2.as_str());

    // Signed by a key that is not listed: refused, the signer named.
    let c3 = repo.push_signed("m/a.yaml", &model("v3"), Some(&mallory));
    let s = d.wait_status("c3 refused", WAIT, |s| {
        s["signature"]["commit"] == c3.as_str()
    });
    let fp = fingerprint(&mallory);
    assert_eq!(s["signature"]["verified"], false, "{s:#}");
    assert_eq!(s["signature"]["signer"], fp.as_str(), "{s:#}");
    assert!(
        s["signature"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not in the allowed signers")),
        "{s:#}"
    );
    assert_eq!(s["last_applied_revision"], c1.as_str());
    assert_eq!(champion(&d), 1);
    let metrics = d.get("/metrics").body;
    assert!(metrics.contains(&format!("signer=\"{fp}\"")), "{metrics}");
    let page = d.get("/").body;
    assert!(page.contains(&fp), "the page names the signer: {page}");
    let event = hook.wait_for("unverified event for c3", WAIT, |r| {
        r.json()["data"]["signature"]["commit"] == c3.as_str()
    });
    assert_eq!(event.json()["data"]["signature"]["signer"], fp.as_str());

    // Signed by alice again: applied.
    let c4 = repo.push_signed(
        "m/a.yaml",
        &format!("{}# reviewed\n", model("v3")),
        Some(&alice),
    );
    let s = d.wait_status("c4 applied", WAIT, |s| {
        s["last_applied_revision"] == c4.as_str()
    });
    assert_eq!(s["signature"]["verified"], true);
    assert!(s["last_error"].is_null(), "{s:#}");
    assert_eq!(champion(&d), 3);
    assert!(
        d.get("/metrics")
            .body
            .contains("modelsync_signature_rejections_total 2")
    );
}

#[test]
fn a_bad_allowed_signers_file_is_an_error_before_anything_runs() {
    let w = Workdir::new();
    let signers = w.write("allowed_signers", "alice@example.com ssh-ed25519 AAAA\n");
    let repo = GitRepo::new(w.path());
    repo.push("m/a.yaml", &model("v1"));
    let run = w.run(&[
        "watch",
        "--git",
        &repo.url,
        "--once",
        "--verify-signatures",
        "--allowed-signers",
        signers.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("allowed_signers:1: bad public key"),
        "{run:?}"
    );
    let missing = w.run(&["watch", "--git", &repo.url, "--verify-signatures"]);
    assert_eq!(
        missing.code, 1,
        "--allowed-signers is required: {missing:?}"
    );
}

/// A daemon following `repo`'s main with `--verify-signatures`, its git
/// cache in `w` (kept across restarts), notifying `hook` (CloudEvents and,
/// with `GITHUB_API_URL` pointing there, commit statuses).
fn verifying_daemon(
    w: &Workdir,
    repo: &GitRepo,
    signers: &Path,
    hook: &Receiver,
    extra: &[&str],
) -> Daemon {
    let mut cmd = w.command(&[
        "watch",
        "--git",
        &repo.url,
        "--path",
        "m",
        "--interval",
        "200ms",
    ]);
    cmd.args([
        "--cache-dir",
        w.path().join("cache").to_str().expect("utf-8"),
    ])
    .arg("--verify-signatures")
    .arg("--allowed-signers")
    .arg(signers)
    .args(["--notify", &hook.url])
    .arg("--github-status")
    .env("GITHUB_TOKEN", "ghp-signed-forward-test")
    .env("GITHUB_API_URL", &hook.url)
    .args(extra);
    Daemon::start(cmd)
}

/// `alice`'s key pair and an allowed_signers file listing it.
fn alice(w: &Workdir) -> (PathBuf, PathBuf) {
    let keys = w.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let alice = keygen(&keys, "alice");
    let signers = w.write(
        "allowed_signers",
        &format!("alice@example.com {}", public(&alice)),
    );
    (alice, signers)
}

/// A verified head that does not descend from the last verified commit
/// applied was refused: said in `/status`, `/metrics`, the page, a
/// notification and a failed commit status; `last` stays applied.
fn assert_refused_as_not_forward(d: &mut Daemon, hook: &Receiver, head: &str, last: &str) {
    let s = d.wait_status("the head refused", WAIT, |s| {
        s["signature"]["commit"] == head && s["signature"]["verified"] == false
    });
    assert_eq!(s["signature"]["signer"], "alice@example.com", "{s:#}");
    let reason = s["signature"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&format!("does not descend from {last}")),
        "{s:#}"
    );
    assert!(reason.contains("--allow-non-fast-forward"), "{s:#}");
    assert_eq!(s["last_applied_revision"], last, "{s:#}");
    assert_eq!(s["last_error"]["kind"], "unverified", "{s:#}");
    assert!(
        s["last_error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(head) && m.contains("does not descend")),
        "{s:#}"
    );
    let metrics = d.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "modelsync_unverified_commit_info{{commit=\"{head}\",signer=\"alice@example.com\"}} 1"
        )),
        "{metrics}"
    );
    let page = d.get("/").body;
    assert!(page.contains("id=\"signature\""), "{page}");
    assert!(
        page.contains(head) && page.contains("does not descend"),
        "{page}"
    );
    let event = hook.wait_for("an unverified event for the head", WAIT, |r| {
        r.path == "/"
            && r.json()["type"] == "io.modelsync.reconcile.unverified"
            && r.json()["data"]["signature"]["commit"] == head
    });
    let data = &event.json()["data"];
    assert_eq!(data["signature"]["verified"], false, "{data:#}");
    assert!(
        data["error"]
            .as_str()
            .is_some_and(|e| e.contains("does not descend")),
        "{data:#}"
    );
    hook.wait_for("a failed commit status on the head", WAIT, |r| {
        r.path == format!("/repos/acme/models/statuses/{head}") && r.json()["state"] == "failure"
    });
}

#[test]
fn a_force_push_back_to_an_older_signed_commit_is_refused_unless_allowed() {
    let w = Workdir::new();
    let (alice, signers) = alice(&w);
    let repo = GitRepo::named(w.path(), "acme/models.git");
    let hook = Receiver::start(0);
    let c1 = repo.push_signed("m/a.yaml", &model("v1"), Some(&alice));
    let mut d = verifying_daemon(&w, &repo, &signers, &hook, &[]);
    d.wait_status("c1 applied", WAIT, |s| {
        s["last_applied_revision"] == c1.as_str()
    });
    let c2 = repo.push_signed("m/a.yaml", &model("v2"), Some(&alice));
    d.wait_status("c2 applied", WAIT, |s| {
        s["last_applied_revision"] == c2.as_str()
    });
    let champion = |d: &Daemon| d.status()["models"][0]["aliases"][0]["version"].clone();
    assert_eq!(champion(&d), 2);

    // Back to c1: signed by alice, and older than what is applied.
    repo.force_push(&c1);
    assert_refused_as_not_forward(&mut d, &hook, &c1, &c2);
    assert_eq!(champion(&d), 2, "c2 stays applied");

    // The head is the applied commit again: the error clears.
    repo.force_push(&c2);
    let s = d.wait_status("c2 is the head again", WAIT, |s| {
        s["signature"]["commit"] == c2.as_str() && s["last_error"].is_null()
    });
    assert_eq!(s["signature"]["verified"], true, "{s:#}");
    assert_eq!(s["last_applied_revision"], c2.as_str());
    assert!(
        !d.get("/metrics")
            .body
            .contains("modelsync_unverified_commit_info{"),
        "no refused head any more"
    );

    // The operator opts in: c1 is applied.
    repo.force_push(&c1);
    assert_refused_as_not_forward(&mut d, &hook, &c1, &c2);
    assert_eq!(d.terminate(WAIT), 0);
    let mut d = verifying_daemon(&w, &repo, &signers, &hook, &["--allow-non-fast-forward"]);
    let s = d.wait_status("c1 applied with the opt-in", WAIT, |s| {
        s["last_applied_revision"] == c1.as_str()
    });
    assert_eq!(s["signature"]["verified"], true, "{s:#}");
    assert!(s["last_error"].is_null(), "{s:#}");
    assert_eq!(champion(&d), 1);
}

#[test]
fn a_signed_commit_of_another_branch_is_refused_also_after_a_restart() {
    let w = Workdir::new();
    let (alice, signers) = alice(&w);
    let repo = GitRepo::named(w.path(), "acme/models.git");
    let hook = Receiver::start(0);
    let c0 = repo.push_signed("m/a.yaml", &model("v1"), Some(&alice));
    let c1 = repo.push_signed("m/a.yaml", &model("v2"), Some(&alice));
    let mut d = verifying_daemon(&w, &repo, &signers, &hook, &[]);
    d.wait_status("c1 applied", WAIT, |s| {
        s["last_applied_revision"] == c1.as_str()
    });

    // A signed commit on another branch (forked before c1), force-pushed.
    repo.branch("other", &c0);
    let other = repo.commit_signed("m/a.yaml", &model("v3"), Some(&alice));
    repo.force_push(&other);
    assert_refused_as_not_forward(&mut d, &hook, &other, &c1);

    // A restart remembers the last verified commit applied (the git cache).
    assert_eq!(d.terminate(WAIT), 0);
    let mut d = verifying_daemon(&w, &repo, &signers, &hook, &[]);
    let s = d.wait_status("the other branch's commit refused again", WAIT, |s| {
        s["signature"]["commit"] == other.as_str() && s["signature"]["verified"] == false
    });
    assert!(
        s["signature"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("does not descend from {c1}"))),
        "{s:#}"
    );
    assert_eq!(s["last_error"]["kind"], "unverified", "{s:#}");
    let champion = |d: &Daemon| d.status()["models"][0]["aliases"][0]["version"].clone();
    assert!(
        s["last_applied_revision"].is_null(),
        "nothing applied since the restart: {s:#}"
    );

    // With the opt-in it is applied.
    assert_eq!(d.terminate(WAIT), 0);
    let mut d = verifying_daemon(&w, &repo, &signers, &hook, &["--allow-non-fast-forward"]);
    d.wait_status("the other branch's commit applied", WAIT, |s| {
        s["last_applied_revision"] == other.as_str()
    });
    assert_eq!(champion(&d), 3);
}

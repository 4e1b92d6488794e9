//! Pushes that do not land at once: the serving branch moved while the
//! pass worked (its outputs step holds on MLflow's answer, through the
//! fault proxy, until the test has pushed another commit): the markers are
//! applied again on the new head and the push lands, the other commit
//! kept; and a push that cannot land (a non-bare repository, which
//! libgit2 does not push to): `apply` exits 1, the registry move stays.

use std::time::{Duration, Instant};

use super::{FILES, Setup, expected, resolved};
use crate::copy::{model, train};
use crate::support::cli::Run;
use crate::support::git::git;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy};

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_raced_another_commit_is_applied_again_on_the_new_head() {
    let srv = server();
    let name = unique("outputs-race");
    let (v1, v2) = (train(srv, &name, 0.8, 1.0), train(srv, &name, 0.9, 2.0));
    let s = Setup::new(&name, "commit");
    let env = s.env(srv);
    // Both versions pinned (their first moves), the files written for v1.
    s.manifest(v1, v2);
    let r = crate::copy::run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");

    // The outputs step's one location read waits for the test's signal.
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail(
        "GET",
        "get-download-uri",
        Fault::HoldUntilAnswered("race-signal".into()),
        1,
    );
    s.manifest(v2, v2);
    let mut cmd = s.wd.command(&["apply", "m"]);
    cmd.env("MODELSYNC_REGISTRY", &proxy.url)
        .env("MODELSYNC_HTTP_TIMEOUT", "300s")
        .envs(env.iter().map(|(k, v)| (k, v)));
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start apply");
    let start = Instant::now();
    while proxy.count("GET", "get-download-uri") == 0 {
        assert!(
            start.elapsed() < WAIT,
            "the outputs step never located the version"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Meanwhile someone else commits to the serving branch.
    git(&s.repo.work, &["pull", "-q", "origin", "main"]);
    let other = s
        .repo
        .commit_signed("README.md", "deployed by Argo CD\n", None);
    git(&s.repo.work, &["push", "-q", "origin", "main"]);
    // The signal: a request through the proxy that MLflow answers.
    let signal = format!(
        "{}/api/2.0/mlflow/registered-models/get?name=race-signal",
        proxy.url
    );
    let _ = reqwest::get(&signal).await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("apply ends");
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("after 2 attempts"), "{}", r.stdout);
    let commits = s.commits("main");
    assert_eq!(
        commits[1], other,
        "written on top of the commit that raced it"
    );
    assert_eq!(s.file("main", "README.md"), "deployed by Argo CD\n");
    let second = resolved(srv, &name, v2);
    for rel in FILES {
        assert_eq!(s.file("main", rel), expected(rel, &name, &second));
    }
    s.verify(&commits[0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_push_that_fails_exits_1_and_the_registry_move_stays() {
    let srv = server();
    let name = unique("outputs-fail");
    let (v1, v2) = (train(srv, &name, 0.8, 1.0), train(srv, &name, 0.9, 2.0));
    let s = Setup::new(&name, "commit");
    let env = s.env(srv);
    // The clone is a repository with a working tree: fetched from, never
    // pushed to.
    s.wd.write(
        "m/modelsync.toml",
        &format!(
            "[outputs]\nrepo = \"file://{}\"\npath = \".\"\n",
            s.repo.work.display()
        ),
    );
    let before = git(&s.repo.work, &["rev-parse", "HEAD"]);
    s.manifest(v2, v1);
    let r = crate::copy::run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("was not written; the registry's changes stay applied"),
        "{r:?}"
    );
    let m = model(&srv.registry(), &name).await;
    assert_eq!(
        m.aliases.get("champion"),
        Some(&v2),
        "the move is not undone"
    );
    assert_eq!(git(&s.repo.work, &["rev-parse", "HEAD"]), before);
    // The daemon says so too, and exits as apply does.
    let r = crate::copy::run(&s.wd, &srv.url, &env, &["watch", "m", "--once"]);
    assert_eq!(r.code, 1, "{r:?}");
}

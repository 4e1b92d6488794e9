//! Pull-request mode against a GitHub API stand-in (a local HTTP server
//! that records every request and answers as GitHub does): the first
//! promotion pushes `modelsync/outputs/main` and opens one pull request;
//! the next one updates the branch and the same pull request, never a
//! second one; the serving branch itself is never written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use super::{FILES, Setup, expected, resolved};
use crate::copy::{run, train};
use crate::support::mlflow::{server, unique};
use crate::support::receiver::Receiver;

const TOKEN: &str = "ghp_outputs-test-token-0123456789";

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_request_is_opened_once_then_updated() {
    let srv = server();
    let name = unique("outputs-pr");
    let (v1, v2) = (train(srv, &name, 0.8, 1.0), train(srv, &name, 0.9, 2.0));
    let s = Setup::new(&name, "pull-request");
    let opened = Arc::new(AtomicBool::new(false));
    let seen = opened.clone();
    let pull =
        json!({"number": 7, "html_url": "https://github.example/acme/serving/pull/7"}).to_string();
    let github = Receiver::answering(move |r, _| match r.method.as_str() {
        "GET" if seen.load(Ordering::SeqCst) => (200, format!("[{pull}]")),
        "GET" => (200, "[]".into()),
        "POST" => {
            seen.store(true, Ordering::SeqCst);
            (201, pull.clone())
        }
        "PATCH" => (200, pull.clone()),
        _ => (404, "{}".into()),
    });
    let mut env = s.env(srv);
    env.push(("GITHUB_TOKEN".into(), TOKEN.into()));
    env.push(("GITHUB_API_URL".into(), github.url.clone()));
    let main = s.commits("main");

    s.manifest(v1, v2);
    let r = run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("pull request #7 opened"), "{}", r.stdout);
    assert_eq!(s.commits("main"), main, "the serving branch is not written");
    let branch = "modelsync/outputs/main";
    let first = resolved(srv, &name, v1);
    for rel in FILES {
        assert_eq!(s.file(branch, rel), expected(rel, &name, &first));
    }
    s.verify(&s.commits(branch)[0]);
    assert_eq!(
        s.commits(branch)[1],
        main[0],
        "on top of the serving branch"
    );

    s.manifest(v2, v2);
    let r = run(&s.wd, &srv.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("pull request #7 updated"), "{}", r.stdout);
    let second = resolved(srv, &name, v2);
    for rel in FILES {
        assert_eq!(s.file(branch, rel), expected(rel, &name, &second));
    }

    let got = github.received();
    let calls: Vec<(String, String)> = got
        .iter()
        .map(|r| {
            (
                r.method.clone(),
                r.path.split('?').next().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let pulls = "/repos/acme/serving/pulls".to_string();
    assert_eq!(
        calls,
        vec![
            ("GET".into(), pulls.clone()),
            ("POST".into(), pulls.clone()),
            ("GET".into(), pulls.clone()),
            ("PATCH".into(), format!("{pulls}/7")),
        ],
        "{got:#?}"
    );
    assert!(
        got[0]
            .path
            .contains("head=acme%3Amodelsync%2Foutputs%2Fmain")
            && got[0].path.contains("base=main"),
        "{}",
        got[0].path
    );
    let opened_with = got[1].json();
    assert_eq!(opened_with["head"], branch);
    assert_eq!(opened_with["base"], "main");
    assert!(
        opened_with["body"]
            .as_str()
            .unwrap_or_default()
            .contains(&first.uri),
        "{opened_with}"
    );
    for r in &got {
        assert_eq!(
            r.headers.get("authorization").map(String::as_str),
            Some(&*format!("Bearer {TOKEN}"))
        );
        assert!(!r.body.contains(TOKEN));
    }
    assert!(opened.load(Ordering::SeqCst));
}

//! Targeted plans (issue 23 point 1) through the binary against the real
//! MLflow 3.17.2 server, every request counted by the harness's recording
//! proxy: `--model` (exact and glob) reads only its models, by name, with
//! no bulk search page and no request naming another model; prune within
//! the targets only; targeted and full saved plans refuse each other.
//! `--changed-since` is in `targeted/changed_since.rs`; the combination
//! table (`combos.rs`) has the targeted entry points.

mod changed_since;

use modelsync::registry::Registry;
use modelsync::state::LiveModel;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Proxy, counts};

/// A model with versions `a` and `b`, `a` in Production, and `aliases`
/// (alias -> handle).
pub(crate) fn model(name: &str, aliases: &[(&str, &str)]) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{source: \"s3://targeted/{name}/a\"}}\n    b: {{source: \"s3://targeted/{name}/b\"}}\n  stages:\n    Production: a\n  aliases:\n"
    );
    for (alias, handle) in aliases {
        m.push_str(&format!("    {alias}: {handle}\n"));
    }
    m
}

fn run(w: &Workdir, registry: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", registry];
    all.extend_from_slice(args);
    w.run(&all)
}

/// Every request the proxy saw that names one of `names` (in its path,
/// query or body).
pub(crate) fn naming(proxy: &Proxy, names: &[&str]) -> Vec<String> {
    proxy
        .seen()
        .into_iter()
        .filter(|s| {
            names
                .iter()
                .any(|n| s.path.contains(n) || s.body.contains(n))
        })
        .map(|s| format!("{} {} {}", s.method, s.path, s.body))
        .collect()
}

async fn read(name: &str) -> LiveModel {
    let reg = server().registry();
    reg.get_model(name).await.expect("read").expect("the model")
}

/// Three models, `P-a` and `P-b` in one file and `P-other` in another,
/// applied in full.
fn three(w: &Workdir, aliases: &[(&str, &str)]) -> [String; 3] {
    let p = unique("tgt");
    let names = [format!("{p}-a"), format!("{p}-b"), format!("{p}-other")];
    let [a, b, other] = &names;
    w.write(
        "m/ab.yaml",
        &format!("{}---\n{}", model(a, aliases), model(b, aliases)),
    );
    w.write("m/other.yaml", &model(other, aliases));
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_targeted_plan_reads_only_its_models_by_name() {
    let srv = server();
    let w = Workdir::new();
    let [a, b, other] = three(&w, &[("champion", "a")]);
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");

    // One model by name: its get and its version search, and the
    // capability probe; nothing about the others, no bulk page.
    let proxy = Proxy::start(&srv.url).await;
    let r = run(
        &w,
        &proxy.url,
        &["plan", "m", "--model", &b, "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.starts_with(&format!("Targeted plan: only {b};")),
        "{r:?}"
    );
    let (seen, lease) = proxy.by_endpoint(&w.lease_name());
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/get", 1),
            ("GET model-versions/search", 1),
        ]),
        "{:#?}",
        proxy.seen()
    );
    assert_eq!(lease, 0, "a plan takes no lease");
    assert_eq!(naming(&proxy, &[&a, &other]), Vec::<String>::new());
    // The full plan of the same manifests reads the bulk pages.
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(proxy.count("GET", "registered-models/search") >= 1);

    // A glob: P-? is a and b. The manifests now add `best` to all three;
    // the plan and the apply touch a and b only.
    w.write(
        "m/ab.yaml",
        &format!(
            "{}---\n{}",
            model(&a, &[("champion", "a"), ("best", "b")]),
            model(&b, &[("champion", "a"), ("best", "b")])
        ),
    );
    w.write(
        "m/other.yaml",
        &model(&other, &[("champion", "a"), ("best", "b")]),
    );
    let glob = format!("{}?", &a[..a.len() - 1]);
    let proxy = Proxy::start(&srv.url).await;
    let r = run(
        &w,
        &proxy.url,
        &["plan", "m", "--model", &glob, "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!("model {a}\n")) && r.stdout.contains(&format!("model {b}\n")),
        "{r:?}"
    );
    assert!(!r.stdout.contains(&other), "{r:?}");
    let (seen, _) = proxy.by_endpoint(&w.lease_name());
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/get", 2),
            ("GET model-versions/search", 2),
            // Where the bytes of the two versions the plan moves are, to
            // pin their digest (`docs/serving.md`).
            ("GET model-versions/get-download-uri", 2),
        ]),
        "{:#?}",
        proxy.seen()
    );
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["apply", "m", "--model", &glob]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(naming(&proxy, &[&other]), Vec::<String>::new());
    assert_eq!(proxy.count("GET", "registered-models/search"), 0);
    for name in [&a, &b] {
        assert_eq!(read(name).await.aliases.get("best"), Some(&2), "{name}");
    }
    assert_eq!(read(&other).await.aliases.get("best"), None, "untargeted");
    // The untargeted model is still to do in a full plan.
    let r = run(&w, &srv.url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains(&format!("model {other}\n")), "{r:?}");
    assert!(!r.stdout.contains(&format!("model {a}\n")), "{r:?}");

    // A pattern that matches nothing: exit 1 before any request.
    let proxy = Proxy::start(&srv.url).await;
    let r = run(
        &w,
        &proxy.url,
        &["plan", "m", "--model", &b, "--model", "no-such-*"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("--model \"no-such-*\" matches no declared model or prompt"),
        "{r:?}"
    );
    assert!(proxy.seen().is_empty(), "{:#?}", proxy.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_with_model_touches_nothing_outside_it() {
    let srv = server();
    let w = Workdir::new();
    let [a, b, other] = three(&w, &[("champion", "a"), ("old", "a")]);
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    // The manifests no longer declare `old`, which modelsync set (owns) on
    // all three.
    three_again(&w, [&a, &b, &other], &[("champion", "a")]);
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["apply", "m", "--prune", "--model", &a]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read(&a).await.aliases.get("old"), None, "pruned: {r:?}");
    for name in [&b, &other] {
        assert_eq!(
            read(name).await.aliases.get("old"),
            Some(&1),
            "{name}: an owned alias of an untargeted model stays"
        );
    }
    assert_eq!(naming(&proxy, &[&b, &other]), Vec::<String>::new());
    // The same prune, untargeted, removes them.
    let r = run(&w, &srv.url, &["apply", "m", "--prune"]);
    assert_eq!(r.code, 0, "{r:?}");
    for name in [&b, &other] {
        assert_eq!(read(name).await.aliases.get("old"), None, "{name}");
    }
}

/// Rewrites the three models' manifests with `aliases`.
fn three_again(w: &Workdir, [a, b, other]: [&String; 3], aliases: &[(&str, &str)]) {
    w.write(
        "m/ab.yaml",
        &format!("{}---\n{}", model(a, aliases), model(b, aliases)),
    );
    w.write("m/other.yaml", &model(other, aliases));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targeted_and_full_saved_plans_refuse_each_other() {
    let srv = server();
    let w = Workdir::new();
    let [a, b, other] = three(&w, &[("champion", "a")]);
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    three_again(&w, [&a, &b, &other], &[("champion", "b")]);

    // Made and applied through one proxy: a saved plan is applied only
    // against the registry URI it was made against.
    let tp = Proxy::start(&srv.url).await;
    let r = run(
        &w,
        &tp.url,
        &["plan", "m", "--model", &a, "--out", "t.json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("modelsync apply --plan t.json --model '{a}'")),
        "{r:?}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("t.json")).expect("read"))
            .expect("json");
    assert_eq!(saved["format_version"], 5);
    assert_eq!(saved["targets"]["models"], serde_json::json!([a]));
    assert_eq!(
        saved["observed"]["models"]
            .as_object()
            .expect("observed")
            .keys()
            .collect::<Vec<_>>(),
        [&a],
        "a targeted plan observes only its models"
    );
    let r = run(&w, &srv.url, &["plan", "m", "--out", "f.json"]);
    assert_eq!(r.code, 0, "{r:?}");

    // Refused, before any request: the targeted plan as a full one, with
    // other targets, and the full plan with targets.
    let refusals: [(&[&str], &str); 4] = [
        (&["apply", "--plan", "t.json"], "the saved plan is targeted"),
        (
            &["apply", "--plan", "t.json", "--model", &b],
            "but the saved plan covers",
        ),
        (
            &["apply", "--plan", "t.json", "--model", &a, "--model", &b],
            "but the saved plan covers",
        ),
        (
            &["apply", "--plan", "f.json", "--model", &a],
            "the saved plan is a full plan",
        ),
    ];
    for (args, says) in refusals {
        let proxy = Proxy::start(&srv.url).await;
        let r = run(&w, &proxy.url, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("nothing was read or written"),
            "{args:?}: {r:?}"
        );
        assert!(proxy.seen().is_empty(), "{args:?}: {:#?}", proxy.seen());
    }
    for name in [&a, &b, &other] {
        assert_eq!(read(name).await.aliases.get("champion"), Some(&1), "{name}");
    }

    // Applied with its own targets (a glob selecting the same): only a.
    let glob = format!("{}*", &a[..a.len() - 1]);
    let r = run(
        &w,
        &srv.url,
        &["apply", "--plan", "t.json", "--model", &glob],
    );
    assert_eq!(r.code, 1, "the glob selects a and b: {r:?}");
    let before = tp.seen().len();
    let r = run(&w, &tp.url, &["apply", "--plan", "t.json", "--model", &a]);
    assert_eq!(r.code, 0, "{r:?}");
    let others: Vec<_> = tp.seen()[before..]
        .iter()
        .filter(|s| {
            [&b, &other]
                .iter()
                .any(|n| s.path.contains(n.as_str()) || s.body.contains(n.as_str()))
        })
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(others, Vec::<String>::new());
    assert_eq!(read(&a).await.aliases.get("champion"), Some(&2));
    assert_eq!(read(&b).await.aliases.get("champion"), Some(&1));
    // The full plan is now stale (a moved): exit 4; made again, it
    // applies without targets.
    let r = run(&w, &srv.url, &["apply", "--plan", "f.json"]);
    assert_eq!(r.code, 4, "{r:?}");
    let r = run(&w, &srv.url, &["plan", "m", "--out", "f.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&w, &srv.url, &["apply", "--plan", "f.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    for name in [&b, &other] {
        assert_eq!(read(name).await.aliases.get("champion"), Some(&2), "{name}");
    }
}

//! The `modelsync` binary against the real MLflow server of the harness:
//! promotions, no-op applies with zero writes, drift repair, saved plans,
//! concurrent appliers, offline snapshots and gates.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

fn manifest(name: &str, prod: &str, extra_alias: bool) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  description: cli test\n  tags: {{team: ml}}\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n  stages:\n    Production: {prod}\n  aliases:\n    champion: {prod}\n"
    );
    if extra_alias {
        m.push_str("    challenger: b\n");
    }
    m
}

fn run(w: &Workdir, url: &str, args: &[&str]) -> Run {
    let mut all = vec!["--registry", url];
    all.extend_from_slice(args);
    w.run(&all)
}

/// A fresh model named after `prefix`, with `manifest(name, prod, extra)`
/// already applied to the shared server (exit 0 checked).
fn applied(prefix: &str, prod: &str, extra_alias: bool) -> (String, Workdir) {
    let name = unique(prefix);
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, prod, extra_alias));
    let r = run(&w, &server().url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    (name, w)
}

/// `plan m --detailed-exitcode` against `url` finds nothing to do.
fn assert_converged(w: &Workdir, url: &str) {
    let r = run(w, url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
}

fn writes(proxy: &Proxy) -> usize {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_promotes_archives_and_a_second_apply_makes_zero_writes() {
    let srv = server();
    let (name, w) = applied("cli-promote", "a", false);
    w.write("m/model.yaml", &manifest(&name, "b", true));
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(model.versions[&1].stage, Stage::Archived);
    assert_eq!(model.versions[&2].stage, Stage::Production);
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert_eq!(model.tags.get("team").map(String::as_str), Some("ml"));
    let stamp = &model.versions[&2].tags["modelsync.promoted-at.Production"];
    assert!(
        stamp.ends_with("Z previous=1"),
        "one audit tag per move: {stamp}"
    );
    // The same manifests again, through a counting proxy: no writes at all,
    // and a handful of reads.
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("No changes"), "{r:?}");
    let seen = proxy.seen();
    let write_count = seen
        .iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search"))
        .count();
    // The lease (create/get/delete of the lease model) is the only write.
    let lease_writes = seen
        .iter()
        .filter(|s| {
            s.method != "GET" && s.path.contains("registered-models/create")
                || s.path.contains("registered-models/delete")
        })
        .count();
    assert_eq!(
        write_count, lease_writes,
        "writes on a no-op apply: {seen:#?}"
    );
    let reads = seen.iter().filter(|s| s.method == "GET").count();
    assert!(
        reads <= 8,
        "{reads} reads for a no-op apply of one model: {seen:#?}"
    );
    // plan makes no writes at all, not even the lease.
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_by_hand_is_planned_and_repaired() {
    let srv = server();
    let (name, w) = applied("cli-drift", "b", true);
    let reg = srv.registry();
    reg.set_alias(&name, "champion", 1)
        .await
        .expect("hand-made alias move");
    reg.transition_stage(&name, 1, Stage::Production)
        .await
        .expect("hand-made promotion");
    let r = run(&w, &srv.url, &["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("champion"), "{r:?}");
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = reg.get_model(&name).await.expect("read").expect("model");
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert_eq!(model.versions[&1].stage, Stage::Archived);
    assert_eq!(model.versions[&2].stage, Stage::Production);
    assert_converged(&w, &srv.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_plan_is_refused_as_stale_with_zero_writes() {
    let srv = server();
    let (name, w) = applied("cli-stale", "a", false);
    w.write("m/model.yaml", &manifest(&name, "b", true));
    assert_eq!(
        run(&w, &srv.url, &["plan", "m", "--out", "plan.json"]).code,
        0
    );
    srv.registry()
        .set_alias(&name, "champion", 2)
        .await
        .expect("hand-made change");
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["apply", "--plan", "plan.json"]);
    // Another URL is another registry: refused before reading.
    assert_eq!(r.code, 1, "{r:?}");
    let r = run(&w, &srv.url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("champion"), "{r:?}");
    let model = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(
        model.versions[&2].stage,
        Stage::None,
        "a stale plan promoted"
    );
    assert_eq!(
        model.versions[&1].stage,
        Stage::Production,
        "a stale plan archived"
    );
    // A fresh plan applies.
    assert_eq!(
        run(&w, &srv.url, &["plan", "m", "--out", "plan.json"]).code,
        0
    );
    let r = run(&w, &srv.url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_converged(&w, &srv.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_applies_never_register_twice() {
    let srv = server();
    let name = unique("cli-race");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "b", true));
    let lease = unique("lease");
    let spawn = || {
        w.command(&["--registry", &srv.url, "apply", "m"])
            .env("MODELSYNC_LEASE_MODEL", &lease)
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let model = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(
        model.versions.len(),
        2,
        "each source exactly once: {:?}",
        model.versions.keys()
    );
    assert!(
        srv.registry()
            .get_model(&lease)
            .await
            .expect("read")
            .is_none(),
        "lease not released"
    );
    assert_converged(&w, &srv.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_plan_against_a_snapshot_equals_the_live_plan() {
    let srv = server();
    let (name, w) = applied("cli-snapshot", "a", false);
    w.write("m/model.yaml", &manifest(&name, "b", true));
    let r = run(&w, &srv.url, &["export", "--snapshot", "snap.json", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let live = run(&w, &srv.url, &["plan", "m", "--format", "json"]);
    let offline = run(&w, "file:snap.json", &["plan", "m", "--format", "json"]);
    assert_eq!(live.code, 0, "{live:?}");
    assert_eq!(offline.code, 0, "{offline:?}");
    assert_same_plan(&live.stdout, &offline.stdout);
    assert!(live.stdout.contains("transition_stage"), "{live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_mlflow_field_names() {
    let srv = server();
    let (name, w) = applied("cli-get", "a", false);
    let r = run(
        &w,
        &srv.url,
        &["get", &name, "--alias", "champion", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["version"], "1");
    assert_eq!(v["current_stage"], "Production");
    assert_eq!(v["source"], format!("s3://bucket/{name}/a"));
    assert_eq!(v["aliases"], serde_json::json!(["champion"]));
    let r = run(&w, &srv.url, &["history", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("Production") && r.stdout.contains("champion"),
        "{r:?}"
    );
}

fn assert_same_plan(a: &str, b: &str) {
    if a != b {
        let diff: Vec<String> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| format!("live:    {x}\noffline: {y}"))
            .collect();
        panic!("plans differ:\n{}", diff.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_silently_does_nothing_fails_the_apply() {
    use crate::support::proxy::Fault;
    let srv = server();
    let (name, w) = applied("cli-verify", "a", false);
    // A new tag; the proxy answers its set-tag with 200 {} and drops it.
    w.write(
        "m/model.yaml",
        &manifest(&name, "a", false).replace("team: ml", "team: ml, tier: gold"),
    );
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail(
        "POST",
        "registered-models/set-tag",
        Fault::Answer(200, "{}".into()),
        1,
    );
    let r = run(&w, &proxy.url, &["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("not converged") && r.stderr.contains("tier"),
        "{r:?}"
    );
    // Without the fault it converges.
    let r = run(&w, &srv.url, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_adopts_a_registry_made_with_mlflows_client() {
    let srv = server();
    let name = unique("cli-adopt");
    srv.run_python(&format!(
        "from mlflow import MlflowClient\n\
         c = MlflowClient()\n\
         c.create_registered_model({name:?}, description='made by hand', tags={{'team': 'ml'}})\n\
         for i in range(3):\n    c.create_model_version({name:?}, f's3://bucket/{name}/{{i}}')\n\
         c.transition_model_version_stage({name:?}, '2', 'Production')\n\
         c.transition_model_version_stage({name:?}, '3', 'Staging')\n\
         c.set_registered_model_alias({name:?}, 'champion', '2')\n"
    ));
    let w = Workdir::new();
    let r = run(&w, &srv.url, &["export", "--model", &name]);
    assert_eq!(r.code, 0, "{r:?}");
    w.write("adopted/model.yaml", &r.stdout);
    let r = run(&w, &srv.url, &["plan", "adopted", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "adopting must plan no change: {r:?}");
    let proxy = Proxy::start(&srv.url).await;
    let r = run(&w, &proxy.url, &["apply", "adopted"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
}

//! Apply at the request floor (issue 13), counted through the harness's
//! proxy against the real MLflow server: for a model created from empty with
//! V versions, S stage moves and A aliases, the floor is 1 + V + S + A
//! writes, and apply sends exactly that for it, plus a bounded number per
//! run (snapshots, the lease); a model that existed gets one read before
//! its first write and the duplicate backstop's search.
//! Exact counts per endpoint, so a change that adds a request per version
//! or per move fails here.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use std::process::Stdio;
use std::time::{Duration, Instant};

use modelsync::registry::NewVersion;
use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry};

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy, counts};

/// Two versions more than `prod` / `staging` need: v1..v`n`, Production and
/// `champion` on `prod`, Staging on `staging`.
fn manifest(name: &str, n: usize, prod: usize, staging: usize) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  description: floor\n  tags: {{team: ml}}\n  versions:\n"
    );
    for i in 1..=n {
        m.push_str(&format!(
            "    v{i}: {{source: \"s3://floor/{name}/{i}\"}}\n"
        ));
    }
    m.push_str(&format!(
        "  stages:\n    Production: v{prod}\n    Staging: v{staging}\n  aliases:\n    champion: v{prod}\n"
    ));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_from_empty_sends_the_floor_and_a_wave_three_reads_more_per_model() {
    let srv = server();
    let w = Workdir::new();
    let names = [unique("floor-a"), unique("floor-b")];
    // Each model: V = 3 versions, S = 2 stage moves, A = 1 alias: floor 7.
    for name in &names {
        w.write(&format!("m/{name}.yaml"), &manifest(name, 3, 2, 3));
    }
    let proxy = Proxy::start(&srv.url).await;
    let r = w.run(&["--registry", &proxy.url, "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (seen, lease) = proxy.by_endpoint(&w.lease_name());
    // Per model: 1 + 3 + 2 + 1 = 7 writes and no read. No duplicate
    // backstop search: the run created the model and its versions were
    // answered 1, 2, 3, so no other version existed below any of them; a
    // concurrent applier's twin would be higher, and that applier (which
    // read the model first) runs the backstop and deletes its own
    // (`a_twin_registered_beside_a_new_model_is_still_caught`). Per
    // run: 3 snapshots (plan, plan under the lease, final verification),
    // each one registered-models/search and, for <= 20 models, one
    // model-versions/search per model. No registered-models/get (the
    // create is the freshness check), no set-tag (audit tags ride in the
    // creates), no alias read-back. Per run also: the capability probe
    // (GET /version), and, as models are to be created, one search for
    // the prompts' names (a declared model may be a prompt, which model
    // reads leave out).
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/search", 3 + 1),
            ("GET model-versions/search", 3 * 2),
            ("POST registered-models/create", 2),
            ("POST model-versions/create", 2 * 3),
            ("POST model-versions/transition-stage", 2 * 2),
            ("POST registered-models/alias", 2),
        ]),
        "{:#?}",
        proxy.seen()
    );
    assert!(lease <= 6, "{lease} lease requests: {:#?}", proxy.seen());

    let reg = srv.registry();
    for name in &names {
        let m = reg.get_model(name).await.expect("read").expect("model");
        assert_eq!(m.versions.len(), 3);
        assert_eq!(m.versions[&2].stage, Stage::Production);
        assert_eq!(m.versions[&3].stage, Stage::Staging);
        assert_eq!(m.aliases.get("champion"), Some(&2));
        // The audit trail travelled in the create body: one tag per move.
        let v2 = &m.versions[&2].tags;
        assert!(
            v2["modelsync.promoted-at.Production"].ends_with('Z'),
            "{v2:?}"
        );
        assert!(v2.contains_key("modelsync.promoted-at.champion"), "{v2:?}");
        assert!(!v2.contains_key("modelsync.previous.Production"));
    }

    // A promotion wave: each model gets v4, and Production and champion
    // move to it (v2 archived by the move itself).
    for name in &names {
        w.write(&format!("m/{name}.yaml"), &manifest(name, 4, 4, 3));
    }
    let proxy = Proxy::start(&srv.url).await;
    let r = w.run(&["--registry", &proxy.url, "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (seen, _) = proxy.by_endpoint(&w.lease_name());
    // Per model: the read before its first write (registered-models/get +
    // model-versions/search), 1 create, the backstop search, 1
    // transition-stage with archive_existing_versions (no separate
    // archival), 1 alias. Per run: 3 snapshots and the probe as above
    // (no prompt-name search: every declared model exists).
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/search", 3),
            ("GET registered-models/get", 2),
            ("GET model-versions/search", 3 * 2 + 2 * 2),
            ("POST model-versions/create", 2),
            ("POST model-versions/transition-stage", 2),
            ("POST registered-models/alias", 2),
        ]),
        "{:#?}",
        proxy.seen()
    );
    let transitions: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("transition-stage"))
        .collect();
    assert!(
        transitions
            .iter()
            .all(|s| s.body.contains("\"archive_existing_versions\":true")),
        "{transitions:#?}"
    );
    for name in &names {
        let m = reg.get_model(name).await.expect("read").expect("model");
        assert_eq!(m.versions[&2].stage, Stage::Archived);
        assert_eq!(m.versions[&3].stage, Stage::Staging);
        assert_eq!(m.versions[&4].stage, Stage::Production);
        assert_eq!(m.aliases.get("champion"), Some(&4));
        let stamp = &m.versions[&4].tags["modelsync.promoted-at.Production"];
        assert!(stamp.contains(" previous=2"), "{stamp}");
    }
    let r = w.run(&["--registry", &srv.url, "plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "converged: {r:?}");
}

/// The duplicate backstop is left out only where it can find nothing: a
/// model this run created whose versions were answered 1, 2, …. Here
/// another applier registers the same declared source in the new model
/// between its create and modelsync's first version (the proxy holds
/// modelsync's version create until that one is answered): modelsync's
/// version is then 2, the backstop's search runs, finds the lower twin,
/// deletes its own and moves the kept one. One version per source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_registered_beside_a_new_model_is_still_caught() {
    let srv = server();
    let w = Workdir::new();
    let name = unique("floor-race");
    w.write(&format!("m/{name}.yaml"), &manifest(&name, 2, 1, 2));
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail(
        "POST",
        "model-versions/create",
        Fault::HoldUntilAnswered("model-versions/create".into()),
        1,
    );
    let child = w
        .command(&["--registry", &proxy.url, "apply", "m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start modelsync");
    let reg = srv.registry();
    let deadline = Instant::now() + Duration::from_secs(90);
    while reg.get_model(&name).await.expect("read").is_none() {
        assert!(Instant::now() < deadline, "the model was never created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The other applier, through the proxy (so the held create lands after it).
    let other = MlflowRegistry::new(&proxy.url, MlflowConfig::default()).expect("URL");
    let source = format!("s3://floor/{name}/1");
    let theirs = other
        .create_version_unseen(
            &name,
            &NewVersion {
                declared_source: source.clone(),
                source: source.clone(),
                run_id: None,
                model_id: None,
                description: None,
                tags: Default::default(),
            },
        )
        .await
        .expect("the other applier's create");
    assert_eq!(theirs.version, 1);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("join");
    let r = Run::from(out);
    assert_eq!(r.code, 0, "{r:?}");
    let m = reg.get_model(&name).await.expect("read").expect("model");
    assert_eq!(
        m.versions.keys().copied().collect::<Vec<_>>(),
        vec![1, 3],
        "modelsync's twin (2) deleted: {m:#?}"
    );
    assert_eq!(m.versions[&1].stage, Stage::Production);
    assert_eq!(m.versions[&3].stage, Stage::Staging);
    assert_eq!(m.aliases.get("champion"), Some(&1));
    assert_eq!(proxy.count("DELETE", "model-versions/delete"), 1);
}

/// More models than the per-model reads suit: the plan's bulk reads run
/// while the manifests are parsed, and a no-op plan is exactly those two
/// reads. From empty: 3 bulk snapshots (2 requests each) and the floor
/// per model (no backstop search: each model is new, its version 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_models_read_in_bulk_beside_the_parsing() {
    let srv = server();
    let w = Workdir::new();
    let n = 25;
    let prefix = unique("bulk");
    for i in 0..n {
        let name = format!("{prefix}-{i:02}");
        w.write(
            &format!("m/{name}.yaml"),
            &format!(
                "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{source: \"s3://floor/{name}/a\"}}\n  stages:\n    Production: a\n"
            ),
        );
    }
    let proxy = Proxy::start(&srv.url).await;
    let r = w.run(&["--registry", &proxy.url, "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (seen, _) = proxy.by_endpoint(&w.lease_name());
    // One of the model searches asks for the prompts' names (the models
    // are to be created; a declared model may be a prompt).
    let pages = seen["GET registered-models/search"] - 1;
    assert!(pages % 3 == 0 && pages >= 3, "{seen:#?}");
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/search", pages + 1),
            ("GET model-versions/search", 3),
            ("POST registered-models/create", n),
            ("POST model-versions/create", n),
            ("POST model-versions/transition-stage", n),
        ]),
        "{:#?}",
        proxy.seen()
    );
    let proxy = Proxy::start(&srv.url).await;
    let r = w.run(&["--registry", &proxy.url, "plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (seen, _) = proxy.by_endpoint(&w.lease_name());
    assert_eq!(
        seen,
        counts(&[
            ("GET /version", 1),
            ("GET registered-models/search", pages / 3),
            ("GET model-versions/search", 1),
        ]),
    );
}

/// The freeze (issue 19) is read by every pass at no request of its own:
/// the snapshot's model search finds the freeze model. A plan while frozen
/// sends exactly the requests of the same plan unfrozen, and says the
/// freeze blocks its moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_freeze_costs_no_request() {
    let srv = server();
    let w = Workdir::new();
    let name = unique("floor-frozen");
    w.write("m/model.yaml", &manifest(&name, 3, 2, 3));
    let r = w.run(&["--registry", &srv.url, "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    w.write("m/model.yaml", &manifest(&name, 3, 3, 2));
    let plan = || async {
        let proxy = Proxy::start(&srv.url).await;
        let r = w.run(&["--registry", &proxy.url, "plan", "m"]);
        assert_eq!(r.code, 0, "{r:?}");
        (proxy.by_endpoint(&w.lease_name()).0, r.stdout)
    };
    let (unfrozen, text) = plan().await;
    assert!(!text.contains("freeze"), "{text}");
    let r = w.run(&["--registry", &srv.url, "freeze", "--reason", "counted"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (frozen, text) = plan().await;
    assert!(text.contains("blocked: freeze (frozen by"), "{text}");
    assert_eq!(frozen, unfrozen, "the freeze cost a request");
    let r = w.run(&["--registry", &srv.url, "unfreeze"]);
    assert_eq!(r.code, 0, "{r:?}");
}

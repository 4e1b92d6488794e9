//! From the alias to what serves it (issue 20): `modelsync resolve` on real
//! scikit-learn models logged with MLflow's client, on local `file:`
//! artifacts (the plain server), on S3 (the PostgreSQL + S3 server, S3 on
//! moto) and on proxied `mlflow-artifacts:` (refused for serving); KServe's
//! own storage downloader fetches the URI it prints, and the digest
//! recomputed over what KServe wrote equals the one modelsync recorded at
//! the move; the documented shell one-liner computes the same digest.
//! `gate.rs`: the `digest: unchanged` gate; `feed.rs`: the daemon's feeds.

mod feed;
mod gate;
mod outputs;

use std::path::{Path, PathBuf};

use modelsync::registry::Registry;
use modelsync::state::tags;
use serde_json::Value;

use crate::copy::{model, run, train};
use crate::support::cli::Workdir;
use crate::support::kserve;
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::{pair, servers};

/// A workdir whose manifest declares version `v` of `name` in `stage`
/// (and behind `champion`, where MLflow's client put it), with `gates`
/// (YAML list items) on that stage.
pub fn workdir(name: &str, v: u64, stage: &str, gates: &[&str]) -> Workdir {
    let wd = Workdir::new();
    write_manifest(&wd, name, v, stage, gates);
    wd
}

/// (Re)writes the manifest of [`workdir`].
pub fn write_manifest(wd: &Workdir, name: &str, v: u64, stage: &str, gates: &[&str]) {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
         versions:\n    current: {{version: {v}}}\n  stages:\n    {stage}: current\n  \
         aliases:\n    champion: current\n"
    );
    if !gates.is_empty() {
        m.push_str(&format!("  gates:\n    {stage}:\n"));
        for g in gates {
            m.push_str(&format!("      - {g}\n"));
        }
    }
    wd.write("m/model.yaml", &m);
}

/// The digest recorded on version `v` of `name` (`modelsync.digest`).
pub async fn recorded(srv: &MlflowServer, name: &str, v: u64) -> (String, String) {
    let m = model(&srv.registry(), name).await;
    let t = &m.versions[&v].tags;
    let digest = t.get(tags::DIGEST).cloned().unwrap_or_default();
    (
        digest,
        t.get(tags::DIGEST_FILES).cloned().unwrap_or_default(),
    )
}

/// `modelsync resolve TARGET --format json` against `srv`, which must
/// succeed.
pub fn resolve_json(srv: &MlflowServer, target: &str) -> Value {
    let wd = Workdir::new();
    let r = run(
        &wd,
        &srv.url,
        &srv.env,
        &["resolve", target, "--format", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    serde_json::from_str(&r.stdout).expect("resolve prints JSON")
}

/// The local path of a `file:///…` URI.
pub fn local_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").expect("a file:// URI"))
}

/// The shell one-liner `docs/serving.md` documents (its `sh` block).
pub fn one_liner() -> String {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/serving.md"))
            .expect("docs/serving.md");
    let (_, rest) = page.split_once("```sh\n").expect("an sh block");
    rest.split_once("```").expect("closed").0.trim().to_string()
}

/// The documented one-liner run in `dir`: its output.
pub fn one_liner_in(dir: &Path) -> String {
    let out = std::process::Command::new("bash")
        .args(["-c", &one_liner()])
        .current_dir(dir)
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The whole path on `srv`: a model logged and aliased with MLflow's
/// client; `apply` moves it into Staging (its first move records the
/// digest); `resolve` prints a URI starting `prefix` and that digest, in
/// JSON and text; KServe's downloader fetches the URI (with `kserve_env`)
/// and the digest recomputed over what it wrote is the recorded one.
async fn resolve_pin_and_fetch(srv: &MlflowServer, prefix: &str, kserve_env: &[(String, String)]) {
    let name = unique("serve");
    let v = train(srv, &name, 0.91, 1.0);
    let wd = workdir(&name, v, "Staging", &[]);
    let applied = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(
        applied
            .stdout
            .contains(&format!("version {v} tag modelsync.digest = \"sha256:")),
        "the first move records the digest: {applied:?}"
    );
    let (digest, listing) = recorded(srv, &name, v).await;
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(listing.contains(" MLmodel\n"), "{listing}");

    let doc = resolve_json(srv, &format!("{name}@champion"));
    let keys: Vec<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["digest", "model", "modelId", "run", "uri", "version"],
        "{doc}"
    );
    assert_eq!(doc["model"], name.as_str());
    assert_eq!(doc["version"], v.to_string());
    assert_eq!(doc["digest"], digest.as_str());
    let m = model(&srv.registry(), &name).await;
    assert_eq!(doc["run"], m.versions[&v].run_id.as_str());
    let model_id = doc["modelId"].as_str().expect("a logged model");
    assert!(model_id.starts_with("m-"), "{doc}");
    let uri = doc["uri"].as_str().expect("uri");
    assert!(uri.starts_with(prefix) && uri.contains(model_id), "{doc}");
    // By stage and by number, in text.
    let wd2 = Workdir::new();
    for args in [["--stage", "Staging"], ["--version", &v.to_string()]] {
        let r = run(
            &wd2,
            &srv.url,
            &srv.env,
            &["resolve", &name, args[0], args[1]],
        );
        assert_eq!(r.code, 0, "{r:?}");
        let expected = format!(
            "{name} version {v}\n  run:      {}\n  model id: {model_id}\n  uri:      {uri}\n  digest:   {digest}\n",
            m.versions[&v].run_id
        );
        assert_eq!(r.stdout, expected);
    }

    let out = tempfile::tempdir().expect("tempdir");
    kserve::download(uri, &out.path().join("model"), kserve_env);
    assert_eq!(
        kserve::digest(&out.path().join("model")),
        digest,
        "KServe fetched other bytes than the ones modelsync pinned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_pins_and_kserve_fetches_the_same_bytes_from_local_artifacts() {
    let srv = server();
    resolve_pin_and_fetch(srv, "file:///", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_pins_and_kserve_fetches_the_same_bytes_from_s3() {
    let s = servers::postgres_s3();
    let mut env = s.mlflow.env.clone();
    env.push(("AWS_ENDPOINT_URL".into(), s.s3_endpoint.clone()));
    resolve_pin_and_fetch(&s.mlflow, &format!("s3://{}/", servers::BUCKET), &env).await;
}

/// The documented one-liner, modelsync and an independent implementation
/// agree on a tree with nested folders, spaces and an empty file; the
/// digest covers the bytes (one byte changed, another digest).
#[test]
fn the_documented_one_liner_computes_modelsyncs_digest() {
    let wd = Workdir::new();
    wd.write("model/MLmodel", "flavors:\n  sklearn: {}\n");
    wd.write("model/sub dir/weights.bin", &"w".repeat(200_000));
    wd.write("model/sub dir/a b.txt", "x");
    wd.write("model/empty", "");
    let dir = wd.path().join("model");
    wd.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: local\nspec:\n  \
             versions:\n    v: {{source: \"file:{}\"}}\n  aliases:\n    champion: v\n",
            dir.display()
        ),
    );
    assert_eq!(wd.run(&["apply", "m"]).code, 0);
    let resolved = |wd: &Workdir| {
        let r = wd.run(&["resolve", "local@champion", "--format", "json"]);
        assert_eq!(r.code, 0, "{r:?}");
        let doc: Value = serde_json::from_str(&r.stdout).expect("json");
        assert_eq!(doc["uri"], format!("file://{}", dir.display()));
        doc["digest"].as_str().expect("digest").to_string()
    };
    let digest = resolved(&wd);
    assert_eq!(one_liner_in(&dir), digest);
    assert_eq!(kserve::digest(&dir), digest);
    wd.write("model/sub dir/a b.txt", "y");
    let changed = resolved(&wd);
    assert_ne!(changed, digest);
    assert_eq!(one_liner_in(&dir), changed);
}

/// A version on proxied artifacts (`mlflow-artifacts:`) is refused for
/// serving, with why and what to configure; its bytes are still read
/// through MLflow's artifact API, so its first move records the digest.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxied_version_is_refused_for_serving_with_the_reason_but_still_pinned() {
    let dev = pair::dev();
    let name = unique("serve-proxied");
    let v = train(dev, &name, 0.9, 1.0);
    let wd = workdir(&name, v, "Staging", &[]);
    let r = run(
        &wd,
        &dev.url,
        &[],
        &["resolve", &format!("{name}@champion")],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    for needle in [
        "cannot be handed to a model server",
        "mlflow-artifacts:",
        "only MLflow can follow it",
        "--no-serve-artifacts --default-artifact-root s3://",
        "--artifacts-destination",
    ] {
        assert!(r.stderr.contains(needle), "{needle:?} in {r:?}");
    }
    let applied = run(&wd, &dev.url, &[], &["apply", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let (digest, listing) = recorded(dev, &name, v).await;
    assert!(digest.starts_with("sha256:"), "{applied:?}");
    assert!(listing.contains(" MLmodel\n"), "{listing}");
    let files = dev
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert!(files.versions[&v].tags.contains_key(tags::DIGEST_FILES));
}

/// A path on this machine that a manifest wrote is never read during a
/// pass: the embedded registry (which reads no bytes in a pass) records no
/// digest for it and says why, a `digest: unchanged` gate blocks with that
/// reason; `resolve`, run by a person, reads it. On MLflow, a plan
/// registering such a path carries no digest either.
#[tokio::test(flavor = "multi_thread")]
async fn a_pass_never_reads_a_host_path_a_manifest_wrote() {
    let wd = Workdir::new();
    wd.write("secret/id_rsa", "-----BEGIN KEY-----\n");
    let secret = wd.path().join("secret");
    let manifest = |gate: bool| {
        let mut m = format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: probe\nspec:\n  \
             versions:\n    v: {{source: \"file:{}\"}}\n  stages:\n    Staging: v\n",
            secret.display()
        );
        if gate {
            m.push_str(
                "  aliases:\n    champion: v\n  gates:\n    champion:\n      - digest: unchanged\n",
            );
        }
        m
    };
    wd.write("m/model.yaml", &manifest(false));
    let r = wd.run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("modelsync.digest"), "{r:?}");
    assert!(
        r.stderr
            .contains("the embedded registry reads no artifact bytes during a pass"),
        "{r:?}"
    );
    let registry = std::fs::read_to_string(wd.registry_file()).expect("registry");
    assert!(!registry.contains("modelsync.digest"), "{registry}");
    wd.write("m/model.yaml", &manifest(true));
    let r = wd.run(&["apply", "m"]);
    assert_eq!(r.code, 5, "{r:?}");
    assert!(
        r.stdout.contains("digest unchanged")
            && r.stdout.contains("reads no artifact bytes during a pass"),
        "{r:?}"
    );
    let r = wd.run(&["resolve", "probe", "--stage", "Staging"]);
    assert_eq!(r.code, 0, "the person running resolve reads it: {r:?}");

    let srv = server();
    let on_mlflow = Workdir::new();
    let name = unique("serve-hostpath");
    on_mlflow.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  \
             versions:\n    v: {{source: \"file:{}\"}}\n  stages:\n    Staging: v\n",
            secret.display()
        ),
    );
    let r = run(
        &on_mlflow,
        &srv.url,
        &[],
        &["plan", "m", "--format", "json"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("register_version"), "{r:?}");
    assert!(!r.stdout.contains("modelsync.digest"), "{r:?}");
    assert!(
        r.stderr
            .contains("is read only once MLflow has registered it"),
        "{r:?}"
    );
}

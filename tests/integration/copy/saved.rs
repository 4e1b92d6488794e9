//! Saved plans that copy (`plan --out`, then `apply --plan`), against the
//! dev and prod servers: the plan records the source version it reviewed
//! (which version `champion` named, its run, logged model and file listing
//! digest), and `apply --plan` refuses with exit 4 and no write to prod
//! (counted through a recording proxy) when that source version was
//! deleted, its alias moved or its files changed; an unchanged source is
//! copied, its lineage naming the source's logged model. A deleted copy
//! experiment is a plan error with the hint, before any write.

use std::path::PathBuf;

use modelsync::registry::Registry;
use modelsync::state::tags;

use super::{model, run, train, workdir};
use crate::registry_facts::writes;
use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, unique};
use crate::support::pair;
use crate::support::proxy::Proxy;

/// A source model trained on dev (champion: its first version), manifests
/// copying it into a new prod model, and a recording proxy in front of
/// prod through which every command runs.
struct Case {
    dev: &'static MlflowServer,
    source: String,
    target: String,
    version: u64,
    wd: Workdir,
    proxy: Proxy,
}

impl Case {
    async fn new(prefix: &str) -> Case {
        let (dev, prod) = (pair::dev(), pair::prod());
        let source = unique(&format!("{prefix}-dev"));
        let target = unique(&format!("{prefix}-prod"));
        let version = train(dev, &source, 0.95, 1.0);
        let wd = workdir(&dev.url, &source, &target, 0.9);
        let proxy = Proxy::start(&prod.url).await;
        Case {
            dev,
            source,
            target,
            version,
            wd,
            proxy,
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        run(&self.wd, &self.proxy.url, &[], args)
    }

    /// `plan m --out plan.json`: the plan is saved (exit 0) and no write
    /// is made; answers the saved plan's JSON.
    fn save(&self) -> serde_json::Value {
        let saved = self.run(&["plan", "m", "--out", "plan.json"]);
        assert_eq!(saved.code, 0, "{saved:?}");
        assert_eq!(
            writes(&self.proxy),
            0,
            "plan wrote: {:#?}",
            self.proxy.seen()
        );
        let text = std::fs::read_to_string(self.wd.path().join("plan.json")).expect("plan.json");
        serde_json::from_str(&text).expect("JSON")
    }

    /// `apply --plan plan.json` refuses as stale: exit 4, a `stale:` line
    /// containing `why`, and not one write to prod.
    async fn refused(&self, why: &str) {
        let applied = self.run(&["apply", "--plan", "plan.json"]);
        assert_eq!(applied.code, 4, "{applied:?}");
        let stale = applied
            .stderr
            .lines()
            .find(|l| l.contains("stale: copy source") && l.contains(why));
        assert!(stale.is_some(), "no stale line with {why:?}: {applied:?}");
        assert_eq!(writes(&self.proxy), 0, "{:#?}", self.proxy.seen());
        let prod = pair::prod().registry();
        let m = prod.get_model(&self.target).await.expect("read prod");
        assert!(m.is_none(), "nothing is created in prod: {m:?}");
    }
}

/// The copy action's `from` in a saved plan's JSON.
fn copied_from(plan: &serde_json::Value) -> &serde_json::Value {
    plan["plan"]["models"][0]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == "copy_version")
        .map(|a| &a["from"])
        .expect("the plan copies")
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_copy_goes_stale_when_the_source_alias_moves() {
    let case = Case::new("stale-alias").await;
    let plan = case.save();
    assert_eq!(
        plan["observed"]["copies"][format!("dev:{}@champion", case.source)]["version"],
        case.version,
        "the plan records which version champion named: {plan}"
    );
    let moved = train(case.dev, &case.source, 0.97, 0.5);
    assert_ne!(moved, case.version);
    let why = format!("was version {}, now version {moved}", case.version);
    case.refused(&why).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_copy_goes_stale_when_the_source_version_is_deleted() {
    let case = Case::new("stale-deleted").await;
    case.save();
    case.dev.run_python(&format!(
        "from mlflow import MlflowClient\nMlflowClient().delete_model_version({:?}, {:?})\n",
        case.source,
        case.version.to_string()
    ));
    // MLflow drops a deleted version's aliases with it.
    let why = format!(
        "was version {}, now: alias champion of model {:?} does not exist in registry dev",
        case.version, case.source
    );
    case.refused(&why).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_copy_goes_stale_when_a_source_file_changes() {
    let case = Case::new("stale-files").await;
    let plan = case.save();
    let from = copied_from(&plan);
    let artifact_uri = from["artifact_uri"].as_str().expect("artifact_uri");
    let file = from["files"][0]["path"].as_str().expect("a file");
    let path = store_path(case.dev, artifact_uri).join(file);
    let mut bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{} in dev's store: {e}", path.display()));
    bytes.extend_from_slice(b"\n# rewritten after the review\n");
    std::fs::write(&path, bytes).expect("overwrite the source file");
    case.refused(&format!("version {}'s files changed", case.version))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_copy_of_an_unchanged_source_applies_and_names_its_logged_model() {
    let case = Case::new("saved-copy").await;
    let dev_version =
        model(&case.dev.registry(), &case.source).await.versions[&case.version].clone();
    let logged = dev_version.model_id.clone();
    assert!(logged.starts_with("m-"), "{dev_version:?}");
    let plan = case.save();
    assert_eq!(copied_from(&plan)["model_id"], logged.as_str(), "{plan}");
    let shown = case.run(&["plan", "m"]);
    assert!(
        shown.stdout.contains(&format!("logged model {logged}")),
        "the plan names the source's logged model: {shown:?}"
    );
    let applied = case.run(&["apply", "--plan", "plan.json"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let prod = pair::prod().registry();
    let m = model(&prod, &case.target).await;
    assert_eq!(m.versions.len(), 1, "{m:?}");
    let v = &m.versions[m.aliases.get("champion").expect("champion")];
    let lineage = &v.tags[tags::COPY_LINEAGE];
    let expected = format!("dev/{}/{}/{logged}/sha256:", case.source, case.version);
    assert!(lineage.starts_with(&expected), "{lineage} vs {expected}");
    let run_tags = run_tags(pair::prod(), &v.run_id);
    assert!(
        run_tags.contains(&format!("{}={lineage}", tags::COPY_LINEAGE)),
        "the copy's run carries the same lineage: {run_tags}"
    );
    let again = case.run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "converged: {again:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleted_copy_experiment_is_a_plan_error_with_zero_writes() {
    let (dev, prod) = (pair::dev(), pair::prod());
    let source = unique("copyexp-dev");
    let target = unique("copyexp-prod");
    let experiment = unique("copies-deleted");
    train(dev, &source, 0.95, 1.0);
    prod.run_python(&format!(
        "import mlflow\nmlflow.delete_experiment(mlflow.create_experiment('{experiment}'))\n"
    ));
    let wd = workdir(&dev.url, &source, &target, 0.9);
    let manifest = std::fs::read_to_string(wd.path().join("m/model.yaml")).expect("manifest");
    let manifest = manifest.replace(
        "alias: champion}",
        &format!("alias: champion, experiment: {experiment}}}"),
    );
    wd.write("m/model.yaml", &manifest);
    let proxy = Proxy::start(&prod.url).await;
    for cmd in ["plan", "apply"] {
        let r = run(&wd, &proxy.url, &[], &[cmd, "m"]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        let hint = format!("the copy's experiment {experiment:?} is deleted (id ");
        assert!(
            r.stdout.contains("m/model.yaml:7:")
                && r.stdout.contains(&hint)
                && r.stdout
                    .contains("mlflow experiments restore --experiment-id")
                && r.stdout.contains("mlflow gc"),
            "{cmd}: {r:?}"
        );
    }
    assert_eq!(writes(&proxy), 0, "{:#?}", proxy.seen());
    let m = prod.registry().get_model(&target).await.expect("read");
    assert!(m.is_none(), "the model is not created: {m:?}");
}

/// Where dev keeps the files of `mlflow-artifacts:/…` (its
/// `--artifacts-destination`).
fn store_path(dev: &MlflowServer, artifact_uri: &str) -> PathBuf {
    let rel = artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .unwrap_or_else(|| panic!("a proxied artifact location: {artifact_uri}"))
        .trim_start_matches('/');
    dev.dir.join("artifacts").join(rel)
}

/// The tags of run `run_id` on `srv`, one `key=value` per line.
fn run_tags(srv: &MlflowServer, run_id: &str) -> String {
    srv.run_python(&format!(
        "from mlflow import MlflowClient\nfor k, v in sorted(MlflowClient().get_run({run_id:?}).data.tags.items()):\n    print(f'{{k}}={{v}}')\n"
    ))
}

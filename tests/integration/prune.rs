//! `--prune` removes only what modelsync set before (its inventory tag),
//! on both registries: a hand-made alias survives, nothing is removed
//! without `--prune`, and nothing is ever deleted but aliases.

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::{LiveModel, Stage};

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};

fn manifest(name: &str, with_challenger: bool) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n  stages:\n    Production: a\n"
    );
    if with_challenger {
        m.push_str("    Staging: b\n");
    }
    m.push_str("  aliases:\n    champion: a\n");
    if with_challenger {
        m.push_str("    challenger: b\n");
    }
    m
}

async fn scenario(mlflow: bool) {
    let w = Workdir::new();
    let name = unique("prune");
    let uri = if mlflow {
        server().url.clone()
    } else {
        w.registry_uri()
    };
    let run = |args: &[&str]| -> Run {
        let mut all = vec!["--registry", uri.as_str()];
        all.extend_from_slice(args);
        w.run(&all)
    };
    let model = || async {
        let m: Option<LiveModel> = if mlflow {
            server().registry().get_model(&name).await.expect("read")
        } else {
            EmbeddedRegistry::open(&w.registry_file(), false)
                .expect("open")
                .get_model(&name)
                .await
                .expect("read")
        };
        m.expect("model")
    };
    w.write("m/model.yaml", &manifest(&name, true));
    assert_eq!(run(&["apply", "m"]).code, 0);
    // A hand-made alias, which modelsync does not own.
    if mlflow {
        server()
            .registry()
            .set_alias(&name, "hand", 2)
            .await
            .expect("alias");
    } else {
        let reg = EmbeddedRegistry::open(&w.registry_file(), true).expect("open");
        reg.set_alias(&name, "hand", 2).await.expect("alias");
        reg.flush().await.expect("flush");
    }
    w.write("m/model.yaml", &manifest(&name, false));
    // Without --prune nothing is removed.
    let r = run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = model().await;
    assert_eq!(m.aliases.get("challenger"), Some(&2));
    assert_eq!(m.versions[&2].stage, Stage::Staging);
    // With --prune: the owned alias and stage go, the hand-made alias stays.
    let r = run(&["plan", "m", "--prune", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains("challenger") && !r.stdout.contains("alias hand"),
        "{r:?}"
    );
    let r = run(&["apply", "m", "--prune"]);
    assert_eq!(r.code, 0, "{r:?}");
    let m = model().await;
    assert_eq!(m.aliases.get("challenger"), None);
    assert_eq!(
        m.aliases.get("hand"),
        Some(&2),
        "a hand-made alias was pruned"
    );
    assert_eq!(m.versions[&2].stage, Stage::Archived);
    assert_eq!(m.versions.len(), 2, "versions are never deleted");
    assert_eq!(
        run(&["plan", "m", "--prune", "--detailed-exitcode"]).code,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_owned_targets_embedded() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_only_owned_targets_mlflow() {
    scenario(true).await;
}

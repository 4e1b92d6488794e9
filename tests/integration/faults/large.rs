//! Answers of 1 MiB or more are decoded as their bytes arrive, never held
//! whole (`registry/mlflow/client/streamed.rs`): a real answer inflated
//! past that by the proxy decodes to the same versions, through the
//! per-model search and the bulk pages alike, and one that is not JSON is
//! an error that shows its first bytes.

use std::collections::BTreeSet;

use modelsync::registry::{Registry, Scope, SnapshotRequest};

use super::{fast, snapshot_of, source, via};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy};

const VERSIONS: &str = "model-versions/search";

#[tokio::test]
async fn large_answers_are_decoded_as_they_arrive() {
    let srv = server();
    let name = unique("large");
    let direct = srv.registry();
    direct
        .create_model(&name, None, &Default::default())
        .await
        .expect("create model");
    let marker = format!("s3://b/{name}/marker");
    direct
        .create_version(&name, &source(&marker))
        .await
        .expect("register");
    let long = format!("s3://b/{name}/{}", "x".repeat(1_200_000));
    let proxy = Proxy::start(&srv.url).await;
    proxy.fail(
        "GET",
        VERSIONS,
        Fault::RewriteAnswer(marker.clone(), long.clone()),
        1000,
    );
    let reg = via(&proxy, fast());
    // One model: its own search; more names than the per-model reads
    // take: the bulk pages (every model, folded as decoded).
    let many: BTreeSet<String> = std::iter::once(name.clone())
        .chain((0..30).map(|i| format!("{name}-absent-{i}")))
        .collect();
    for models in [Scope::Named([name.clone()].into()), Scope::Named(many)] {
        let live = reg
            .snapshot(&SnapshotRequest {
                models,
                experiments: Default::default(),
            })
            .await
            .expect("snapshot");
        let version = &live.models[&name].versions[&1];
        assert_eq!(version.source.len(), long.len());
        assert!(version.source == long, "the inflated source, whole");
    }
    assert!(proxy.count("GET", VERSIONS) >= 2);

    let broken = Proxy::start(&srv.url).await;
    let not_json = format!("{{\"model_versions\": [{}", "x".repeat(1_200_000));
    broken.fail("GET", VERSIONS, Fault::Answer(200, not_json), 1000);
    let err = via(&broken, fast())
        .snapshot(&snapshot_of(&name))
        .await
        .expect_err("not JSON");
    let msg = err.to_string();
    assert!(
        msg.contains("unexpected answer from")
            && msg.contains("body starts \"{\\\"model_versions\\\": [xxx"),
        "{msg}"
    );
    assert!(msg.len() < 1_000, "only the body's first bytes are shown");
    assert_eq!(broken.count("GET", VERSIONS), 1, "not retried");
}

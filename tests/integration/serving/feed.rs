//! The daemon's feed, `GET /feeds/MODEL/ALIAS.json`, against the real
//! server: what the last pass read (the version, the URI, the digest
//! recorded at the move, when modelsync moved the alias), in the shape
//! Renovate's custom datasource reads; 404 for an unknown model or alias;
//! names percent-encoded in the path; no registry request per GET.

use std::time::Duration;

use serde_json::Value;

use super::recorded;
use crate::copy::train;
use crate::support::cli::Workdir;
use crate::support::daemon::Daemon;
use crate::support::mlflow::{server, unique};

#[tokio::test(flavor = "multi_thread")]
async fn the_feed_serves_what_stands_behind_an_alias() {
    let srv = server();
    let name = format!("{} feed", unique("serve"));
    let v = train(srv, &name, 0.9, 1.0);
    let wd = Workdir::new();
    wd.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
             versions:\n    current: {{version: {v}}}\n  aliases:\n    serving: current\n"
        ),
    );
    let mut cmd = wd.command(&["watch", "m"]);
    cmd.env("MODELSYNC_REGISTRY", &srv.url);
    let mut daemon = Daemon::start(cmd);
    daemon.wait_status("a successful reconcile", Duration::from_secs(120), |s| {
        s["last_success_at"].is_string()
    });
    let path = format!("/feeds/{}/serving.json", name.replace(' ', "%20"));
    let got = daemon.get(&path);
    assert_eq!(got.status, 200, "{got:?}");
    let doc: Value = serde_json::from_str(&got.body).expect("feed JSON");
    let (digest, _) = recorded(srv, &name, v).await;
    assert!(digest.starts_with("sha256:"), "pinned at the move");
    assert_eq!(doc["model"], name.as_str());
    assert_eq!(doc["alias"], "serving");
    assert_eq!(doc["version"], v.to_string());
    assert_eq!(doc["digest"], digest.as_str());
    let uri = doc["uri"].as_str().expect("a fetchable URI");
    assert!(uri.starts_with("file:///"), "{doc}");
    let at = doc["promotedAt"].as_str().expect("moved by modelsync");
    assert!(at.ends_with('Z'), "{doc}");
    assert_eq!(
        doc["releases"],
        serde_json::json!([{"version": v.to_string(), "digest": digest,
                            "releaseTimestamp": at, "uri": uri}])
    );
    // MLflow's client set `champion`: no move time, no null in the release.
    let champion = daemon.get(&format!(
        "/feeds/{}/champion.json",
        name.replace(' ', "%20")
    ));
    assert_eq!(champion.status, 200, "{champion:?}");
    let doc: Value = serde_json::from_str(&champion.body).expect("feed JSON");
    assert_eq!(doc["promotedAt"], Value::Null);
    assert!(
        doc["releases"][0].get("releaseTimestamp").is_none(),
        "{doc}"
    );

    for missing in [
        format!("/feeds/{}/nope.json", name.replace(' ', "%20")),
        "/feeds/no-such-model/serving.json".to_string(),
        format!("/feeds/{}/serving", name.replace(' ', "%20")),
    ] {
        assert_eq!(daemon.get(&missing).status, 404, "{missing}");
    }
    // Served from memory: GETs send nothing about the model to the
    // registry (the server is shared: only this model's requests count).
    let unique_part = name.split(' ').next().expect("name").to_string();
    let about = || srv.count_requests(&unique_part);
    let before = about();
    for _ in 0..3 {
        assert_eq!(daemon.get(&path).status, 200);
    }
    assert_eq!(about(), before, "a GET asked the registry");
    assert_eq!(daemon.terminate(Duration::from_secs(60)), 0);
}

//! `modelsync lease show` and `lease release --force` on MLflow (another
//! applier's lease) and on the embedded registry (nothing to show).

use super::lease::{foreign_lease, lease_holder};
use crate::support::cli::Workdir;
use crate::support::mlflow::server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_show_and_force_release() {
    let srv = server();
    let w = Workdir::new();
    let uri = srv.url.as_str();
    let r = w.run(&["--registry", uri, "lease", "show"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("No applier lease is held"), "{r:?}");

    let holder = foreign_lease(&w, 600_000).await;
    let r = w.run(&["--registry", uri, "lease", "show"]);
    assert_eq!(r.code, 0, "{r:?}");
    for s in [
        "holder:  elsewhere:1:feedface",
        "host:    elsewhere",
        "pid:     1",
        "started:",
        "expires:",
    ] {
        assert!(r.stdout.contains(s), "{s}: {r:?}");
    }
    let r = w.run(&["--registry", uri, "lease", "show", "--format", "json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(j["held"], true);
    assert_eq!(j["holder"], holder.as_str());
    assert_eq!(j["host"], "elsewhere");
    assert_eq!(j["pid"], 1);
    assert!(j["expires_in_s"].as_i64().is_some_and(|s| s > 500), "{j}");

    // No terminal and no --yes: refused, the lease stays.
    let r = w.run(&["--registry", uri, "lease", "release", "--force"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("--yes"), "{r:?}");
    assert_eq!(lease_holder(&w).await, Some(holder.clone()));
    // --force is required.
    let r = w.run(&["--registry", uri, "lease", "release", "--yes"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(lease_holder(&w).await, Some(holder.clone()));

    let r = w.run(&["--registry", uri, "lease", "release", "--force", "--yes"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("elsewhere:1:feedface"), "{r:?}");
    assert!(lease_holder(&w).await.is_none(), "released");
    let r = w.run(&["--registry", uri, "lease", "show"]);
    assert!(
        r.code == 0 && r.stdout.contains("No applier lease"),
        "{r:?}"
    );
}

#[test]
fn the_embedded_registry_has_no_lease_to_show() {
    let w = Workdir::new();
    for args in [
        &["lease", "show"][..],
        &["lease", "release", "--force", "--yes"],
    ] {
        let r = w.run(args);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stderr.contains("file lock"), "{r:?}");
    }
}

//! `onFailure: rollback`: a verification that fails rolls the target back
//! to the version that held it before (the audit trail's), holds it there
//! (the hold of `state::hold`, placed by `apply::rollback`), `apply` exits
//! 6, and neither `apply` nor the daemon's pass moves the target back to
//! the failed version while the hold stands.

use modelsync::state::hold::{Cause, holds};
use modelsync::state::verification::State;
use modelsync::state::{LiveModel, Stage};

use super::{finish, manifest, record, spawn};
use crate::copy::{model, run, train};
use crate::support::cli::Workdir;
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::scoring::failing;

/// A model `prefix-…` with versions 1 and 2 trained: version 1 moved
/// into Staging by `apply` (the audit trail's previous holder), then the
/// manifests declaring version 2 there, verified against the endpoint
/// that answers 500 with `onFailure: rollback` (every 1 s, failed after
/// 4 s). Returns the model's name and the two versions.
pub fn failing_after_a_first_move(
    srv: &MlflowServer,
    wd: &Workdir,
    prefix: &str,
) -> (String, u64, u64) {
    let name = unique(prefix);
    let v1 = train(srv, &name, 0.9, 1.0);
    let v2 = train(srv, &name, 0.92, 2.0);
    wd.write(
        "m/model.yaml",
        &format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
             stages:\n    Staging: {v1}\n"
        ),
    );
    let first = run(wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(first.code, 0, "{first:?}");
    let checks = [format!(
        r#"http: {{url: "{}/invocations", method: POST, body: '{{"inputs": [[0.0]]}}'}}"#,
        failing()
    )];
    let timing = "every: 1s\ntimeout: 4s\nonFailure: rollback";
    wd.write("m/model.yaml", &manifest(&name, v2, &checks, timing));
    (name, v1, v2)
}

/// The model, and the versions in its Staging.
async fn in_staging(srv: &MlflowServer, name: &str) -> (LiveModel, Vec<u64>) {
    let m = model(&srv.registry(), name).await;
    let staged = m.holders(Stage::Staging).map(|v| v.version).collect();
    (m, staged)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_verification_rolls_back_to_the_previous_holder_and_holds_it() {
    let srv = server();
    let wd = Workdir::new();
    let (name, v1, v2) = failing_after_a_first_move(srv, &wd, "rollback");
    let failed = finish(spawn(&wd, srv, &["apply", "m"])).await;
    assert_eq!(failed.code, 6, "{failed:?}");
    assert!(
        failed
            .stderr
            .contains(&format!("rolled back to version {v1}, held")),
        "{failed:?}"
    );
    let r = record(srv, &name, v2).await.expect("recorded");
    assert_eq!(r.state, State::Failed, "{r:?}");
    assert_eq!(
        r.then.as_deref(),
        Some(format!("rolled back to version {v1}, held").as_str())
    );
    let (m, staged) = in_staging(srv, &name).await;
    assert_eq!(staged, vec![v1], "rolled back");
    let hold = holds(&m).remove("Staging").expect("held");
    assert_eq!(
        (hold.version, hold.cause),
        (v1, Cause::Rollback),
        "{hold:?}"
    );
    assert!(hold.reason.contains("status 500"), "{hold:?}");
    // `history` shows the verification of the move: state, when, what
    // was observed and what was done.
    let history = run(&wd, &srv.url, &srv.env, &["history", &name]);
    assert!(
        history.stdout.contains("verification: failed at ")
            && history
                .stdout
                .contains(&format!("(rolled back to version {v1}, held)"))
            && history
                .stdout
                .contains("status 500, expected 200 (failing)"),
        "{history:?}"
    );
    let json = run(
        &wd,
        &srv.url,
        &srv.env,
        &["history", &name, "--format", "json"],
    );
    let events: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let moved = (events.as_array().expect("events").iter())
        .find(|e| e["version"] == v2 && e["target"] == "Staging")
        .expect("the move of the failed version");
    assert_eq!(moved["verification"]["state"], "failed", "{moved:#}");
    assert_eq!(
        moved["verification"]["checks"][0]["observed"], "status 500, expected 200",
        "{moved:#}"
    );

    // Held: apply and the daemon's pass leave it, the manifests still
    // declaring the failed version.
    for args in [&["apply", "m"][..], &["watch", "m", "--once"][..]] {
        let again = run(&wd, &srv.url, &srv.env, args);
        assert_eq!(again.code, 0, "{args:?}: {again:?}");
        assert!(again.stdout.contains("held"), "{args:?}: {again:?}");
        let (_, staged) = in_staging(srv, &name).await;
        assert_eq!(staged, vec![v1], "{args:?} left the hold: {again:?}");
    }
}

//! `onFailure: rollback`: a verification that fails rolls the target back
//! to the version that held it before (the audit trail's), holds it there
//! (the hold of `state::hold`, placed by `apply::rollback`), `apply` exits
//! 6, and neither `apply` nor the daemon's pass moves the target back to
//! the failed version while the hold stands.

use modelsync::registry::Registry;
use modelsync::state::Stage;
use modelsync::state::hold::{Cause, holds};
use modelsync::state::verification::State;

use super::{finish, manifest, record, spawn};
use crate::copy::{run, train};
use crate::support::cli::Workdir;
use crate::support::mlflow::{server, unique};
use crate::support::scoring::failing;

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_verification_rolls_back_to_the_previous_holder_and_holds_it() {
    let srv = server();
    let name = unique("rollback");
    let v1 = train(srv, &name, 0.9, 1.0);
    let v2 = train(srv, &name, 0.92, 2.0);
    let wd = Workdir::new();
    let staging = |v: u64| {
        format!(
            "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
             stages:\n    Staging: {v}\n"
        )
    };
    wd.write("m/model.yaml", &staging(v1));
    let first = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(first.code, 0, "{first:?}");

    let checks = [format!(
        r#"http: {{url: "{}/invocations", method: POST, body: '{{"inputs": [[0.0]]}}'}}"#,
        failing()
    )];
    wd.write(
        "m/model.yaml",
        &manifest(
            &name,
            v2,
            &checks,
            "every: 1s\ntimeout: 4s\nonFailure: rollback",
        ),
    );
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
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    let staged: Vec<u64> = m.holders(Stage::Staging).map(|v| v.version).collect();
    assert_eq!(staged, vec![v1], "rolled back");
    let hold = holds(&m).remove("Staging").expect("held");
    assert_eq!(
        (hold.version, hold.cause),
        (v1, Cause::Rollback),
        "{hold:?}"
    );
    assert!(hold.reason.contains("status 500"), "{hold:?}");

    // Held: apply and the daemon's pass leave it, the manifests still
    // declaring the failed version.
    for args in [&["apply", "m"][..], &["watch", "m", "--once"][..]] {
        let again = run(&wd, &srv.url, &srv.env, args);
        assert_eq!(again.code, 0, "{args:?}: {again:?}");
        assert!(again.stdout.contains("held"), "{args:?}: {again:?}");
        let m = srv
            .registry()
            .get_model(&name)
            .await
            .expect("read")
            .expect("model");
        let staged: Vec<u64> = m.holders(Stage::Staging).map(|v| v.version).collect();
        assert_eq!(staged, vec![v1], "{args:?} left the hold: {again:?}");
    }
}

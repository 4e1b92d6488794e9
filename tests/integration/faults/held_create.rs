//! Issue 17, point 6: exactly once, also when a request is slower than the
//! timeout. The proxy holds the first `model-versions/create` past the
//! client's timeout and forwards it only once the re-sent create was
//! answered, so both land at MLflow 3.17.2 — the held one last, a late
//! twin. The apply removes the twin before any move: one version with the
//! declared source remains, and the stage and alias point at it.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{server, unique};
use crate::support::proxy::{Fault, Proxy};

const CREATE: &str = "model-versions/create";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_held_past_the_timeout_leaves_exactly_one_version() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let w = Workdir::new();
    let name = unique("held");
    let source = format!("s3://bucket/{name}/a");
    w.write(
        &format!("m/{name}.yaml"),
        &crate::support::backend::manifest(
            &name,
            &format!(
                "  versions:\n    a: {{source: \"{source}\"}}\n  stages:\n    Production: a\n  aliases:\n    champion: a\n"
            ),
        ),
    );
    proxy.fail("POST", CREATE, Fault::HoldUntilAnswered(CREATE.into()), 1);
    let start = std::time::Instant::now();
    // Long enough for every other request to be answered in time on a
    // loaded machine: only the held one times out.
    let r = Run::from_command(
        w.command(&["--registry", &proxy.url, "apply", "m"])
            .env("MODELSYNC_HTTP_TIMEOUT", "15s"),
    );
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{r:?}");

    // Both attempts reached MLflow and were accepted: the held one last.
    let creates = proxy.answered(CREATE);
    assert_eq!(
        creates.iter().filter(|a| a.status == 200).count(),
        2,
        "the held create and its re-send both landed: {creates:?}"
    );
    assert!(
        creates.last().is_some_and(|a| a.held),
        "the held create landed after the re-send: {creates:?}"
    );

    // Read directly on the server: one version with that source, the moves
    // on it, and the twin deleted.
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("the model exists");
    let with_source: Vec<u64> = m
        .versions
        .values()
        .filter(|v| v.source == source)
        .map(|v| v.version)
        .collect();
    assert_eq!(with_source.len(), 1, "a source registered twice: {m:?}");
    let kept = with_source[0];
    assert_eq!(m.versions.len(), 1, "{m:?}");
    assert_eq!(m.aliases.get("champion"), Some(&kept), "{m:?}");
    assert_eq!(m.versions[&kept].stage, Stage::Production, "{m:?}");
    assert_eq!(proxy.count("DELETE", "model-versions/delete"), 1);
    assert!(r.stderr.contains("landed after it was sent again"), "{r:?}");

    let plan = w.run(&["--registry", &srv.url, "plan", "m", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "converged: {plan:?}");
    crate::harness_note!(
        "faults: an apply whose create was held past a 15 s timeout took {:.1} s",
        took.as_secs_f64()
    );
}

//! The MLflow version matrix (`support::servers::MATRIX`): the registry
//! conformance scenarios, the binary's core scenario and the prompt
//! scenario (applied and loaded back by that version's own client on 3.x,
//! refused on 2.x) against every version, one server at a time. The suite's own versions (3.17.2, 2.22.5)
//! reuse their shared servers; the others are started here and stopped
//! when their run ends, so only one extra server runs at once.

use std::time::Instant;

use crate::support::mlflow::{self, MLFLOW_VERSION, MlflowServer, unique};
use crate::support::proxy::Proxy;
use crate::support::servers::{MATRIX, MLFLOW2_VERSION, mlflow2};

use super::core_scenario;

/// Stops a server this test started, also when a scenario panics.
struct Owned(MlflowServer);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.stop();
    }
}

async fn run_version(version: &'static str) {
    let owned;
    let srv: &MlflowServer = match version {
        MLFLOW_VERSION => mlflow::server(),
        MLFLOW2_VERSION => mlflow2(),
        _ => {
            let label = format!("matrix-{version}");
            owned = Owned(
                mlflow::start_sqlite(version, &label)
                    .unwrap_or_else(|why| panic!("MLflow {version} is not available:\n{why}")),
            );
            &owned.0
        }
    };
    // The server says it runs the version the matrix names.
    let said = reqwest::get(format!("{}/version", srv.url))
        .await
        .expect("GET /version")
        .text()
        .await
        .expect("its body");
    assert_eq!(
        said.trim(),
        version,
        "the server on {} runs {said}",
        srv.url
    );
    let label = format!("mx{}", version.replace('.', ""));
    crate::conformance::run_all(&srv.registry(), &label).await;
    let proxy = Proxy::start(&srv.url).await;
    core_scenario(srv, &srv.registry(), &unique(&label), &[], Some(&proxy)).await;
    crate::prompts::prompt_scenario(srv, version, &unique(&format!("{label}-prompt")));
}

#[test]
fn conformance_and_core_scenario_on_every_version() {
    let mut failed = Vec::new();
    for (version, why) in MATRIX {
        let started = Instant::now();
        // Each version on its own thread and runtime, as a test of its own
        // would run, so one failing version does not hide how the others
        // fare. (Not a task on one runtime: the scenarios block on the
        // binary, and a blocked worker would starve the proxy's tasks.)
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(run_version(version))
        })
        .join();
        crate::harness_note!(
            "matrix: MLflow {version} ({why}): {} in {:.1} s",
            if outcome.is_ok() { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if outcome.is_err() {
            failed.push(*version);
        }
    }
    assert!(
        failed.is_empty(),
        "the matrix failed on MLflow {failed:?} (their panics are printed above)"
    );
}

//! The `modelsync` binary against the server set-ups teams really run
//! (issue 6): PostgreSQL + S3, basic-auth + TLS, MLflow 2.x. Each
//! configuration's server is started once, lazily, by
//! `support/servers.rs`; the configurations' tests run in parallel.
//!
//! [`core_scenario`] is the same register / promote-with-archive / aliases /
//! drift-repair / no-op run on each of them.

mod auth_tls;
mod matrix;
mod mlflow2;
mod postgres_s3;
mod workspaces;

use modelsync::registry::Registry;
use modelsync::registry::mlflow::MlflowRegistry;
use modelsync::state::Stage;

use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::MlflowServer;
use crate::support::proxy::Proxy;

/// Runs the binary against `url` with the server's client environment
/// (S3 endpoint and keys, CA bundle, credentials) plus `env`, which wins.
pub fn cli(w: &Workdir, srv: &MlflowServer, url: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut all = vec!["--registry", url];
    all.extend_from_slice(args);
    let mut cmd = w.command(&all);
    for (k, v) in &srv.env {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run modelsync");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Two versions from `s3://` sources; `prod` holds Production and
/// champion; `challenger` points at b when asked.
pub fn manifest(name: &str, prod: &str, challenger: bool) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  description: server setups\n  tags: {{team: ml}}\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n  stages:\n    Production: {prod}\n  aliases:\n    champion: {prod}\n"
    );
    if challenger {
        m.push_str("    challenger: b\n");
    }
    m
}

/// Writes (non-GET, non-search requests) a proxy saw, leaving out the
/// applier lease's own create/delete.
pub fn writes_besides_lease(proxy: &Proxy) -> Vec<String> {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method != "GET" && !s.path.contains("search"))
        .filter(|s| {
            !(s.path.contains("registered-models/create")
                || s.path.contains("registered-models/delete"))
        })
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

/// Register, promote with archive, aliases, drift repair and a no-op apply
/// on one server. `reg` reads and makes the hand-made drift; `env` is the
/// binary's extra environment; `proxy_url` is set for plain-HTTP servers,
/// where a counting proxy checks that the no-op apply makes zero writes.
pub async fn core_scenario(
    srv: &MlflowServer,
    reg: &MlflowRegistry,
    name: &str,
    env: &[(&str, &str)],
    proxy: Option<&Proxy>,
) {
    let w = Workdir::new();
    let lease = format!("{name}-lease");
    let mut env = env.to_vec();
    env.push(("MODELSYNC_LEASE_MODEL", &lease));
    let run = |args: &[&str]| cli(&w, srv, &srv.url, &env, args);
    w.write("m/model.yaml", &manifest(name, "a", false));
    let r = run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    w.write("m/model.yaml", &manifest(name, "b", true));
    let r = run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = reg.get_model(name).await.expect("read").expect("model");
    assert_eq!(model.versions[&1].stage, Stage::Archived, "{model:#?}");
    assert_eq!(model.versions[&2].stage, Stage::Production, "{model:#?}");
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert_eq!(model.aliases.get("challenger"), Some(&2));
    assert_eq!(model.tags.get("team").map(String::as_str), Some("ml"));
    assert_eq!(model.description, "server setups");
    assert!(
        reg.get_model(&lease).await.expect("read").is_none(),
        "the lease model was not released"
    );

    // Drift made by hand is planned and repaired.
    reg.set_alias(name, "champion", 1)
        .await
        .expect("hand-made alias move");
    reg.transition_stage(name, 1, Stage::Production)
        .await
        .expect("hand-made promotion");
    let r = run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run(&["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let model = reg.get_model(name).await.expect("read").expect("model");
    assert_eq!(model.aliases.get("champion"), Some(&2));
    assert_eq!(model.versions[&1].stage, Stage::Archived);
    assert_eq!(model.versions[&2].stage, Stage::Production);
    assert_eq!(model.versions.len(), 2, "a source was registered twice");

    // Converged: plan says so, and a second apply makes zero writes.
    let r = run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{r:?}");
    if let Some(proxy) = proxy {
        let r = cli(&w, srv, &proxy.url, &env, &["apply", "m"]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(r.stdout.contains("No changes"), "{r:?}");
        let writes = writes_besides_lease(proxy);
        assert!(writes.is_empty(), "writes on a no-op apply: {writes:#?}");
        let reads = proxy.seen().iter().filter(|s| s.method == "GET").count();
        assert!(
            reads <= 10,
            "{reads} reads for a no-op apply: {:#?}",
            proxy.seen()
        );
    }
}

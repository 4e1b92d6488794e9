//! Verification after a move (issue 19, points 1 and 2) against the real
//! MLflow 3.17.2 server and a real scoring server (`mlflow models serve`
//! of a scikit-learn model, `support::scoring`): an HTTP check on its
//! predictions and an online metric logged after the move verify a move
//! to Staging; an endpoint answering 500 fails it (exit 6, also through
//! `apply --plan`); `apply --no-wait` records `verifying` and returns;
//! `verifiedIn` blocks Production until the version verified in Staging
//! (exit 5), then passes. Every wait is on a condition with a deadline of minutes.

mod daemon;
mod replicas;
pub mod rollback;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use modelsync::registry::Registry;
use modelsync::state::verification::{Record, State};

use crate::copy::{run, train};
use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::scoring::{failing, scoring};

/// A manifest declaring version `v` of `name` in Staging, verified there
/// by `checks` (YAML list items) with `timing` (`every`, `for`, `timeout`
/// lines).
pub fn manifest(name: &str, v: u64, checks: &[String], timing: &str) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
         versions:\n    candidate: {{version: {v}}}\n  stages:\n    Staging: candidate\n"
    );
    m.push_str("  verify:\n    Staging:\n      checks:\n");
    for c in checks {
        m.push_str(&format!("        - {c}\n"));
    }
    for line in timing.lines() {
        m.push_str(&format!("      {}\n", line.trim()));
    }
    m
}

/// A manifest declaring version `v` of `name` in Production, gated on
/// `verifiedIn: Staging`.
fn production(name: &str, v: u64) -> String {
    format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name:?}\nspec:\n  \
         versions:\n    candidate: {{version: {v}}}\n  stages:\n    Production: candidate\n  \
         gates:\n    Production:\n      - verifiedIn: Staging\n"
    )
}

/// The HTTP check on the scoring server's predictions for [[0], [3]].
pub fn predictions_check() -> String {
    format!(
        r#"http: {{url: "{}/invocations", method: POST, body: '{{"inputs": [[0.0], [3.0]]}}', expect: {{status: 200, condition: "size(body.predictions) == 2 && body.predictions[1] == 1"}}}}"#,
        scoring().url
    )
}

/// The verification of version `v` of `name` in Staging, when recorded.
pub async fn record(srv: &MlflowServer, name: &str, v: u64) -> Option<Record> {
    let m = srv.registry().get_model(name).await.expect("read")?;
    m.versions[&v]
        .tags
        .get("modelsync.verified.Staging")
        .map(|t| Record::parse(t))
}

/// Waits (a few minutes at most) until the record satisfies `ok`.
pub async fn wait_record(
    srv: &MlflowServer,
    name: &str,
    v: u64,
    what: &str,
    ok: impl Fn(&Record) -> bool,
) -> Record {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let r = record(srv, name, v).await;
        if let Some(r) = r.as_ref().filter(|r| ok(r)) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "{what}: last record {r:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `modelsync ARGS` against `srv`, started in the background.
pub fn spawn(wd: &Workdir, srv: &MlflowServer, args: &[&str]) -> Child {
    wd.command(args)
        .env("MODELSYNC_REGISTRY", &srv.url)
        .env("MODELSYNC_HTTP_BACKOFF", "50ms")
        .envs(srv.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start modelsync")
}

/// Waits for `child` (minutes at most).
pub async fn finish(child: Child) -> Run {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"));
    let out = tokio::time::timeout(Duration::from_secs(400), out)
        .await
        .expect("the command ended within 400 s")
        .expect("joined");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Logs `online_auc` = `value` against the logged model of version `v`,
/// from a run of the model's own experiment (as an online evaluation job
/// would).
pub fn log_online_auc(srv: &MlflowServer, name: &str, v: u64, value: f64) {
    // MLflow 3.17.2 answers no model_id for a version registered by
    // log_model; its source names the logged model (`models:/m-…`).
    let model_id = format!(
        "(lambda mv: mv.model_id or mv.source.rsplit('/', 1)[-1])(MlflowClient().get_model_version({name:?}, '{v}'))"
    );
    let exp = format!("{name}-training");
    crate::logged_metrics::log_on_logged_model(srv, &exp, &model_id, "online_auc", &[("", value)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_to_staging_is_verified_by_the_scoring_server_and_an_online_metric_logged_after_it()
{
    let srv = server();
    let name = unique("verified");
    train(srv, &name, 0.9, 1.0);
    let v = train(srv, &name, 0.92, 2.0);
    // Evidence from before the move does not count.
    log_online_auc(srv, &name, v, 0.99);
    let checks = [
        predictions_check(),
        "{metric: online_auc, atLeast: 0.8}".to_string(),
    ];
    let wd = Workdir::new();
    wd.write(
        "m/model.yaml",
        &manifest(&name, v, &checks, "every: 1s\nfor: 2s\ntimeout: 5m"),
    );
    let apply = spawn(&wd, srv, &["apply", "m"]);
    // The HTTP check passes; the metric has no value since the move yet.
    let waiting = wait_record(srv, &name, v, "a round without the metric", |r| {
        r.rounds >= 2 && r.checks.len() == 2
    })
    .await;
    assert_eq!(waiting.state, State::Verifying, "{waiting:?}");
    assert!(waiting.checks[0].ok, "{waiting:?}");
    assert_eq!(
        waiting.checks[0].observed, "status 200, condition true",
        "{waiting:?}"
    );
    assert!(!waiting.checks[1].ok, "{waiting:?}");
    assert!(
        waiting.checks[1].observed.contains("since the move"),
        "{waiting:?}"
    );
    log_online_auc(srv, &name, v, 0.93);
    let done = finish(apply).await;
    assert_eq!(done.code, 0, "{done:?}");
    assert!(
        done.stderr.contains(&format!("version {v} in Staging")),
        "progress and the outcome are said: {done:?}"
    );
    let r = record(srv, &name, v).await.expect("recorded");
    assert_eq!(r.state, State::Verified, "{r:?}");
    assert!(r.verified_at().is_some(), "{r:?}");
    assert!(
        r.checks[1].ok && r.checks[1].observed.starts_with("online_auc 0.93"),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_endpoint_fails_the_verification_with_exit_6_also_through_a_saved_plan() {
    let srv = server();
    let name = unique("failing");
    train(srv, &name, 0.9, 1.0);
    let v = train(srv, &name, 0.92, 2.0);
    let checks = [format!(
        r#"http: {{url: "{}/invocations", method: POST, body: '{{"inputs": [[0.0]]}}'}}"#,
        failing()
    )];
    let wd = Workdir::new();
    wd.write(
        "m/model.yaml",
        &manifest(&name, v, &checks, "every: 1s\ntimeout: 4s"),
    );
    let plan = run(
        &wd,
        &srv.url,
        &srv.env,
        &["plan", "m", "--out", "plan.json"],
    );
    assert_eq!(plan.code, 0, "{plan:?}");
    let applied = finish(spawn(&wd, srv, &["apply", "--plan", "plan.json"])).await;
    assert_eq!(applied.code, 6, "{applied:?}");
    assert!(
        applied.stderr.contains("status 500, expected 200"),
        "{applied:?}"
    );
    let r = record(srv, &name, v).await.expect("recorded");
    assert_eq!(r.state, State::Failed, "{r:?}");
    assert!(
        r.reason
            .as_deref()
            .is_some_and(|why| why.contains("status 500, expected 200")),
        "{r:?}"
    );
    assert!(r.rounds >= 2, "{r:?}");
    // Nothing moved since: applying again is a no-op (exit 0), the
    // failure stays recorded.
    let again = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        record(srv, &name, v).await.map(|r| r.state),
        Some(State::Failed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_no_wait_records_verifying_and_returns() {
    let srv = server();
    let name = unique("nowait");
    let v = train(srv, &name, 0.9, 1.0);
    let wd = Workdir::new();
    wd.write(
        "m/model.yaml",
        &manifest(
            &name,
            v,
            &[predictions_check()],
            "every: 1s\nfor: 1h\ntimeout: 2h",
        ),
    );
    let applied = run(&wd, &srv.url, &srv.env, &["apply", "--no-wait", "m"]);
    assert_eq!(applied.code, 0, "{applied:?}");
    let r = record(srv, &name, v).await.expect("recorded");
    assert_eq!((r.state, r.rounds), (State::Verifying, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verified_in_blocks_production_until_staging_has_verified_then_passes() {
    let srv = server();
    let name = unique("upstream");
    let v = train(srv, &name, 0.9, 1.0);
    let wd = Workdir::new();
    wd.write("m/model.yaml", &production(&name, v));
    let plan = run(&wd, &srv.url, &srv.env, &["plan", "m"]);
    assert!(
        plan.stdout
            .contains(&format!("version {v} has no verification in Staging")),
        "the plan shows why: {plan:?}"
    );
    let blocked = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(blocked.code, 5, "Production is blocked: {blocked:?}");
    // Staging first, verified by the scoring server.
    wd.write(
        "m/model.yaml",
        &manifest(&name, v, &[predictions_check()], "every: 1s\ntimeout: 5m"),
    );
    let staged = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(staged.code, 0, "{staged:?}");
    let r = record(srv, &name, v).await.expect("recorded");
    assert_eq!(r.state, State::Verified, "{r:?}");
    wd.write("m/model.yaml", &production(&name, v));
    let plan = run(&wd, &srv.url, &srv.env, &["plan", "m"]);
    assert!(
        plan.stdout.contains("verified in Staging at "),
        "the plan shows the observed verification: {plan:?}"
    );
    let promoted = run(&wd, &srv.url, &srv.env, &["apply", "m"]);
    assert_eq!(promoted.code, 0, "{promoted:?}");
    let m = srv
        .registry()
        .get_model(&name)
        .await
        .expect("read")
        .expect("model");
    assert_eq!(
        m.versions[&v].stage,
        modelsync::state::Stage::Production,
        "{promoted:?}"
    );
}

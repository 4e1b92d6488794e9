//! MLflow workspaces (3.10+): a server started with `--enable-workspaces`,
//! shared by a team workspace and the default one. Apply, plan, export and
//! the lease work inside the named workspace (`--workspace` or
//! `MLFLOW_WORKSPACE`) and leave the default workspace untouched; a saved
//! plan is refused in another workspace; a missing workspace, a server
//! without workspaces and an MLflow 2.x server are clear errors before any
//! write.

use modelsync::registry::Registry;
use modelsync::registry::mlflow::{MlflowConfig, MlflowRegistry};
use modelsync::state::Stage;

use crate::support::cli::Workdir;
use crate::support::mlflow::{MlflowServer, server, unique};
use crate::support::servers::{TEAM_WORKSPACE, mlflow2, workspaces};

use super::{cli, manifest};

fn in_workspace(srv: &MlflowServer, workspace: &str) -> MlflowRegistry {
    srv.registry_with(MlflowConfig {
        workspace: Some(workspace.into()),
        ..MlflowConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_plan_and_export_in_a_workspace_leave_the_default_untouched() {
    let srv = workspaces();
    let name = unique("ws-model");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "a", true));
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [&["--workspace", TEAM_WORKSPACE][..], args].concat()
    }
    let r = cli(&w, srv, &srv.url, &[], &with(&["apply", "m"]));
    assert_eq!(r.code, 0, "{r:?}");

    let team = in_workspace(srv, TEAM_WORKSPACE);
    let model = team
        .get_model(&name)
        .await
        .expect("read")
        .expect("in team-a");
    assert_eq!(model.versions[&1].stage, Stage::Production);
    assert_eq!(model.aliases.get("challenger"), Some(&2));
    let default = srv.registry();
    assert!(
        default.get_model(&name).await.expect("read").is_none(),
        "the model leaked into the default workspace"
    );
    assert!(
        default
            .get_model("modelsync-lease")
            .await
            .expect("read")
            .is_none(),
        "a lease in the default workspace"
    );

    // MLflow's own variable names the workspace just as well.
    let r = cli(
        &w,
        srv,
        &srv.url,
        &[("MLFLOW_WORKSPACE", TEAM_WORKSPACE)],
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 0, "converged in team-a: {r:?}");
    // The same manifests against the default workspace: everything to do.
    let r = cli(
        &w,
        srv,
        &srv.url,
        &[],
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("create model"), "{r:?}");

    let r = cli(&w, srv, &srv.url, &[], &with(&["export", "--model", &name]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("name: {name}")), "{r:?}");
    let r = cli(&w, srv, &srv.url, &[], &["export", "--model", &name]);
    assert!(!r.stdout.contains(&format!("name: {name}")), "{r:?}");

    // A saved plan for team-a is refused in the default workspace.
    w.write("m/model.yaml", &manifest(&name, "b", true));
    let plan = w.path().join("plan.json");
    let plan_s = plan.display().to_string();
    let r = cli(
        &w,
        srv,
        &srv.url,
        &[],
        &with(&["plan", "m", "--out", &plan_s]),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let r = cli(&w, srv, &srv.url, &[], &["apply", "--plan", &plan_s]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("#workspace={TEAM_WORKSPACE}")),
        "{r:?}"
    );
    assert!(default.get_model(&name).await.expect("read").is_none());
    let r = cli(&w, srv, &srv.url, &[], &with(&["apply", "--plan", &plan_s]));
    assert_eq!(r.code, 0, "{r:?}");
    let model = team
        .get_model(&name)
        .await
        .expect("read")
        .expect("in team-a");
    assert_eq!(model.versions[&2].stage, Stage::Production);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_the_server_lacks_is_a_clear_error_before_any_write() {
    let w = Workdir::new();
    let name = unique("ws-missing");
    w.write("m/model.yaml", &manifest(&name, "a", false));

    let srv = workspaces();
    let r = cli(
        &w,
        srv,
        &srv.url,
        &[],
        &["--workspace", "nope", "apply", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("workspace \"nope\" does not exist"),
        "{r:?}"
    );

    // A 3.x server started without --enable-workspaces.
    let plain = server();
    let r = cli(
        &w,
        plain,
        &plain.url,
        &[],
        &["--workspace", TEAM_WORKSPACE, "apply", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("does not have workspaces enabled"),
        "{r:?}"
    );
    assert!(
        plain
            .registry()
            .get_model(&name)
            .await
            .expect("read")
            .is_none()
    );

    // MLflow 2.x has no workspaces at all (and would ignore the header).
    let old = mlflow2();
    let r = cli(
        &w,
        old,
        &old.url,
        &[("MLFLOW_WORKSPACE", TEAM_WORKSPACE)],
        &["apply", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("has no workspaces"), "{r:?}");
    assert!(
        old.registry()
            .get_model(&name)
            .await
            .expect("read")
            .is_none()
    );

    // The embedded registry has none either.
    let r = w.run(&["--workspace", TEAM_WORKSPACE, "plan", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("embedded registry"), "{r:?}");
}

/// Environment, arguments, and what the error says (or the URL to use).
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

/// A workspace named twice must be named alike: `--workspace` (or, without
/// it, `MLFLOW_WORKSPACE`) and the registry URI's `#workspace=` fragment
/// that disagree are an error (exit 1) before any request; agreeing ones
/// work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_named_twice_must_be_named_alike() {
    let srv = workspaces();
    let name = unique("ws-twice");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "a", false));
    let proxy = crate::support::proxy::Proxy::start(&srv.url).await;
    let fragment = format!("{}#workspace={TEAM_WORKSPACE}", proxy.url);
    let disagreeing: [Case; 3] = [
        (
            &[],
            &["--workspace", "other", "plan", "m"],
            "--workspace \"other\"",
        ),
        (
            &[("MLFLOW_WORKSPACE", "other")],
            &["plan", "m"],
            "MLFLOW_WORKSPACE \"other\"",
        ),
        (
            &[],
            &["--workspace", "other", "apply", "m"],
            "--workspace \"other\"",
        ),
    ];
    for (env, args, said) in disagreeing {
        let r = cli(&w, srv, &fragment, env, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert!(
            r.stderr.contains(said)
                && r.stderr.contains(&format!(
                    "#workspace={TEAM_WORKSPACE} name different workspaces"
                )),
            "{args:?}: {r:?}"
        );
    }
    assert!(
        proxy.seen().is_empty(),
        "not one request: {:?}",
        proxy.seen()
    );
    // Named alike (or once) is fine; the flag still wins over the variable
    // when the URI names none.
    let agreeing: [Case; 3] = [
        (
            &[],
            &["--workspace", TEAM_WORKSPACE, "plan", "m"],
            &fragment,
        ),
        (
            &[("MLFLOW_WORKSPACE", TEAM_WORKSPACE)],
            &["plan", "m"],
            &fragment,
        ),
        (
            &[("MLFLOW_WORKSPACE", "other")],
            &["--workspace", TEAM_WORKSPACE, "plan", "m"],
            &proxy.url,
        ),
    ];
    for (env, args, url) in agreeing {
        let r = cli(&w, srv, url, env, args);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert!(r.stdout.contains("create model"), "{r:?}");
    }
}

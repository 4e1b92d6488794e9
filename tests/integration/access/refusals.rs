//! What is refused before anything is written: a policy that would lock
//! modelsync's own principal out (counted through the recording proxy: no
//! write at all), the embedded registry, a server without the basic-auth
//! app, DENY on a server before RBAC.

use crate::support::auth::Auth;
use crate::support::cli::Workdir;
use crate::support::mlflow::{server, unique};
use crate::support::proxy::Proxy;

use super::{model, ok, policy, principal};

/// Requests that are not reads (any method but GET).
fn writes(proxy: &Proxy) -> Vec<String> {
    proxy
        .seen()
        .iter()
        .filter(|s| s.method != "GET")
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

async fn lockout_scenario(auth: Auth) {
    let me = principal(&auth).await;
    let alice = auth.user("alice").await;
    let name = unique("lockout");
    let url = auth.mlflow.url.clone();
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name, 1, 1));
    ok(&auth.run_as(&w, &me, &url, &["apply", "m"]));
    let grants = [
        format!("{{user: {}, permission: READ}}", alice.name),
        format!("{{user: {}, permission: READ}}", me.name),
    ];
    w.write("m/policy.yaml", &policy(&name, true, &grants));
    // The model moves too, so the refusal is what stops the whole plan.
    w.write("m/model.yaml", &model(&name, 2, 2));
    let proxy = auth.proxy().await;
    for cmd in [&["plan", "m"][..], &["apply", "m"]] {
        let r = auth.run_as(&w, &me, &proxy.url, cmd);
        assert_eq!(r.code, 1, "{cmd:?}: {r:?}");
        let why = format!(
            "access {name}: the policy would lock modelsync's principal {} out",
            me.name
        );
        assert!(r.stderr.contains(&why), "{cmd:?}: {r:?}");
        assert!(r.stderr.contains("needs MANAGE"), "{cmd:?}: {r:?}");
    }
    assert_eq!(writes(&proxy), Vec::<String>::new(), "nothing was written");
    assert!(
        proxy.count("GET", "users/list") >= 2,
        "the grants were read"
    );
    assert_eq!(auth.grant_of(&alice.name, &name).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_is_refused_with_no_write_on_rbac() {
    lockout_scenario(Auth::rbac()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_is_refused_with_no_write_on_per_model_grants() {
    lockout_scenario(Auth::legacy()).await;
}

const POLICY: &str = "apiVersion: modelsync/v1\nkind: AccessPolicy\nmetadata: {name: prod}\nspec:\n  models:\n    - name: fraud\n      grants:\n        - {user: alice, permission: DENY}\n";

#[test]
fn the_embedded_registry_refuses_the_kind() {
    let w = Workdir::new();
    w.write("m/policy.yaml", POLICY);
    let r = w.run(&["apply", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "m/policy.yaml:3:18: AccessPolicy \"prod\": the embedded registry has no permissions"
        ),
        "{r:?}"
    );
    assert!(!w.registry_file().exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_auth_app_refuses_the_kind() {
    let srv = server();
    let proxy = Proxy::start(&srv.url).await;
    let w = Workdir::new();
    w.write("m/policy.yaml", &POLICY.replace("DENY", "READ"));
    let mut cmd = w.command(&["--registry", &proxy.url, "apply", "m"]);
    cmd.env("MLFLOW_TRACKING_USERNAME", "msync")
        .env("MLFLOW_TRACKING_PASSWORD", "unused-by-this-server");
    let r = crate::support::cli::Run::from_command(&mut cmd);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("has no basic-auth app"), "{r:?}");
    assert!(
        r.stderr.contains("m/policy.yaml:3:18"),
        "names the policy: {r:?}"
    );
    assert_eq!(writes(&proxy), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_before_rbac_is_a_manifest_error() {
    let auth = Auth::legacy();
    let me = principal(&auth).await;
    let w = Workdir::new();
    w.write("m/policy.yaml", POLICY);
    let r = auth.run_as(&w, &me, &auth.mlflow.url, &["plan", "m"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(
            "m/policy.yaml:8:11: user alice is given DENY, which MLflow 3.12.0 does not have"
        ),
        "{r:?}"
    );
}

/// Users are names: a password in a policy is an unknown field, and its
/// value is never printed.
#[test]
fn a_password_in_a_policy_is_refused_and_never_printed() {
    let w = Workdir::new();
    let secret = "hunter2-not-for-logs";
    w.write(
        "m/policy.yaml",
        &POLICY.replace(
            "permission: DENY",
            &format!("password: {secret}, permission: READ"),
        ),
    );
    for cmd in [&["validate", "m"][..], &["plan", "m"], &["apply", "m"]] {
        let r = w.run(cmd);
        assert_eq!(r.code, 1, "{cmd:?}: {r:?}");
        assert!(
            format!("{}{}", r.stdout, r.stderr).contains("unknown field \"password\""),
            "{cmd:?}: {r:?}"
        );
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "{cmd:?}: {r:?}"
        );
    }
}

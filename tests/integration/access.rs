//! `kind: AccessPolicy` against MLflow's basic-auth app, on both permission
//! APIs: 3.17.2 (RBAC under `/api/3.0`, HTTPS) and 3.12.0 (per-model
//! grants). A protected model: after `apply`, a person's alias and stage
//! moves through MLflow's own Python client answer 403 while modelsync's
//! principal still promotes; `plan` shows the changes; a grant made by hand
//! makes a saved plan stale (exit 4) and is warned about; dropping the
//! policy takes back only the grants modelsync made; a policy that would
//! lock modelsync out is refused with 0 writes. Also: roles, and the
//! registries that cannot serve the kind.

mod refusals;

use crate::support::auth::{Auth, User};
use crate::support::cli::{Run, Workdir};
use crate::support::mlflow::unique;

/// A model with versions `v1..=n`, `Production` and `champion` on `prod`.
fn model(name: &str, n: usize, prod: usize) -> String {
    let mut m = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n"
    );
    for i in 1..=n {
        m.push_str(&format!(
            "    v{i}: {{source: \"s3://access/{name}/{i}\"}}\n"
        ));
    }
    m.push_str(&format!(
        "  stages:\n    Production: v{prod}\n  aliases:\n    champion: v{prod}\n"
    ));
    m
}

/// An access policy over one model, named after it (tests share servers:
/// policies of different "repositories" have different names); `grants`
/// as YAML flow items.
fn policy(model: &str, protect: bool, grants: &[String]) -> String {
    let mut p = format!(
        "apiVersion: modelsync/v1\nkind: AccessPolicy\nmetadata: {{name: {model}-policy}}\nspec:\n  models:\n    - name: {model}\n      protect: {protect}\n      grants:\n"
    );
    if grants.is_empty() {
        p.push_str("        []\n");
    }
    for g in grants {
        p.push_str(&format!("        - {g}\n"));
    }
    p
}

fn read(user: &User) -> String {
    format!("{{user: {}, permission: READ}}", user.name)
}

/// Python, as a person: moves `champion` to version 1, then Production to
/// version 1; prints `MOVED` or `DENIED <error>` for each.
fn moves(model: &str) -> String {
    format!(
        r#"
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
c = MlflowClient()
for what, move in [
    ("alias", lambda: c.set_registered_model_alias("{model}", "champion", "1")),
    ("stage", lambda: c.transition_model_version_stage("{model}", "1", "Production")),
]:
    try:
        move()
        print(what, "MOVED")
    except MlflowException as e:
        print(what, "DENIED", str(e).replace("\n", " "))
"#
    )
}

/// The lines of a person's moves.
fn person_moves(auth: &Auth, user: &User, model: &str) -> Vec<String> {
    let (ok, out) = auth.python_as(user, &moves(model));
    assert!(ok, "{out}");
    out.lines()
        .filter(|l| l.starts_with("alias ") || l.starts_with("stage "))
        .map(str::to_owned)
        .collect()
}

/// modelsync's own principal: a user that is not an admin on the RBAC
/// server (it holds MANAGE on the models it creates), an admin on the
/// per-model one (only admins may read other users' grants there).
async fn principal(auth: &Auth) -> User {
    let me = auth.user("msync").await;
    if !auth.rbac {
        auth.make_admin(&me).await;
    }
    me
}

fn ok(r: &Run) {
    assert_eq!(r.code, 0, "{r:?}");
}

async fn protected_model_scenario(auth: Auth) {
    let me = principal(&auth).await;
    let (alice, carol, bob) = (
        auth.user("alice").await,
        auth.user("carol").await,
        auth.user("bob").await,
    );
    let name = unique("fraud-detector");
    let url = auth.mlflow.url.clone();
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name, 2, 2));
    ok(&auth.run_as(&w, &me, &url, &["apply", "m"]));

    // Before the policy: a person given EDIT by hand moves the model.
    auth.grant(&alice.name, &name, "EDIT").await;
    auth.grant(&carol.name, &name, "READ").await;
    let before = person_moves(&auth, &alice, &name);
    assert_eq!(before, ["alias MOVED", "stage MOVED"], "alice holds EDIT");

    // The plan shows the permission changes.
    w.write("m/policy.yaml", &policy(&name, true, &[read(&alice)]));
    let r = auth.run_as(&w, &me, &url, &["plan", "--detailed-exitcode", "m"]);
    assert_eq!(r.code, 2, "{r:?}");
    let change = format!("user {}: EDIT -> READ (policy {name}-policy)", alice.name);
    assert!(r.stdout.contains(&format!("access {name}")), "{r:?}");
    assert!(r.stdout.contains(&change), "{r:?}");
    assert!(r.stdout.contains("ownership record: none ->"), "{r:?}");

    // Applied (the model converges too: Production and champion back on v2).
    ok(&auth.run_as(&w, &me, &url, &["apply", "m"]));
    assert_eq!(
        auth.grant_of(&alice.name, &name).await.as_deref(),
        Some("READ")
    );
    let after = person_moves(&auth, &alice, &name);
    assert_eq!(after.len(), 2, "{after:?}");
    for line in &after {
        assert!(line.contains("DENIED") && line.contains("403"), "{after:?}");
    }
    // modelsync's principal still promotes.
    w.write("m/model.yaml", &model(&name, 3, 3));
    let r = auth.run_as(&w, &me, &url, &["apply", "m"]);
    ok(&r);
    assert!(
        r.stdout
            .contains("alias champion: version 2 -> new version (v3)"),
        "{r:?}"
    );
    let r = auth.run_as(&w, &me, &url, &["plan", "--detailed-exitcode", "m"]);
    assert_eq!(r.code, 0, "converged: {r:?}");

    // A grant made by hand: warned about at every run, and a saved plan
    // made before it is stale.
    w.write("m/model.yaml", &model(&name, 3, 2));
    let r = auth.run_as(&w, &me, &url, &["plan", "--out", "plan.json", "m"]);
    ok(&r);
    auth.grant(&bob.name, &name, "EDIT").await;
    let hole = format!(
        "protected, but user {} can move its stages and aliases",
        bob.name
    );
    let r = auth.run_as(&w, &me, &url, &["apply", "--plan", "plan.json"]);
    assert_eq!(r.code, 4, "{r:?}");
    let stale = format!(
        "permissions on {name}: user {} held no grant, now EDIT",
        bob.name
    );
    assert!(r.stderr.contains(&stale), "{r:?}");
    let r = auth.run_as(&w, &me, &url, &["plan", "m"]);
    assert!(
        r.stdout.contains(&hole) && r.stderr.contains(&hole),
        "{r:?}"
    );
    let r = auth.run_as(&w, &me, &url, &["watch", "--once", "m"]);
    ok(&r);
    assert!(r.stderr.contains(&hole), "the daemon warns too: {r:?}");
    assert_eq!(
        auth.grant_of(&bob.name, &name).await.as_deref(),
        Some("EDIT"),
        "a grant made by hand is left alone"
    );
    auth.revoke(&bob.name, &name).await;

    // Dropping the policy takes back only what modelsync granted.
    std::fs::remove_file(w.path().join("m/policy.yaml")).expect("rm policy");
    let r = auth.run_as(&w, &me, &url, &["apply", "m"]);
    ok(&r);
    let revoke = format!(
        "revoke user {} READ (granted by modelsync, no longer declared)",
        alice.name
    );
    assert!(r.stdout.contains(&revoke), "{r:?}");
    assert_eq!(auth.grant_of(&alice.name, &name).await, None);
    assert_eq!(
        auth.grant_of(&carol.name, &name).await.as_deref(),
        Some("READ"),
        "carol's grant was made by hand"
    );
    let r = auth.run_as(&w, &me, &url, &["plan", "--detailed-exitcode", "m"]);
    assert_eq!(r.code, 0, "nothing more to take back: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_model_on_rbac() {
    protected_model_scenario(Auth::rbac()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_model_on_per_model_grants() {
    protected_model_scenario(Auth::legacy()).await;
}

/// Roles get grants too (an admin's principal), and lose the ones modelsync
/// made when a grant is dropped from the policy.
async fn roles_scenario(auth: Auth) {
    let me = auth.user("msync-admin").await;
    auth.make_admin(&me).await;
    let role = auth.role(&unique("ml-engineers")).await;
    let name = unique("churn");
    let url = auth.mlflow.url.clone();
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name, 1, 1));
    let grant = format!("{{role: {role}, permission: EDIT}}");
    w.write("m/policy.yaml", &policy(&name, false, &[grant]));
    let r = auth.run_as(&w, &me, &url, &["apply", "m"]);
    ok(&r);
    let granted = format!("grant role {role} EDIT (policy {name}-policy)");
    assert!(r.stdout.contains(&granted), "{r:?}");
    assert_eq!(auth.role_grant(&role, &name).await.as_deref(), Some("EDIT"));
    w.write("m/policy.yaml", &policy(&name, false, &[]));
    ok(&auth.run_as(&w, &me, &url, &["apply", "m"]));
    assert_eq!(auth.role_grant(&role, &name).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_on_rbac() {
    roles_scenario(Auth::rbac()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_on_per_model_grants() {
    roles_scenario(Auth::legacy()).await;
}

/// A principal with no grant in the workspace yet (not an admin) creates a
/// model and its policy in one pass: it cannot read the workspace's roles
/// before it holds one, and needs to only for models it does not create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_creates_and_protects_in_one_pass_on_rbac() {
    let auth = Auth::rbac();
    let me = auth.user("msync-new").await;
    let alice = auth.user("alice").await;
    let name = unique("fresh");
    let url = auth.mlflow.url.clone();
    let w = Workdir::new();
    w.write("m/model.yaml", &model(&name, 1, 1));
    w.write("m/policy.yaml", &policy(&name, true, &[read(&alice)]));
    let r = auth.run_as(&w, &me, &url, &["apply", "m"]);
    ok(&r);
    assert_eq!(
        auth.grant_of(&alice.name, &name).await.as_deref(),
        Some("READ")
    );
    assert_eq!(
        auth.grant_of(&me.name, &name).await.as_deref(),
        Some("MANAGE")
    );
    let r = auth.run_as(&w, &me, &url, &["plan", "--detailed-exitcode", "m"]);
    assert_eq!(r.code, 0, "converged, read in full now: {r:?}");
}

//! MLflow's basic-auth app over HTTPS with a private CA: trust through
//! MLFLOW_TRACKING_SERVER_CERT_PATH, an EDIT user's promotions, `--prune`
//! needing MANAGE, a wrong password, and no secret in any output.

use modelsync::registry::Registry;
use modelsync::state::Stage;

use crate::support::cli::Workdir;
use crate::support::mlflow::unique;
use crate::support::servers::{AuthTls, auth_tls};

use super::{cli, core_scenario, manifest};

/// A new user with this password (a fresh name per test).
async fn user(srv: &AuthTls, prefix: &str) -> (String, String) {
    let name = unique(prefix);
    let password = format!("pw-{:016x}", fastrand::u64(..));
    srv.create_user(&name, &password).await;
    (name, password)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_scenario_as_admin_over_tls() {
    let srv = auth_tls();
    core_scenario(&srv.mlflow, &srv.admin(), &unique("tls-core"), &[], None).await;
}

/// An EDIT user registers, promotes (archiving the old holder), moves
/// aliases and sets tags; with `--prune`, deleting an alias needs MANAGE:
/// that action fails naming the permission, the rest applies, exit 1.
/// The applier lease, created by the EDIT user, is deleted on release
/// (MLflow gives its creator MANAGE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_user_promotes_and_prune_needs_manage() {
    let srv = auth_tls();
    let admin = srv.admin();
    let name = unique("tls-edit");
    let lease = format!("{name}-lease");
    let w = Workdir::new();
    // The platform team (admin) creates the model.
    w.write("m/model.yaml", &manifest(&name, "a", true));
    let env = [("MODELSYNC_LEASE_MODEL", lease.as_str())];
    let r = cli(&w, &srv.mlflow, &srv.mlflow.url, &env, &["apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (editor, password) = user(srv, "editor").await;
    srv.grant_model(&editor, &name, "EDIT").await;
    let as_editor = [
        ("MODELSYNC_LEASE_MODEL", lease.as_str()),
        ("MLFLOW_TRACKING_USERNAME", editor.as_str()),
        ("MLFLOW_TRACKING_PASSWORD", password.as_str()),
    ];

    // A new version with tags, a promotion with archive, alias moves and a
    // model tag, as the EDIT user.
    let v2 = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  description: server setups\n  tags: {{team: ml2}}\n  versions:\n    a: {{source: \"s3://bucket/{name}/a\"}}\n    b: {{source: \"s3://bucket/{name}/b\"}}\n    c: {{source: \"s3://bucket/{name}/c\", tags: {{trained-by: ci}}}}\n  stages:\n    Production: b\n  aliases:\n    champion: c\n    challenger: b\n"
    );
    w.write("m/model.yaml", &v2);
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &as_editor,
        &["apply", "m"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let model = admin.get_model(&name).await.expect("read").expect("model");
    assert_eq!(model.versions[&1].stage, Stage::Archived, "{model:#?}");
    assert_eq!(model.versions[&2].stage, Stage::Production);
    assert_eq!(model.aliases.get("champion"), Some(&3));
    assert_eq!(model.tags.get("team").map(String::as_str), Some("ml2"));
    assert_eq!(
        model.versions[&3]
            .tags
            .get("trained-by")
            .map(String::as_str),
        Some("ci")
    );
    assert!(
        admin.get_model(&lease).await.expect("read").is_none(),
        "the EDIT user's lease model was not deleted on release"
    );

    // --prune must delete `challenger`: MANAGE is needed, EDIT is not enough.
    w.write(
        "m/model.yaml",
        &v2.replace("    challenger: b\n", "")
            .replace("team: ml2", "team: ml3"),
    );
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &as_editor,
        &["apply", "--prune", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let failed: Vec<&str> = r.stdout.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{r:?}");
    assert!(
        failed[0].contains("delete alias challenger")
            && failed[0].contains("MANAGE permission")
            && failed[0]
                .contains("an admin grants it with POST /api/3.0/mlflow/users/permissions/grant"),
        "{r:?}"
    );
    let model = admin.get_model(&name).await.expect("read").expect("model");
    assert_eq!(model.aliases.get("challenger"), Some(&2), "deleted anyway?");
    assert_eq!(
        model.tags.get("team").map(String::as_str),
        Some("ml3"),
        "the rest of the plan was not applied: {r:?}"
    );
    // The next --prune tries again (the alias is still owned), and fails the
    // same way until someone grants MANAGE.
    srv.grant_model(&editor, &name, "MANAGE").await;
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &as_editor,
        &["apply", "--prune", "m"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let model = admin.get_model(&name).await.expect("read").expect("model");
    assert_eq!(model.aliases.get("challenger"), None);
}

/// A wrong password is an authentication error (exit 1, never 0/2/3); an
/// untrusted certificate says so and names MLFLOW_TRACKING_SERVER_CERT_PATH;
/// the CA makes `localhost` (a DNS SAN) work as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_untrusted_certificate_fail_clearly() {
    let srv = auth_tls();
    let name = unique("tls-fail");
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "a", false));
    let wrong = "definitely-Wrong-pw-7";
    for cmd in [&["plan", "m"][..], &["apply", "m"]] {
        let r = cli(
            &w,
            &srv.mlflow,
            &srv.mlflow.url,
            &[("MLFLOW_TRACKING_PASSWORD", wrong)],
            cmd,
        );
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("authentication failed"), "{r:?}");
        assert!(r.stderr.contains("MLFLOW_TRACKING_PASSWORD"), "{r:?}");
        assert!(!r.stdout.contains("No changes"), "{r:?}");
        assert!(!format!("{r:?}").contains(wrong), "{r:?}");
    }
    // No CA: not trusted, and how to fix it.
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &[("MLFLOW_TRACKING_SERVER_CERT_PATH", "")],
        &["plan", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not trusted"), "{r:?}");
    assert!(
        r.stderr.contains("MLFLOW_TRACKING_SERVER_CERT_PATH"),
        "{r:?}"
    );
    // With the CA, by DNS name.
    let port = srv.mlflow.url.rsplit(':').next().expect("port");
    let by_name = format!("https://localhost:{port}");
    let r = cli(
        &w,
        &srv.mlflow,
        &by_name,
        &[],
        &["plan", "m", "--detailed-exitcode"],
    );
    assert_eq!(r.code, 2, "{r:?}");
}

/// No password, token or Authorization value in any output, at -vvv and
/// with --log-format json, on success and on failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_output() {
    let srv = auth_tls();
    let (editor, password) = user(srv, "quiet").await;
    let name = unique("tls-secret");
    let lease = format!("{name}-lease");
    let token = format!("tok-{:016x}", fastrand::u64(..));
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "a", true));
    let basic = modelsync_b64(&format!("{editor}:{password}"));
    let as_editor = [
        ("MODELSYNC_LEASE_MODEL", lease.as_str()),
        ("MLFLOW_TRACKING_USERNAME", editor.as_str()),
        ("MLFLOW_TRACKING_PASSWORD", password.as_str()),
        ("MLFLOW_TRACKING_TOKEN", token.as_str()),
    ];
    let url = &srv.mlflow.url;
    let mut outputs = Vec::new();
    let mut run = |env: &[(&str, &str)], args: &[&str]| {
        let r = cli(&w, &srv.mlflow, url, env, args);
        outputs.push(format!("{args:?}\n{r:?}"));
        r
    };
    // The editor creates the model (so it may), at full verbosity.
    let r = run(&as_editor, &["-vvv", "apply", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run(&as_editor, &["-vvv", "--log-format", "json", "plan", "m"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("\"level\":\"TRACE\""),
        "not at trace level: {r:?}"
    );
    // Failures: a wrong password, a token alone (the basic-auth app wants
    // Basic), both in both log formats.
    let wrong = [
        ("MLFLOW_TRACKING_USERNAME", editor.as_str()),
        ("MLFLOW_TRACKING_PASSWORD", "Wr0ng-but-secret"),
    ];
    let token_only = [
        ("MLFLOW_TRACKING_USERNAME", ""),
        ("MLFLOW_TRACKING_PASSWORD", ""),
        ("MLFLOW_TRACKING_TOKEN", token.as_str()),
    ];
    for env in [&wrong[..], &token_only[..]] {
        for fmt in ["text", "json"] {
            let r = run(env, &["-vvv", "--log-format", fmt, "apply", "m"]);
            assert_eq!(r.code, 1, "{r:?}");
        }
    }
    for out in &outputs {
        for secret in [
            password.as_str(),
            token.as_str(),
            basic.as_str(),
            "Wr0ng-but-secret",
            &srv.admin_password,
        ] {
            assert!(!out.contains(secret), "a secret leaked:\n{out}");
        }
        assert!(
            !out.to_ascii_lowercase().contains("authorization"),
            "an Authorization header leaked:\n{out}"
        );
    }
}

/// Standard base64 (for the Basic credentials a leak would show).
fn modelsync_b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A lease model left behind by another user (who has MANAGE on it): an
/// EDIT user cannot take it over without EDIT on it, and is told so; with
/// EDIT it takes it over, and on release, unable to delete it (MANAGE),
/// expires it instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_left_by_another_user() {
    use std::collections::BTreeMap;
    let srv = auth_tls();
    let admin = srv.admin();
    let name = unique("tls-lease");
    let lease = format!("{name}-lease");
    // An expired lease, made by the admin (a crashed apply).
    let tags = BTreeMap::from([
        (
            "modelsync.lease.holder".to_string(),
            "crashed:1:0".to_string(),
        ),
        ("modelsync.lease.expires".to_string(), "1".to_string()),
    ]);
    admin
        .create_model(&lease, None, &tags)
        .await
        .expect("create the lease model");
    let (editor, password) = user(srv, "leaser").await;
    let w = Workdir::new();
    w.write("m/model.yaml", &manifest(&name, "a", false));
    let as_editor = [
        ("MODELSYNC_LEASE_MODEL", lease.as_str()),
        ("MLFLOW_TRACKING_USERNAME", editor.as_str()),
        ("MLFLOW_TRACKING_PASSWORD", password.as_str()),
    ];
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &as_editor,
        &["apply", "m"],
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!("applier lease \"{lease}\""))
            && r.stderr.contains("grant this user EDIT"),
        "{r:?}"
    );
    assert!(
        admin.get_model(&name).await.expect("read").is_none(),
        "wrote without the lease"
    );
    srv.grant_model(&editor, &lease, "EDIT").await;
    let r = cli(
        &w,
        &srv.mlflow,
        &srv.mlflow.url,
        &as_editor,
        &["apply", "m"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let left = admin
        .get_model(&lease)
        .await
        .expect("read")
        .expect("the lease model stays: EDIT cannot delete it");
    assert_eq!(
        left.tags.get("modelsync.lease.expires").map(String::as_str),
        Some("0"),
        "released by expiring it: {left:#?}"
    );
}

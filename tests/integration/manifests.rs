//! Reading manifest folders through the binary: what a broken folder
//! entry prints.

use crate::support::cli::Workdir;

const VALID: &str = r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: churn
spec:
  versions:
    first: {source: "s3://bucket/churn/1"}
  stages: {Production: first}
"#;

/// A symbolic link to nothing in a manifest folder is one error line that
/// names the link and its target (the OS error used to be printed twice).
#[cfg(unix)]
#[test]
fn dangling_symlink_in_a_folder_is_reported_once() {
    let w = Workdir::new();
    w.write("m/ok.yaml", VALID);
    std::os::unix::fs::symlink("nowhere.yaml", w.path().join("m/gone.yaml")).expect("symlink");
    for args in [&["validate", "m"][..], &["plan", "m"], &["apply", "m"]] {
        let run = w.run(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert_eq!(
            run.stderr,
            "error: m/gone.yaml: broken symbolic link: its target nowhere.yaml does not exist\n",
            "{args:?}: {run:?}"
        );
    }
    assert!(!w.registry_file().exists(), "nothing was applied");
}

fn edge_names(name: &str) -> String {
    format!(
        r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: "{name}"
spec:
  tags: {{"a..b": dotted, "team/owner": ml}}
  versions:
    first:
      source: "s3://bucket/{name}/1"
      tags: {{"x..y": "1"}}
  stages: {{Production: first}}
  aliases: {{"été": first}}
"#
    )
}

/// What `validate` accepts at the edges of MLflow's naming rules (a `..`
/// inside a tag key or model name, a non-ASCII alias), the embedded
/// registry and a real MLflow server both apply; what it rejects (`a//b`,
/// which MLflow would read as the path `a/b`) never reaches a registry.
#[test]
fn validate_and_both_registries_agree_on_names() {
    let w = Workdir::new();
    w.write("m/model.yaml", &edge_names("churn..edge"));
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = w.run(&["apply", "m"]);
    assert_eq!(run.code, 0, "embedded: {run:?}");

    let srv = crate::support::mlflow::server();
    let mlflow = Workdir::new();
    let name = format!("{}..edge", crate::support::mlflow::unique("naming"));
    mlflow.write("m/model.yaml", &edge_names(&name));
    let run = mlflow.run(&["--registry", &srv.url, "apply", "m"]);
    assert_eq!(run.code, 0, "MLflow: {run:?}");
    let run = mlflow.run(&["--registry", &srv.url, "plan", "m", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "MLflow converged: {run:?}");

    w.write("m/model.yaml", &edge_names("churn").replace("a..b", "a//b"));
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains(r#"m/model.yaml:6:10: invalid tag key "a//b""#),
        "{run:?}"
    );
}

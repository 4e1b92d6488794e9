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

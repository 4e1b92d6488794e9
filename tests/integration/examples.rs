//! The examples and docs stay true: the GitHub Actions workflow passes
//! actionlint (which also runs ShellCheck on its `run:` scripts and knows
//! which action versions GitHub's runners no longer run), and code docs cite
//! only documents the repository holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Installs (once) actionlint and ShellCheck (`scripts/ensure-actionlint.sh`);
/// returns the directory holding both.
fn ensure_actionlint() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("scripts/ensure-actionlint.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}); actionlint is needed for this test",
        script.display(),
        out.status
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn github_actions_example_passes_actionlint() {
    let bin = ensure_actionlint();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    let out = Command::new(bin.join("actionlint"))
        .args(["-no-color", "examples/ci/github-actions.yml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // ShellCheck from the same venv checks the `run:` scripts.
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .output()
        .expect("run actionlint");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "actionlint reports problems in examples/ci/github-actions.yml ({}):\n{report}",
        out.status
    );
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn code_docs_cite_only_documents_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    files.extend(crate::docs::markdown_files(root));
    // Design notes kept outside the repository (spelled so that this file
    // does not match itself).
    let outside = [["DESIGN", ".md"].concat(), ["MLFLOW", ".md"].concat()];
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let at = format!(
                "{}:{}",
                file.strip_prefix(root).unwrap_or(file).display(),
                n + 1
            );
            for name in &outside {
                if line.contains(name.as_str()) {
                    problems.push(format!(
                        "{at}: cites {name}, which is not in the repository"
                    ));
                }
            }
            for (i, _) in line.match_indices("docs/") {
                let cited: String = line[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
                    .collect();
                let pending = crate::docs::PENDING.contains(&cited.as_str());
                if cited.ends_with(".md") && !pending && !root.join(&cited).is_file() {
                    problems.push(format!("{at}: cites {cited}, which does not exist"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `examples/serving/`: the manifests validate, `modelsync.toml`'s
/// `[outputs]` reads, and the serving files' markers are found and
/// rewritten: each file still parses as YAML, with the new values where the
/// markers are and every other value as before.
#[test]
fn serving_examples_validate_and_their_markers_rewrite() {
    use modelsync::outputs::markers;
    use serde_json::Value;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/serving");
    let out = Command::new(env!("CARGO_BIN_EXE_modelsync"))
        .args(["validate", "models"])
        .current_dir(&root)
        .output()
        .expect("run modelsync validate");
    assert!(out.status.success(), "{out:?}");
    let toml = std::fs::read_to_string(root.join("models/modelsync.toml")).expect("toml");
    let cfg = modelsync::source::config::Config::parse("modelsync.toml", &toml).expect("valid");
    assert_eq!(cfg.outputs.len(), 1);

    let uri = "s3://models/mlflow/1/models/m-0f3c/artifacts";
    let digest = format!("sha256:{}", "ab".repeat(32));
    let parse = |text: &str| -> Value { serde_saphyr::from_str(text).expect("YAML") };
    for (rel, marked, at) in [
        (
            "serving-repo/kserve/inferenceservice.yaml",
            4,
            "/spec/predictor/model/storageUri",
        ),
        ("serving-repo/seldon/model.yaml", 3, "/spec/storageUri"),
    ] {
        let text = std::fs::read_to_string(root.join(rel)).expect("example");
        let (found, errors) = markers::find(rel, &text);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(found.len(), marked, "{rel}");
        assert!(
            found
                .iter()
                .all(|m| m.reference.to_string() == "fraud-detector@champion")
        );
        let rewritten = markers::rewrite(rel, &text, &|_, f| {
            Ok(Some(match f.as_str() {
                "uri" => uri.to_string(),
                "digest" => digest.clone(),
                "version" => "8".to_string(),
                _ => "3f2a".to_string(),
            }))
        });
        assert!(rewritten.errors.is_empty(), "{:?}", rewritten.errors);
        assert_eq!(rewritten.changes.len(), marked);
        let (before, mut after) = (parse(&text), parse(&rewritten.text));
        assert_eq!(after.pointer(at), Some(&Value::from(uri)), "{rel}");
        assert_eq!(
            after.pointer("/metadata/annotations/modelsync.io~1digest"),
            Some(&Value::from(digest.as_str()))
        );
        // Put the old values back: the rest of the document is unchanged.
        for pointer in [at, "/metadata/annotations/modelsync.io~1digest"] {
            *after.pointer_mut(pointer).expect("present") =
                before.pointer(pointer).expect("present").clone();
        }
        for (pointer, value) in [
            ("/metadata/labels/modelsync.io~1version", "8"),
            ("/metadata/annotations/modelsync.io~1version", "8"),
            ("/metadata/annotations/modelsync.io~1run", "3f2a"),
        ] {
            if let Some(v) = after.pointer_mut(pointer) {
                assert_eq!(v, &Value::from(value), "{rel} {pointer}");
                *v = before.pointer(pointer).expect("present").clone();
            }
        }
        assert_eq!(after, before, "{rel}: only the marked values changed");
        let lines = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("\"$modelsync\""))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(&rewritten.text),
            lines(&text),
            "{rel}: unmarked lines are byte-identical"
        );
    }
}

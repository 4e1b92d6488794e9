//! The delivery files stay valid: actionlint (with ShellCheck) on the
//! GitHub Action (`action.yml`, its composite steps checked as a workflow's
//! job) and on the example workflows, each resolving the action locally so
//! their `with:` inputs are checked against `action.yml`; hadolint on the
//! `Dockerfile`, which builds what the wheel ships and runs it as the image
//! `examples/kubernetes/` names.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

use super::{root, script};

/// The image the Dockerfile builds and the Kubernetes examples run.
const IMAGE: &str = "ghcr.io/modelsync/modelsync";

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// `action.yml` as a reusable workflow with one job: its inputs as the
/// workflow's inputs, its steps as the job's, its outputs as the job's, so
/// actionlint checks every expression, action reference and `run:` script.
fn action_as_workflow(action: &Value) -> Value {
    let mut inputs = Map::new();
    for (name, input) in action["inputs"].as_object().expect("inputs") {
        let default = input["default"].as_str().unwrap_or_default();
        // An expression default (`${{ github.token }}`) is the action's
        // runtime's business; the workflow's input keeps a plain one.
        let default = if default.contains("${{") { "" } else { default };
        inputs.insert(
            name.clone(),
            json!({"description": input["description"], "type": "string", "required": false, "default": default}),
        );
    }
    let outputs: Map<String, Value> = action["outputs"]
        .as_object()
        .expect("outputs")
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect();
    json!({
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {
            "runs-on": "ubuntu-latest",
            "outputs": outputs,
            "steps": action["runs"]["steps"],
        }},
    })
}

/// The workflow with the published action (`modelsync/modelsync@REF`)
/// replaced by the repository's own (`./`).
fn with_local_action(workflow: &str) -> String {
    workflow
        .lines()
        .map(|l| match l.find("uses: modelsync/modelsync@") {
            Some(i) => format!("{}uses: ./", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_action_and_the_workflows_pass_actionlint() {
    let action_text = read("action.yml");
    let action: Value = serde_saphyr::from_str(&action_text).expect("action.yml parses");
    assert_eq!(action["runs"]["using"], "composite");
    for input in [
        "command",
        "path",
        "registry",
        "comment",
        "detailed-exitcode",
        "version",
    ] {
        assert!(
            action["inputs"].get(input).is_some(),
            "action.yml has no input {input}"
        );
    }
    for step in action["runs"]["steps"].as_array().expect("steps") {
        if let Some(run) = step["run"].as_str() {
            assert!(
                step.get("shell").is_some(),
                "a composite run step needs a shell: {step}"
            );
            // Inputs reach scripts only through the environment, never
            // pasted into the script (where they could inject commands).
            assert!(
                !run.contains("${{"),
                "an expression inside a run script: {run}"
            );
        }
    }
    let example = read("examples/ci/github-actions.yml");
    assert!(
        example.contains("uses: modelsync/modelsync@v"),
        "the example workflow uses the action"
    );

    let repo = tempfile::tempdir().expect("tempdir");
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("mkdir");
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(repo.path())
        .status();
    assert!(git.expect("git init").success());
    std::fs::write(repo.path().join("action.yml"), &action_text).expect("write");
    let files = [
        ("github-actions.yml", with_local_action(&example)),
        ("release.yml", read("examples/ci/release.yml")),
        (
            "action-as-workflow.yml",
            serde_json::to_string_pretty(&action_as_workflow(&action)).expect("json"),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(workflows.join(name), text).expect("write");
    }
    let bin = std::path::PathBuf::from(script("ensure-actionlint.sh", &[]));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.clone()];
    dirs.extend(std::env::split_paths(&path));
    let out = Command::new(bin.join("actionlint"))
        .arg("-no-color")
        .current_dir(repo.path())
        .env("PATH", std::env::join_paths(dirs).expect("PATH"))
        .output()
        .expect("run actionlint");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "actionlint reports problems ({}; action-as-workflow.yml is action.yml's steps as a job):\n{report}",
        out.status
    );
}

/// The Dockerfile's lines less comments and blank lines.
fn instructions(dockerfile: &str) -> Vec<&str> {
    dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The instructions of the Dockerfile's last stage (after its last FROM).
fn last_stage(dockerfile: &str) -> Vec<&str> {
    let lines = instructions(dockerfile);
    let from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM");
    lines[from..].to_vec()
}

#[test]
fn the_dockerfile_passes_hadolint_and_builds_what_the_wheel_ships() {
    let hadolint = Path::new(&script("ensure-pytool.sh", &["hadolint"])).join("hadolint");
    let out = Command::new(hadolint)
        .args(["--no-color", "Dockerfile"])
        .current_dir(root())
        .output()
        .expect("run hadolint");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "hadolint reports problems ({}):\n{report}",
        out.status
    );

    let dockerfile = read("Dockerfile");
    assert!(
        !instructions(&dockerfile)
            .iter()
            .any(|l| l.starts_with("HEALTHCHECK")),
        "probes decide, not a HEALTHCHECK"
    );
    // The build: the release profile, the default features, Cargo.lock —
    // as pyproject.toml tells maturin.
    assert!(dockerfile.contains("cargo build --release --locked --bin modelsync"));
    assert!(!dockerfile.contains("--features") && !dockerfile.contains("--no-default-features"));
    let pyproject: toml::Table = read("pyproject.toml").parse().expect("pyproject.toml");
    let maturin = &pyproject["tool"]["maturin"];
    assert_eq!(maturin["bindings"].as_str(), Some("bin"));
    assert_eq!(maturin["profile"].as_str(), Some("release"));
    assert_eq!(maturin["locked"].as_bool(), Some(true));
    assert!(maturin.get("features").is_none() && maturin.get("no-default-features").is_none());

    // The runtime: no shell needed, a non-root user, modelsync as the
    // entry point, OCI labels.
    let stage = last_stage(&dockerfile);
    assert!(
        !stage
            .iter()
            .any(|l| l.starts_with("RUN ") || l.starts_with("SHELL ")),
        "the runtime stage runs nothing: {stage:?}"
    );
    let user = stage
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    assert!(
        !matches!(user.split(':').next(), Some("0" | "root")),
        "USER {user}"
    );
    assert!(stage.contains(&r#"ENTRYPOINT ["modelsync"]"#), "{stage:?}");
    for label in ["title", "source", "version", "revision", "licenses"] {
        assert!(
            dockerfile.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label}"
        );
    }

    // The image's documented name, at this version, is what Kubernetes runs.
    assert!(dockerfile.contains(IMAGE));
    let image = format!("image: {IMAGE}:{}", env!("CARGO_PKG_VERSION"));
    for file in ["deployment-etcd.yaml", "deployment-postgresql.yaml"] {
        let text = read(&format!("examples/kubernetes/{file}"));
        assert!(text.contains(&image), "{file} runs {image}");
    }
}

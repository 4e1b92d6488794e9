//! End-to-end CLI tests against temporary embedded registries.

use crate::support::cli::{Workdir, bin};

const V1: &str = r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: churn
spec:
  description: churn model
  versions:
    first:
      source: s3://bucket/churn/1
  stages:
    Production: first
  aliases:
    champion: first
"#;

const V2: &str = r#"apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: churn
spec:
  description: churn model
  versions:
    first:
      source: s3://bucket/churn/1
    second:
      source: s3://bucket/churn/2
  stages:
    Production: second
  aliases:
    champion: second
    previous: first
"#;

fn get_json(w: &Workdir, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let run = w.run(&all);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).expect("json")
}

#[test]
fn quickstart_converges_and_second_plan_is_empty() {
    let w = Workdir::new();
    let manifests = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart/manifests");
    let run = w.run(&["apply", manifests]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Apply complete"), "{run:?}");
    let run = w.run(&["plan", manifests, "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("No changes"), "{run:?}");
    let champion = get_json(&w, &["fraud-detector", "--alias", "champion"]);
    assert_eq!(champion["version"], "1");
    assert_eq!(champion["current_stage"], "Production");
    assert_eq!(champion["name"], "fraud-detector");
}

#[test]
fn plan_detailed_exitcode_reports_changes() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    let run = w.run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(run.code, 2, "{run:?}");
    let run = w.run(&["plan", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        !w.registry_file().exists(),
        "plan must not write the registry"
    );
}

#[test]
fn promotion_archives_the_old_holder_after_the_new_one_is_in_place() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    assert_eq!(w.run(&["apply", "m"]).code, 0);
    w.write("m/churn.yaml", V2);
    let run = w.run(&["apply", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
    let v1 = get_json(&w, &["churn", "--version", "1"]);
    let v2 = get_json(&w, &["churn", "--version", "2"]);
    assert_eq!(v1["current_stage"], "Archived");
    assert_eq!(v2["current_stage"], "Production");
    assert_eq!(v2["aliases"], serde_json::json!(["champion"]));
    assert_eq!(v1["aliases"], serde_json::json!(["previous"]));
    // One audit tag per move: when, and the version it replaced.
    let stamp = v2["tags"]["modelsync.promoted-at.Production"]
        .as_str()
        .expect("audit tag");
    assert!(stamp.ends_with("Z previous=1"), "{stamp}");
    // The archival comes after the move in the printed results.
    let moved = run
        .stdout
        .find("churn: stage Production: version 1 -> new version (second) ... ok")
        .expect("move line");
    let archived = run
        .stdout
        .find("churn: archive version 1 (was Production) ... ok")
        .expect("archive line");
    assert!(moved < archived, "{run:?}");
    // History shows both promotions, newest first.
    let run = w.run(&["history", "churn"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .next()
            .unwrap_or("")
            .contains("version 2"),
        "{run:?}"
    );
}

#[test]
fn noop_apply_leaves_the_registry_file_byte_identical() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V2);
    assert_eq!(w.run(&["apply", "m"]).code, 0);
    let before = std::fs::read(w.registry_file()).expect("registry");
    let modified = std::fs::metadata(w.registry_file())
        .and_then(|m| m.modified())
        .expect("mtime");
    let run = w.run(&["apply", "m"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("No changes"), "{run:?}");
    assert_eq!(std::fs::read(w.registry_file()).expect("registry"), before);
    let after = std::fs::metadata(w.registry_file())
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(modified, after, "a no-op apply must not rewrite the file");
}

#[test]
fn two_concurrent_applies_register_each_source_once() {
    let w2 = Workdir::new();
    w2.write("m/churn.yaml", V2);
    let a = w2.command(&["apply", "m"]).spawn().expect("spawn a");
    let b = w2.command(&["apply", "m"]).spawn().expect("spawn b");
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!(
        b.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&b.stderr)
    );
    let all = get_json(&w2, &["churn"]);
    let versions = all.as_array().expect("array");
    assert_eq!(
        versions.len(),
        2,
        "each source registered exactly once: {all}"
    );
    let run = w2.run(&["plan", "m", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn saved_plan_applies_and_refuses_when_stale() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    assert_eq!(w.run(&["apply", "m"]).code, 0);
    w.write("m/churn.yaml", V2);
    let run = w.run(&["plan", "m", "--out", "plan.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    // Someone else moves the alias by hand (here: another manifest set).
    w.write(
        "other/churn.yaml",
        &V1.replace("champion: first", "champion: first\n    hand: first"),
    );
    w.write(
        "other2/churn.yaml",
        &V1.replace("Production: first", "Staging: first"),
    );
    assert_eq!(w.run(&["apply", "other2"]).code, 0);
    let before = std::fs::read(w.registry_file()).expect("registry");
    let run = w.run(&["apply", "--plan", "plan.json"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("stale"), "{run:?}");
    assert_eq!(
        std::fs::read(w.registry_file()).expect("registry"),
        before,
        "stale plan wrote"
    );
    // A fresh plan applies cleanly.
    assert_eq!(w.run(&["plan", "m", "--out", "plan.json"]).code, 0);
    let run = w.run(&["apply", "--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(w.run(&["plan", "m", "--detailed-exitcode"]).code, 0);
}

#[test]
fn saved_plan_from_another_registry_or_newer_format_is_refused() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    assert_eq!(w.run(&["plan", "m", "--out", "plan.json"]).code, 0);
    let other = Workdir::new();
    std::fs::copy(w.path().join("plan.json"), other.path().join("plan.json")).expect("copy");
    let run = other.run(&["apply", "--plan", "plan.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("was made against"), "{run:?}");
    let body = std::fs::read_to_string(w.path().join("plan.json")).expect("plan");
    w.write(
        "newer.json",
        &body.replace(
            &format!(
                "\"format_version\": {}",
                modelsync::plan::PLAN_FORMAT_VERSION
            ),
            "\"format_version\": 99",
        ),
    );
    let run = w.run(&["apply", "--plan", "newer.json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("newer"), "{run:?}");
}

#[test]
fn export_adopts_a_registry_with_an_empty_plan() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V2);
    assert_eq!(w.run(&["apply", "m"]).code, 0);
    let run = w.run(&["export"]);
    assert_eq!(run.code, 0, "{run:?}");
    w.write("exported/all.yaml", &run.stdout);
    let run = w.run(&["plan", "exported", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn unreachable_registry_exits_3_never_no_changes() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    let run = w.run(&[
        "--registry",
        "http://127.0.0.1:9",
        "plan",
        "m",
        "--detailed-exitcode",
    ]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(!run.stdout.contains("No changes"), "{run:?}");
}

#[test]
fn schema_command_matches_committed_schema() {
    let out = bin().arg("schema").output().expect("run");
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/modelsync.schema.json"
    ))
    .expect("committed schema");
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn help_texts() {
    for cmd in [
        "",
        "validate",
        "plan",
        "apply",
        "export",
        "get",
        "history",
        "approve",
        "reject",
        "schema",
        "lease",
        "lease show",
        "lease release",
        "rollback",
        "hold",
        "hold list",
        "hold release",
        "freeze",
        "unfreeze",
        "completions",
        "man",
    ] {
        let mut c = bin();
        c.args(cmd.split_whitespace());
        let out = c.arg("--help").env("NO_COLOR", "1").output().expect("help");
        assert_eq!(out.status.code(), Some(0));
        let name = if cmd.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", cmd.replace(' ', "_"))
        };
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn protected_targets_without_gates_fail_validation() {
    let w = Workdir::new();
    w.write("m/churn.yaml", V1);
    let run = w.run(&["validate", "m", "--protect", "Production,champion"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("m/churn.yaml:"), "{run:?}");
    assert!(run.stdout.contains("Production"), "{run:?}");
    // The same from modelsync.toml beside the manifests; apply writes nothing.
    w.write("m/modelsync.toml", "protect = [\"champion\"]\n");
    let run = w.run(&["apply", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("champion"), "{run:?}");
    assert!(!w.registry_file().exists());
    // With gates declared for both, it validates.
    let gated = V1.replace(
        "  aliases:\n    champion: first\n",
        "  aliases:\n    champion: first\n  gates:\n    Production:\n      - requireTag: {key: approved}\n    champion:\n      - requireTag: {key: approved}\n",
    );
    w.write("m/churn.yaml", &gated);
    let run = w.run(&["validate", "m", "--protect", "Production"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn validate_prints_every_problem_with_file_line_column_on_stdout() {
    let w = Workdir::new();
    w.write(
        "m/a.yaml",
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: a\nspec:\n  versions:\n    x: {version: 1}\n  stages:\n    Prod: x\n  aliases:\n    latest: x\n",
    );
    w.write(
        "m/b.yaml",
        "apiVersion: modelsync/v2\nkind: RegisteredModel\nmetadata:\n  name: b\n",
    );
    let run = w.run(&["validate", "m"]);
    assert_eq!(run.code, 1, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    assert!(lines[0].starts_with("m/a.yaml:9:5: "), "{run:?}");
    assert!(lines[1].starts_with("m/a.yaml:11:5: "), "{run:?}");
    assert!(lines[2].starts_with("m/b.yaml:1:"), "{run:?}");
    assert!(run.stderr.contains("3 problems"), "{run:?}");
}

//! The JSON Schema (`modelsync schema`) and `validate` agree, on the same
//! corpus: every document `validate` accepts passes the schema, and every
//! broken corpus file passes the schema only when its problem is one a JSON
//! Schema cannot express (listed below, with why).

use std::path::{Path, PathBuf};

use modelsync::manifest::{SourceFile, load, schema::json_schema, yaml::parse_documents};
use modelsync::naming;

/// Broken corpus files YAML itself rejects: there is no JSON document for
/// the schema to judge.
const NOT_YAML: &[&str] = &[
    "alias-bomb",           // alias expansion limit
    "deep-nesting",         // nesting limit
    "duplicate-key",        // a key twice: JSON objects cannot hold it
    "invalid-utf8",         // not text
    "syntax-unclosed-flow", // YAML syntax
    "tabs-indentation",     // YAML syntax
];

/// Broken corpus files whose problem needs more than one value at a time,
/// which a JSON Schema cannot compare: the schema accepts them.
const SEMANTIC: &[&str] = &[
    "access-protected-edit", // protect: true limits the permissions of the grants beside it
    "duplicate-experiment",  // the same name in two documents
    "duplicate-model",       // the same name in two documents
    "gate-dataset-digest-alone", // datasetDigest needs dataset; dataset needs a metric gate
    "gate-bounds-inverted",  // atLeast > atMost: compares two numbers
    "gate-target-undeclared", // a gates key must be a key of stages or aliases
    "handle-undefined",      // a stage's handle must be a key of versions
    "runid-mismatch",        // runId must equal the id inside source
    "same-source-twice",     // two versions with one source
    "version-in-two-stages", // two stages naming one version
    "verify-target-undeclared", // a verify key must be declared; timeout compared with for
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn validator() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// The file's documents as JSON values, or the YAML error.
fn documents(contents: &[u8]) -> Result<Vec<serde_json::Value>, String> {
    parse_documents::<serde_json::Value>(contents)
        .into_iter()
        .map(|d| d.map_err(|e| e.message))
        .collect()
}

/// The schema with its root narrowed to one kind of document, for
/// readable messages (the root's `anyOf` only says "no branch matched").
fn validator_for_kind(kind: &str) -> jsonschema::Validator {
    let mut schema: serde_json::Value =
        serde_json::from_str(&json_schema()).expect("schema is JSON");
    let def = match kind {
        "Experiment" => "ExperimentDocument",
        "AccessPolicy" => "AccessPolicyDocument",
        _ => "ModelDocument",
    };
    schema["anyOf"] = serde_json::json!([{"$ref": format!("#/$defs/{def}")}]);
    jsonschema::validator_for(&schema).expect("valid schema")
}

/// The schema's complaints about every document of `path`.
fn schema_errors(v: &jsonschema::Validator, path: &Path) -> Result<Vec<String>, String> {
    let contents = std::fs::read(path).expect("read");
    let docs = documents(&contents)?;
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if v.is_valid(doc) {
            continue;
        }
        let by_kind = validator_for_kind(doc["kind"].as_str().unwrap_or_default());
        let mut errors: Vec<String> = by_kind
            .iter_errors(doc)
            .map(|e| format!("document {}: {}: {e}", i + 1, e.instance_path()))
            .collect();
        if errors.is_empty() {
            errors.push(format!("document {}: no kind of document matches", i + 1));
        }
        out.extend(errors);
    }
    Ok(out)
}

fn name(path: &Path) -> String {
    path.file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_valid_manifest_passes_the_schema() {
    let v = validator();
    let mut files = Vec::new();
    for dir in [
        "manifests",
        "examples/quickstart/manifests",
        "tests/corpus/valid",
    ] {
        files.extend(yaml_files(&root().join(dir)));
    }
    assert!(files.len() >= 4, "{files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let source = SourceFile {
            path: path.display().to_string(),
            contents: std::fs::read(path).expect("read"),
        };
        if let Err(diags) = load(std::slice::from_ref(&source)) {
            failures.push(format!(
                "{}: validate rejects it: {diags:?}",
                path.display()
            ));
        }
        match schema_errors(&v, path) {
            Ok(errors) if errors.is_empty() => {}
            Ok(errors) => failures.push(format!("{}:\n  {}", path.display(), errors.join("\n  "))),
            Err(e) => failures.push(format!("{}: not YAML: {e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_schema_rejects_what_validate_rejects() {
    let v = validator();
    let files = yaml_files(&root().join("tests/corpus/broken"));
    assert!(files.len() >= 20);
    let mut failures = Vec::new();
    for path in &files {
        let name = name(path);
        let source = SourceFile {
            path: path.display().to_string(),
            contents: std::fs::read(path).expect("read"),
        };
        assert!(load(&[source]).is_err(), "{name}: validate accepts it");
        let result = schema_errors(&v, path);
        let expected = if NOT_YAML.contains(&name.as_str()) {
            "not YAML"
        } else if SEMANTIC.contains(&name.as_str()) {
            "accepted"
        } else {
            "rejected"
        };
        let actual = match &result {
            Err(_) => "not YAML",
            Ok(errors) if errors.is_empty() => "accepted",
            Ok(_) => "rejected",
        };
        if actual != expected {
            failures.push(format!(
                "{name}: expected {expected}, the schema says {actual} {result:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for listed in NOT_YAML.iter().chain(SEMANTIC) {
        assert!(
            files.iter().any(|p| name(p) == *listed),
            "{listed} is listed but not in the corpus"
        );
    }
}

/// Whether the schema accepts a model document with `spec` as its spec.
fn accepts_model(v: &jsonschema::Validator, name: &str, spec: serde_json::Value) -> bool {
    v.is_valid(&serde_json::json!({
        "apiVersion": "modelsync/v1",
        "kind": "RegisteredModel",
        "metadata": {"name": name},
        "spec": spec,
    }))
}

/// The schema's patterns and `naming` (what `validate` and the embedded
/// registry use) agree on names beyond the corpus.
#[test]
fn schema_patterns_agree_with_the_naming_rules() {
    let v = validator();
    let long_key = "k".repeat(251);
    let long_alias = "a".repeat(256);
    let samples = [
        "team",
        "a..b",
        "x..",
        ".a",
        "a.",
        "a b",
        "été",
        "a/b:c",
        "a//b",
        "/abs",
        "a/",
        "./a",
        "a/./b",
        "a/../b",
        ".",
        "..",
        "...",
        "..x",
        "../etc",
        "a$b",
        "a=b",
        "",
        "champion",
        "v1",
        "V42",
        "v",
        "v1a",
        "latest",
        "LaTeSt",
        "latest2",
        "a-b_c",
        "a.b",
        &long_key,
        &long_alias,
    ];
    let mut disagreements = Vec::new();
    for s in samples {
        let tag = accepts_model(&v, "m", serde_json::json!({"tags": {s: "x"}}));
        if tag != naming::tag_key_problem(s).is_none() {
            disagreements.push(format!("tag key {s:?}: schema accepts = {tag}"));
        }
        let alias = accepts_model(&v, "m", serde_json::json!({"aliases": {s: 1}}));
        if alias != naming::alias_problem(s).is_none() {
            disagreements.push(format!("alias {s:?}: schema accepts = {alias}"));
        }
        let model = accepts_model(&v, s, serde_json::json!({}));
        if model != naming::model_name_problem(s).is_none() {
            disagreements.push(format!("model name {s:?}: schema accepts = {model}"));
        }
    }
    for d in [
        "24h",
        "30m",
        "1h 30m",
        "1h30m",
        "7days",
        "2 days 3h",
        " 1h ",
        "1.5h",
        "500ms",
        "1 h",
        "1M",
        "2yrs",
        "0s",
        "0h 0m",
        "forever",
        "-3h",
        "1hm",
        "h",
        "",
        "10 years",
        "3wk",
    ] {
        let schema = accepts_model(
            &v,
            "m",
            serde_json::json!({"gates": {"Production": [{"soak": {"stage": "Staging", "for": d}}]}}),
        );
        let validate = humantime::parse_duration(d.trim()).is_ok_and(|t| !t.is_zero());
        if schema != validate {
            disagreements.push(format!("duration {d:?}: schema accepts = {schema}"));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

//! Validation tests: one snapshot per rule, the sample manifest, bounded
//! parsing, the sample manifests and the broken-manifest corpus.

use std::time::{Duration, Instant};

use super::*;
use crate::manifest::Gate;

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_string(),
        contents: text.as_bytes().to_vec(),
    }
}

/// Diagnostics of one file `m.yaml`, one per line, or `ok`.
fn check(text: &str) -> String {
    check_files(&[file("m.yaml", text)])
}

fn check_files(files: &[SourceFile]) -> String {
    match load(files) {
        Ok(_) => "ok".to_string(),
        Err(diags) => diags
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A model document with `body` as its spec (indented by the caller).
fn model(body: &str) -> String {
    format!("apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: m\nspec:\n{body}")
}

const DESIGN_EXAMPLE: &str = include_str!("../../../manifests/nba-game-predictor.yaml");

#[test]
fn design_example_resolves() {
    let state = load(&[file("manifests/nba-game-predictor.yaml", DESIGN_EXAMPLE)])
        .expect("the sample manifest is valid");
    let m = &state.models["nba-game-predictor"];
    assert_eq!(
        m.origin.to_string(),
        "manifests/nba-game-predictor.yaml:5:9"
    );
    assert_eq!(
        m.description.as_deref(),
        Some("XGBoost model for game outcome prediction")
    );
    assert_eq!(m.tags["team"], "ml-engineering");
    assert_eq!(m.versions["current"].locator, Locator::Number(3));
    assert_eq!(
        m.versions["candidate"].locator,
        Locator::Source {
            source: "runs:/0124b9dda13f4b80b51550ec98e05eab/model".to_string(),
            run_id: Some("0124b9dda13f4b80b51550ec98e05eab".to_string()),
        }
    );
    assert_eq!(m.versions["candidate"].tags["dataset"], "2026-11");
    assert_eq!(m.versions["candidate"].origin.line, 13);
    assert_eq!(m.stages[&Stage::Production], "current");
    assert_eq!(m.stages[&Stage::Staging], "candidate");
    assert_eq!(
        m.aliases.get("champion").map(String::as_str),
        Some("current")
    );
    assert_eq!(
        m.aliases.get("challenger").map(String::as_str),
        Some("candidate")
    );
    let gates = &m.gates[&GateTarget::Stage(Stage::Production)];
    assert_eq!(
        gates,
        &vec![
            Gate::Metric {
                dataset: None,
                metric: "accuracy".to_string(),
                at_least: Some(0.9),
                at_most: None
            },
            Gate::Beats {
                dataset: None,
                alias: "champion".to_string(),
                metric: "accuracy".to_string(),
                by: 0.0
            },
            Gate::Soak {
                target: GateTarget::Stage(Stage::Staging),
                duration: Duration::from_secs(24 * 3600)
            },
            Gate::RequireTag {
                key: "approved".to_string(),
                value: Some("true".to_string())
            },
        ]
    );
    let e = &state.experiments["nba-game-predictions"];
    assert_eq!(
        e.artifact_location.as_deref(),
        Some("s3://nba-sim-raw-data-lake/mlflow")
    );
    assert_eq!(e.tags["team"], "ml-engineering");
    assert!(state.digest.starts_with("sha256:") && state.digest.len() == 7 + 64);
}

#[test]
fn sample_manifests_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("manifests/ exists") {
        let path = entry.expect("dir entry").path();
        let text = std::fs::read_to_string(&path).expect("readable manifest");
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/modelsync.schema.json\n"),
            "{} lacks the schema line",
            path.display()
        );
        files.push(file(&path.display().to_string(), &text));
    }
    assert!(files.len() >= 2);
    assert_eq!(check_files(&files), "ok");
}

#[test]
fn bare_numbers_become_handles() {
    let state = load(&[file(
        "m.yaml",
        &model("  stages: {Production: 3, staging: '4'}\n  aliases: {champion: 3}\n"),
    )])
    .expect("valid");
    let m = &state.models["m"];
    assert_eq!(m.versions["3"].locator, Locator::Number(3));
    assert_eq!(m.versions["3"].origin.to_string(), "m.yaml:6:24");
    assert_eq!(m.versions["4"].locator, Locator::Number(4));
    assert_eq!(m.stages[&Stage::Production], "3");
    assert_eq!(m.stages[&Stage::Staging], "4");
    assert_eq!(m.aliases.get("champion").map(String::as_str), Some("3"));
}

#[test]
fn run_id_derived_from_runs_source_and_tags_kept_as_written() {
    let state = load(&[file(
        "m.yaml",
        &model(
            "  tags: {year: 2026, on: true, ratio: 1.50}\n  versions:\n    c: {source: runs:/abc/model}\n    d: {source: s3://b/k}\n  stages: {Staging: c}\n",
        ),
    )])
    .expect("valid");
    let m = &state.models["m"];
    assert_eq!(
        m.versions["c"].locator,
        Locator::Source {
            source: "runs:/abc/model".to_string(),
            run_id: Some("abc".to_string())
        }
    );
    assert_eq!(
        m.versions["d"].locator,
        Locator::Source {
            source: "s3://b/k".to_string(),
            run_id: None
        }
    );
    assert_eq!(m.tags["year"], "2026");
    assert_eq!(m.tags["on"], "true");
    assert_eq!(m.tags["ratio"], "1.50");
}

#[test]
fn digest_ignores_input_order_but_not_content() {
    let a = file("a.yaml", &model("  stages: {Production: 1}\n"));
    let b = file("b.yaml", "");
    let one = load(&[a.clone(), b.clone()]).expect("valid").digest;
    let two = load(&[b.clone(), a.clone()]).expect("valid").digest;
    assert_eq!(one, two);
    let changed = file("b.yaml", "# comment\n");
    assert_ne!(one, load(&[a, changed]).expect("valid").digest);
}

macro_rules! rule {
    ($name:ident, $text:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(check(&$text));
        }
    };
}

rule!(
    yaml_syntax_error,
    "apiVersion: modelsync/v1\nkind: [RegisteredModel\n"
);
rule!(
    yaml_syntax_error_mapping,
    "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: a: b\n"
);
rule!(tabs_as_indentation, model("\tdescription: x\n"));
rule!(
    duplicate_keys,
    model("  description: a\n  description: b\n")
);
rule!(unknown_field, model("  descriptoin: x\n"));
rule!(
    unknown_field_in_version,
    model("  versions:\n    a: {version: 1, stage: Production}\n")
);
rule!(
    unknown_top_level_field,
    format!("{}status: {{}}\n", model("  description: x\n"))
);
rule!(wrong_type, model("  tags: [a, b]\n"));
rule!(
    unknown_api_version,
    "apiVersion: modelsync/v2\nkind: RegisteredModel\nmetadata: {name: m}\n"
);
rule!(
    unknown_kind,
    "apiVersion: modelsync/v1\nkind: Model\nmetadata: {name: m}\nspec: {}\n"
);
rule!(
    missing_metadata_name,
    "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {}\n"
);
rule!(
    missing_kind,
    "apiVersion: modelsync/v1\nmetadata: {name: m}\n"
);
rule!(
    spec_before_kind,
    "apiVersion: modelsync/v1\nspec: {}\nkind: RegisteredModel\nmetadata: {name: m}\n"
);
rule!(
    empty_name,
    "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: ''}\n---\napiVersion: modelsync/v1\nkind: Experiment\nmetadata: {name: ' '}\n"
);
rule!(
    model_name_with_slash_or_colon,
    "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: team/model}\n---\napiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: 'a:b'}\n"
);
rule!(unknown_stage, model("  stages:\n    Prod: 3\n"));
rule!(
    stage_twice_in_other_case,
    model("  stages:\n    Production: 3\n    production: 4\n")
);
rule!(
    stage_names_any_case,
    model("  stages:\n    PRODUCTION: 3\n    staging: 4\n    archived: 1\n")
);
rule!(
    alias_invalid_characters,
    model("  aliases:\n    champ.ion: 3\n    'champ ion': 3\n")
);
rule!(
    alias_reserved,
    model("  aliases:\n    latest: 3\n    LATEST: 3\n    v2: 3\n    V10: 3\n")
);
rule!(
    alias_empty_and_too_long,
    model(&format!(
        "  aliases:\n    '': 3\n    {}: 3\n",
        "a".repeat(256)
    ))
);
rule!(
    handle_not_defined,
    model(
        "  versions:\n    current: {version: 3}\n  stages:\n    Production: candidate\n  aliases:\n    champion: curent\n"
    )
);
rule!(
    version_and_source_both,
    model(
        "  versions:\n    a: {version: 3, source: runs:/r/model}\n    b: {description: neither}\n  stages: {Production: a, Staging: b}\n"
    )
);
rule!(
    version_number_below_one,
    model(
        "  versions:\n    a: {version: 0}\n  stages: {Production: -1}\n  aliases: {champion: 0}\n"
    )
);
rule!(
    handle_all_digits,
    model("  versions:\n    '3': {version: 3}\n")
);
rule!(
    one_version_in_two_stages,
    model(
        "  versions:\n    cur: {version: 3}\n    cand: {source: s3://b/m}\n  stages:\n    Production: cur\n    Staging: 3\n    Archived: cand\n    None: cand\n"
    )
);
rule!(
    same_source_twice,
    model("  versions:\n    a: {source: s3://b/m}\n    b: {source: s3://b/m}\n")
);
rule!(
    same_version_number_twice,
    model("  versions:\n    a: {version: 2}\n    b: {version: 2}\n")
);
rule!(
    run_id_contradicts_source,
    model(
        "  versions:\n    a: {source: runs:/abc/model, runId: def}\n    b: {version: 1, runId: abc}\n"
    )
);
rule!(
    gate_key_neither_stage_nor_alias,
    model("  gates:\n    'Prod ': [{requireTag: {key: ok}}]\n    v1: [{requireTag: {key: ok}}]\n")
);
rule!(
    metric_gate_without_bounds,
    model("  stages: {Production: 1}\n  gates:\n    Production:\n      - metric: accuracy\n")
);
rule!(
    metric_gate_string_threshold,
    model(
        "  stages: {Production: 1}\n  gates:\n    Production:\n      - metric: accuracy\n        atLeast: \"0.9\"\n"
    )
);
rule!(
    metric_gate_inverted_bounds,
    model(
        "  stages: {Production: 1}\n  gates:\n    Production:\n      - {metric: accuracy, atLeast: 0.9, atMost: 0.5}\n"
    )
);
rule!(
    gate_with_two_kinds,
    model(
        "  stages: {Production: 1}\n  gates:\n    Production:\n      - {metric: accuracy, atLeast: 0.9, requireTag: {key: ok}}\n      - {}\n      - {beats: {alias: champion, metric: acc}, atMost: 1}\n"
    )
);
rule!(
    beats_gate_bad_alias_and_missing_metric,
    model(
        "  aliases: {champion: 1}\n  gates:\n    champion:\n      - beats: {alias: latest, metric: acc}\n      - beats: {alias: champion}\n"
    )
);
rule!(
    soak_gate_rules,
    model(
        "  stages: {Production: 1}\n  gates:\n    Production:\n      - soak: {for: 24h}\n      - soak: {stage: Staging, alias: champion, for: 1h}\n      - soak: {stage: Prod, for: 1h}\n      - soak: {stage: Staging, for: 0s}\n      - soak: {stage: Staging, for: -3h}\n      - soak: {alias: v1, for: soon}\n"
    )
);
rule!(
    require_tag_bad_key,
    model(
        "  stages: {Production: 1}\n  gates:\n    Production:\n      - requireTag: {key: '/approved'}\n      - requireTag: {value: x}\n"
    )
);
rule!(
    tag_key_rules,
    model(&format!(
        "  tags:\n    'a..b': x\n    '/x': y\n    'a=b': z\n    {}: long\n  versions:\n    v: {{version: 1, tags: {{'bad!': x}}}}\n",
        "k".repeat(251)
    ))
);
rule!(tag_value_null, model("  tags:\n    team: ~\n"));
rule!(
    tag_key_path_rules,
    model(
        "  tags:\n    'a..b': ok\n    'x..': ok\n    'a//b': x\n    'a/': x\n    './a': x\n    'a/../b': x\n    '..x': x\n    '.': x\n"
    )
);
rule!(
    model_name_path_rules,
    "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: '.'}\n---\napiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: '..x'}\n---\napiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: 'a..b'}\n"
);
rule!(
    length_limits,
    format!(
        "{}---\napiVersion: modelsync/v1\nkind: Experiment\nmetadata: {{name: {}}}\n---\napiVersion: modelsync/v1\nkind: Experiment\nmetadata: {{name: e}}\nspec:\n  tags: {{note: {}}}\n",
        model(&format!(
            "  description: {}\n  tags: {{big: {}}}\n  versions:\n    a: {{source: s3://{}}}\n    b: {{version: 1, description: {}}}\n",
            "d".repeat(5001),
            "v".repeat(100_001),
            "s".repeat(500),
            "d".repeat(5001),
        )),
        "e".repeat(501),
        "t".repeat(5001),
    )
);
rule!(
    gate_target_undeclared,
    model(
        "  stages: {Production: 1, staging: 2}\n  aliases: {champion: 1}\n  gates:\n    Prodution: [{requireTag: {key: ok}}]\n    STAGING: [{requireTag: {key: ok}}]\n    Archived: [{requireTag: {key: ok}}]\n    champoin: [{requireTag: {key: ok}}]\n    challenger: [{requireTag: {key: ok}}]\n"
    )
);
rule!(
    gate_target_undeclared_skips_reported_keys,
    model(
        "  stages: {Prod: 1}\n  aliases: {latest: 1}\n  gates:\n    Prod: [{requireTag: {key: ok}}]\n"
    )
);

#[test]
fn gate_targets_match_declared_stages_in_any_case() {
    let text = model(
        "  stages: {PRODUCTION: 1}\n  aliases: {champion: 1}\n  gates:\n    production: [{requireTag: {key: ok}}]\n    champion: [{requireTag: {key: ok}}]\n",
    );
    let state = load(&[file("m.yaml", &text)]).expect("valid");
    let gates = &state.models["m"].gates;
    assert!(gates.contains_key(&GateTarget::Stage(Stage::Production)));
    assert!(gates.contains_key(&GateTarget::Alias("champion".to_string())));
}
rule!(
    two_documents_same_model,
    format!(
        "{}---\n{}",
        model("  description: a\n"),
        model("  description: b\n")
    )
);
rule!(
    same_experiment_twice,
    "apiVersion: modelsync/v1\nkind: Experiment\nmetadata: {name: e}\n---\napiVersion: modelsync/v1\nkind: Experiment\nmetadata: {name: e}\nspec: {artifactLocation: ''}\n"
);
rule!(
    experiment_rejects_model_fields,
    "apiVersion: modelsync/v1\nkind: Experiment\nmetadata: {name: e}\nspec: {stages: {Production: 1}}\n"
);
rule!(not_a_mapping, "- just\n- a list\n---\nplain text\n");
rule!(
    many_problems_sorted,
    format!(
        "{}---\napiVersion: x\nkind: RegisteredModel\nmetadata: {{name: n}}\nspec:\n  aliases: {{latest: 1}}\n",
        model("  stages: {Prod: 1, Staging: nope}\n  aliases: {v1: 2}\n")
    )
);

#[test]
fn same_model_in_two_files_names_the_first() {
    let text = model("  description: a\n");
    insta::assert_snapshot!(check_files(&[file("b.yaml", &text), file("a.yaml", &text)]), @"b.yaml:4:9: model \"m\" is already declared at a.yaml:4:9");
}

#[test]
fn protected_targets_need_gates() {
    let text = model(
        "  stages: {Production: 1, Staging: 2}\n  aliases: {champion: 1, other: 2}\n  gates:\n    Staging: [{requireTag: {key: ok}}]\n",
    );
    let files = [file("m.yaml", &text)];
    assert!(load(&files).is_ok(), "no protection by default");
    let options = LoadOptions {
        registries: Default::default(),
        protect: vec![
            "production".to_string(),
            "Staging".to_string(),
            "champion".to_string(),
        ],
        ..LoadOptions::default()
    };
    let diags: Vec<String> = load_with(&files, &options)
        .expect_err("protected targets without gates")
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(diags.join("\n"), @r#"
    m.yaml:6:12: stage Production is protected: declare gates for it under spec.gates.Production
    m.yaml:7:13: alias "champion" is protected: declare gates for it under spec.gates.champion
    "#);
}

/// Runs `f` and asserts it took less than two seconds.
fn fast<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    out
}

#[test]
fn parsing_is_bounded() {
    let mut bomb = String::from(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata: {name: m}\nspec:\n  tags:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n",
    );
    let mut prev = 'a';
    for c in 'b'..='j' {
        bomb.push_str(&format!(
            "    {c}: &{c} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
        prev = c;
    }
    let out = fast("alias bomb", || check(&bomb));
    insta::assert_snapshot!(out, @"m.yaml:6:24: alias expansion too large: aliases would expand to more than 100000 nodes");

    let deep_flow = format!("{}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    insta::assert_snapshot!(fast("deep flow nesting", || check(&deep_flow)), @"m.yaml:1:65: nesting too deep: at most 64 levels of mappings and lists");
    // 10,000 nested block sequences on one line (`- - - ... x`).
    let deep_block = format!("{}x\n", "- ".repeat(10_000));
    insta::assert_snapshot!(fast("deep block nesting", || check(&deep_block)), @"m.yaml:1:129: nesting too deep: at most 64 levels of mappings and lists");

    let mut big = model("  description: x\n");
    big.push_str(&format!("# {}\n", "x".repeat(5 * 1024 * 1024)));
    insta::assert_snapshot!(fast("5 MiB file", || check(&big)), @"m.yaml:1:1: file is too large: 5242973 bytes, at most 4194304 (4 MiB) allowed");

    let mut bad = model("  description: caf").into_bytes();
    bad.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let files = [SourceFile {
        path: "bad.yaml".to_string(),
        contents: bad,
    }];
    insta::assert_snapshot!(fast("invalid UTF-8", || check_files(&files)), @"bad.yaml:6:19: file is not valid UTF-8");
}

/// The broken-manifest corpus: `tests/corpus/broken/<name>.yaml` and the
/// exact diagnostics in `<name>.expected` (`UPDATE_CORPUS=1` rewrites them).
#[test]
fn broken_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/broken");
    let update = std::env::var_os("UPDATE_CORPUS").is_some_and(|v| v == "1");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("tests/corpus/broken exists")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 20, "the corpus has {} files", names.len());
    let mut failures = Vec::new();
    for name in &names {
        let contents = std::fs::read(dir.join(format!("{name}.yaml"))).expect("read corpus file");
        let files = [SourceFile {
            path: format!("broken/{name}.yaml"),
            contents,
        }];
        let actual = match load(&files) {
            Ok(_) => "(no diagnostics)\n".to_string(),
            Err(diags) => diags.iter().map(|d| format!("{d}\n")).collect(),
        };
        let expected_path = dir.join(format!("{name}.expected"));
        if update {
            std::fs::write(&expected_path, &actual).expect("write .expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            failures.push(format!(
                "{name}:\n--- expected\n{expected}--- actual\n{actual}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "corpus mismatches (rerun with UPDATE_CORPUS=1 after review):\n{}",
        failures.join("\n")
    );
}

#[test]
fn from_needs_a_declared_registry_and_one_selector() {
    let text = model(
        "  versions:\n    released:\n      from: {registry: dev, model: nba-dev, alias: champion}\n",
    );
    let undeclared = check(&text);
    assert!(
        undeclared.contains("registry \"dev\" is not declared: add [registries.dev]"),
        "{undeclared}"
    );
    let options = LoadOptions {
        registries: [("dev".to_string(), "http://dev".to_string())].into(),
        ..LoadOptions::default()
    };
    let d =
        crate::manifest::validate::load_with(&[file("m.yaml", &text)], &options).expect("valid");
    let Locator::From(f) = &d.models["m"].versions["released"].locator else {
        panic!("a from locator");
    };
    assert_eq!(f.key(), "dev:nba-dev@champion");
    assert_eq!(f.experiment, crate::manifest::DEFAULT_COPY_EXPERIMENT);
    let two = model(
        "  versions:\n    released:\n      from: {registry: dev, model: nba-dev, alias: champion, version: 3}\n",
    );
    let err = crate::manifest::validate::load_with(&[file("m.yaml", &two)], &options).unwrap_err();
    assert!(
        err[0]
            .to_string()
            .contains("exactly one of alias, version or stage"),
        "{err:?}"
    );
    let both = model(
        "  versions:\n    released:\n      version: 2\n      from: {registry: dev, model: nba-dev, stage: production}\n",
    );
    let err = crate::manifest::validate::load_with(&[file("m.yaml", &both)], &options).unwrap_err();
    assert!(
        err[0]
            .to_string()
            .contains("has from together with version"),
        "{err:?}"
    );
}

//! The three renderings: text (with and without colour), JSON, Markdown
//! (gates passed and blocked, collapsing, truncation).

use insta::assert_snapshot;

use super::*;
use crate::plan::render::{MARKDOWN_LIMIT, json, markdown, text};
use crate::plan::{Plan, plan};

/// A plan with every kind of line: registration, a passed and a blocked
/// gated move, an archive, a prune, tags, an error, experiments.
fn rich() -> Plan {
    let d = desired(vec![
        M::new("nba-game-predictor")
            .desc("XGBoost model for game outcome prediction")
            .tag("team", "ml-engineering")
            .number("current", 3)
            .number("candidate", 4)
            .source("next", "runs:/0124b9dda13f4b80b51550ec98e05eab/model")
            .vdesc("next", "retrained on November data")
            .vtag("next", "dataset", "2026-11")
            .stage(Stage::Production, "candidate")
            .stage(Stage::Staging, "next")
            .alias("champion", "candidate")
            .alias("challenger", "next")
            .gate(
                GateTarget::Stage(Stage::Production),
                metric_at_least("accuracy", 0.9),
            )
            .gate(
                GateTarget::Stage(Stage::Production),
                Gate::RequireTag {
                    key: "approved".into(),
                    value: Some("true".into()),
                },
            )
            .gate(
                GateTarget::Alias("champion".into()),
                metric_at_least("accuracy", 0.95),
            ),
        M::new("nhl")
            .number("gone", 9)
            .stage(Stage::Production, "gone"),
        M::new("brand-new")
            .desc("fresh")
            .tag("team", "ml")
            .source("v1", "s3://bucket/v1")
            .alias("champion", "v1"),
    ]);
    let l = live(vec![
        L::new("nba-game-predictor")
            .desc("XGBoost")
            .tag("team", "ml-engineering")
            .tag(
                "modelsync.managed",
                r#"{"aliases":["champion","old"],"stages":["Staging","Production"]}"#,
            )
            .version(2, Stage::Production, "s3://2")
            .version(3, Stage::Production, "s3://3")
            .version(4, Stage::Staging, "s3://4")
            .vtag(4, "approved", "true")
            .alias("champion", 3)
            .alias("old", 2),
        L::new("nhl").version(1, Stage::None, "s3://1"),
    ]);
    let l = with_run(l, "run-4", &[("accuracy", 0.93)]);
    let mut d = d;
    for e in [
        experiment(
            "nba-game-predictions",
            Some("s3://nba-sim-raw-data-lake/mlflow"),
            &[("team", "ml")],
        ),
        experiment("legacy", Some("s3://new-place"), &[]),
    ] {
        d.experiments.insert(e.name.clone(), e);
    }
    let mut l = l;
    l.experiments.insert(
        "legacy".into(),
        live_experiment("legacy", "s3://old-place", &[]),
    );
    plan(&d, &l, &prune_ctx())
}

#[test]
fn text_plain() {
    assert_snapshot!(text(&rich(), false), @r#"
        model brand-new
          + create model
              description "fresh"
              ownership record: aliases champion; stages none
              tag team = "ml"
          + register version (v1) from s3://bucket/v1
          + alias champion: none -> new version (v1)

        model nba-game-predictor
          ~ description: "XGBoost" -> "XGBoost model for game outcome prediction"
          + register version (next) from runs:/0124b9dda13f4b80b51550ec98e05eab/model
              description "retrained on November data"
              tag dataset = "2026-11"
          ~ stage Staging: version 4 -> new version (next)
          ~ stage Production: versions 2, 3 -> version 4 (from Staging)
              passed: metric accuracy >= 0.9 (accuracy 0.93 >= 0.90, from run run-4)
              passed: requireTag approved=true (approved = "true")
          + alias challenger: none -> new version (next)
          ! blocked: alias champion: version 3 -> version 4
              blocked: metric accuracy >= 0.95 (accuracy 0.93 < 0.95, from run run-4)
          - archive version 2 (was Production)
          - archive version 3 (was Production)
          - delete alias old (was version 2, no longer declared)
          ~ ownership record: aliases champion, old; stages Staging, Production -> aliases challenger, champion; stages Staging, Production

        model nhl
          error: version 9 of "nhl" does not exist

        experiment legacy
          warning: artifact location is "s3://old-place" in the registry, the manifest says "s3://new-place"; MLflow cannot change it, so it is left alone

        experiment nba-game-predictions
          + create experiment at s3://nba-sim-raw-data-lake/mlflow
              tag team = "ml"

        Plan: 2 to register, 4 to move, 2 to archive, 1 to delete, 4 other changes; 1 blocked by gates, 1 model with errors.
        "#);
}

#[test]
fn text_colour_adds_only_escapes() {
    let p = rich();
    let coloured = text(&p, true);
    assert!(coloured.contains("\x1b[1;31m  ! blocked:"));
    let stripped = coloured
        .replace("\x1b[0m", "")
        .replace("\x1b[1;31m", "")
        .replace("\x1b[1m", "")
        .replace("\x1b[31m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[33m", "");
    assert_eq!(stripped, text(&p, false));
    assert!(!text(&p, false).contains('\x1b'));
}

#[test]
fn text_empty() {
    assert_snapshot!(text(&Plan::empty(), false), @"No changes. The registry matches the manifests.");
    assert_snapshot!(markdown(&Plan::empty()), @r#"
        ## modelsync plan

        **No changes. The registry matches the manifests.**
        "#);
}

#[test]
fn json_round_trips() {
    let p = rich();
    let out = json(&p);
    assert!(out.ends_with("}\n"));
    let back: Plan = serde_json::from_str(&out).expect("parses");
    assert_eq!(back, p);
    assert_snapshot!(out, @r#"
        {
          "format_version": 5,
          "models": [
            {
              "model": "brand-new",
              "actions": [
                {
                  "action": "create_model",
                  "description": "fresh",
                  "tags": {
                    "modelsync.managed": "{\"aliases\":[\"champion\"],\"stages\":[]}",
                    "team": "ml"
                  }
                },
                {
                  "action": "register_version",
                  "handle": "v1",
                  "declared_source": "s3://bucket/v1",
                  "source": "s3://bucket/v1",
                  "tags": {
                    "modelsync.source": "s3://bucket/v1"
                  }
                },
                {
                  "action": "set_alias",
                  "alias": "champion",
                  "version": {
                    "new": "v1"
                  },
                  "before": null
                }
              ]
            },
            {
              "model": "nba-game-predictor",
              "actions": [
                {
                  "action": "update_model_description",
                  "before": "XGBoost",
                  "after": "XGBoost model for game outcome prediction"
                },
                {
                  "action": "register_version",
                  "handle": "next",
                  "declared_source": "runs:/0124b9dda13f4b80b51550ec98e05eab/model",
                  "source": "runs:/0124b9dda13f4b80b51550ec98e05eab/model",
                  "run_id": "0124b9dda13f4b80b51550ec98e05eab",
                  "description": "retrained on November data",
                  "tags": {
                    "dataset": "2026-11",
                    "modelsync.source": "runs:/0124b9dda13f4b80b51550ec98e05eab/model"
                  }
                },
                {
                  "action": "transition_stage",
                  "version": {
                    "new": "next"
                  },
                  "from": "None",
                  "to": "Staging",
                  "holders": [
                    4
                  ]
                },
                {
                  "action": "transition_stage",
                  "version": {
                    "existing": 4
                  },
                  "from": "Staging",
                  "to": "Production",
                  "holders": [
                    2,
                    3
                  ],
                  "gates": [
                    {
                      "gate": "metric accuracy >= 0.9",
                      "status": "passed",
                      "detail": "accuracy 0.93 >= 0.90, from run run-4"
                    },
                    {
                      "gate": "requireTag approved=true",
                      "status": "passed",
                      "detail": "approved = \"true\""
                    }
                  ]
                },
                {
                  "action": "set_alias",
                  "alias": "challenger",
                  "version": {
                    "new": "next"
                  },
                  "before": null
                },
                {
                  "action": "set_alias",
                  "alias": "champion",
                  "version": {
                    "existing": 4
                  },
                  "before": 3,
                  "gates": [
                    {
                      "gate": "metric accuracy >= 0.95",
                      "status": "blocked",
                      "detail": "accuracy 0.93 < 0.95, from run run-4"
                    }
                  ]
                },
                {
                  "action": "archive_version",
                  "version": 2,
                  "from": "Production",
                  "replaced_by": {
                    "existing": 4
                  }
                },
                {
                  "action": "archive_version",
                  "version": 3,
                  "from": "Production",
                  "replaced_by": {
                    "existing": 4
                  }
                },
                {
                  "action": "delete_alias",
                  "alias": "old",
                  "before": 2
                },
                {
                  "action": "set_model_tag",
                  "key": "modelsync.managed",
                  "before": "{\"aliases\":[\"champion\",\"old\"],\"stages\":[\"Staging\",\"Production\"]}",
                  "after": "{\"aliases\":[\"challenger\",\"champion\"],\"stages\":[\"Staging\",\"Production\"]}"
                }
              ]
            },
            {
              "model": "nhl",
              "actions": [],
              "errors": [
                "version 9 of \"nhl\" does not exist"
              ]
            }
          ],
          "experiments": [
            {
              "experiment": "legacy",
              "actions": [],
              "warnings": [
                "artifact location is \"s3://old-place\" in the registry, the manifest says \"s3://new-place\"; MLflow cannot change it, so it is left alone"
              ]
            },
            {
              "experiment": "nba-game-predictions",
              "actions": [
                {
                  "action": "create_experiment",
                  "artifact_location": "s3://nba-sim-raw-data-lake/mlflow",
                  "tags": {
                    "team": "ml"
                  }
                }
              ]
            }
          ]
        }
        "#);
}

#[test]
fn markdown_with_gates() {
    assert_snapshot!(markdown(&rich()), @r#"
        ## modelsync plan

        **Plan: 2 to register, 4 to move, 2 to archive, 1 to delete, 4 other changes; 1 blocked by gates, 1 model with errors.**

        | model | changes | blocked |
        | --- | ---: | ---: |
        | `brand-new` | 3 | 0 |
        | `nba-game-predictor` | 10 | 1 |
        | `nhl` | error | 0 |
        | experiment `legacy` | 0 | 0 |
        | experiment `nba-game-predictions` | 1 | 0 |

        ### `brand-new`

        | change | gates |
        | --- | --- |
        | create model<br>description "fresh"<br>ownership record: aliases champion; stages none<br>tag team = "ml" |  |
        | register version (v1) from s3://bucket/v1 |  |
        | alias champion: none -&gt; new version (v1) |  |

        ### `nba-game-predictor`

        | change | gates |
        | --- | --- |
        | description: "XGBoost" -&gt; "XGBoost model for game outcome prediction" |  |
        | register version (next) from runs:/0124b9dda13f4b80b51550ec98e05eab/model<br>description "retrained on November data"<br>tag dataset = "2026-11" |  |
        | stage Staging: version 4 -&gt; new version (next) |  |
        | stage Production: versions 2, 3 -&gt; version 4 (from Staging) | :white_check_mark: `metric accuracy >= 0.9`: accuracy 0.93 &gt;= 0.90, from run run-4<br>:white_check_mark: `requireTag approved=true`: approved = "true" |
        | alias challenger: none -&gt; new version (next) |  |
        | :no_entry: **blocked:** alias champion: version 3 -&gt; version 4 | :x: `metric accuracy >= 0.95`: accuracy 0.93 &lt; 0.95, from run run-4 |
        | archive version 2 (was Production) |  |
        | archive version 3 (was Production) |  |
        | delete alias old (was version 2, no longer declared) |  |
        | ownership record: aliases champion, old; stages Staging, Production -&gt; aliases challenger, champion; stages Staging, Production |  |

        ### `nhl`

        - :x: **error:** version 9 of "nhl" does not exist

        ### experiment `legacy`

        - :warning: **warning:** artifact location is "s3://old-place" in the registry, the manifest says "s3://new-place"; MLflow cannot change it, so it is left alone

        ### experiment `nba-game-predictions`

        - create experiment at s3://nba-sim-raw-data-lake/mlflow
        "#);
}

/// `n` models with `actions` tag changes each.
fn many(n: usize, actions: usize) -> Plan {
    let mut models = Vec::new();
    let mut lives = Vec::new();
    for i in 0..n {
        let name = format!("model-{i:04}");
        let mut m = M::new(&name);
        for t in 0..actions {
            m = m.tag(
                &format!("tag-{t:02}"),
                "a value that is somewhat long to fill the table",
            );
        }
        models.push(m);
        lives.push(L::new(&name));
    }
    plan(&desired(models), &live(lives), &ctx())
}

#[test]
fn markdown_collapses_long_models() {
    let out = markdown(&many(1, 11));
    assert!(out.contains("<details><summary>11 changes</summary>"));
    let out = markdown(&many(1, 10));
    assert!(!out.contains("<details>"));
    assert_snapshot!(out, @r#"
        ## modelsync plan

        **Plan: 0 to register, 0 to move, 0 to archive, 0 to delete, 10 other changes.**

        | model | changes | blocked |
        | --- | ---: | ---: |
        | `model-0000` | 10 | 0 |

        ### `model-0000`

        | change | gates |
        | --- | --- |
        | tag tag-00 = "a value that is somewhat long to fill the table" |  |
        | tag tag-01 = "a value that is somewhat long to fill the table" |  |
        | tag tag-02 = "a value that is somewhat long to fill the table" |  |
        | tag tag-03 = "a value that is somewhat long to fill the table" |  |
        | tag tag-04 = "a value that is somewhat long to fill the table" |  |
        | tag tag-05 = "a value that is somewhat long to fill the table" |  |
        | tag tag-06 = "a value that is somewhat long to fill the table" |  |
        | tag tag-07 = "a value that is somewhat long to fill the table" |  |
        | tag tag-08 = "a value that is somewhat long to fill the table" |  |
        | tag tag-09 = "a value that is somewhat long to fill the table" |  |
        "#);
}

#[test]
fn markdown_is_truncated_with_a_note() {
    let p = many(400, 12);
    let out = markdown(&p);
    assert!(out.len() <= MARKDOWN_LIMIT, "{} characters", out.len());
    let lines: Vec<&str> = out.lines().collect();
    let note = lines[lines.len() - 2..].join("\n");
    assert_snapshot!(note, @r#"
        > [!NOTE]
        > This comment was truncated to stay under 65,000 characters: 343 models not shown. Run `modelsync plan` for the full plan.
        "#);
    let shown = out.matches("\n### `model-").count();
    assert!(shown > 10, "only {shown} models shown");
    assert!(note.contains(&format!("{} models not shown", 400 - shown)));
}

#[test]
fn markdown_truncates_a_huge_summary_table_too() {
    let out = markdown(&many(3000, 1));
    assert!(out.len() <= MARKDOWN_LIMIT, "{} characters", out.len());
    let rows = out.matches("\n| `model-").count();
    assert!(
        out.contains(&format!("| … and {} more | | |", 3000 - rows)),
        "{rows} rows"
    );
    assert!(out.contains("models not shown. Run `modelsync plan` for the full plan."));
}

/// A declared version number that does not exist is reported at the place
/// it was declared, in all three renderings.
#[test]
fn unknown_version_error_names_where_it_was_declared() {
    let manifest = "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: nhl\n\
                    spec:\n  versions:\n    gone: {version: 9}\n  stages:\n    Production: gone\n  \
                    aliases:\n    champion: 12\n";
    let d = crate::manifest::load(&[crate::manifest::SourceFile {
        path: "manifests/nhl.yaml".to_string(),
        contents: manifest.as_bytes().to_vec(),
    }])
    .expect("valid manifest");
    let l = live(vec![L::new("nhl").version(1, Stage::None, "s3://1")]);
    let p = plan(&d, &l, &ctx());
    assert_snapshot!(text(&p, false), @r#"
    model nhl
      error: manifests/nhl.yaml:7:21: version 9 of "nhl" does not exist
      error: manifests/nhl.yaml:11:15: version 12 of "nhl" does not exist

    Plan: 0 to register, 0 to move, 0 to archive, 0 to delete, 0 other changes; 1 model with errors.
    "#);
    let md = markdown(&p);
    assert!(
        md.contains(r#"**error:** manifests/nhl.yaml:7:21: version 9 of "nhl" does not exist"#),
        "{md}"
    );
    let js: serde_json::Value = serde_json::from_str(&json(&p)).expect("json");
    assert_eq!(
        js["models"][0]["errors"][0],
        r#"manifests/nhl.yaml:7:21: version 9 of "nhl" does not exist"#
    );
}

#[test]
fn a_targeted_plan_says_what_it_covers_first() {
    use crate::manifest::targets::Targets;
    let targets = Targets {
        models: ["a-model".to_string(), "b".to_string()].into(),
        experiments: ["e".to_string()].into(),
    };
    let targeted = Plan {
        targets: Some(targets),
        ..Plan::empty()
    };
    assert_snapshot!(text(&targeted, false), @r"
    Targeted plan: only a-model, b, experiment e; the other manifests were validated, not read from the registry or planned.

    No changes. The registry matches the manifests.
    ");
    assert_snapshot!(markdown(&targeted), @r"
    ## modelsync plan

    **No changes. The registry matches the manifests.**

    _Targeted plan: only `a-model`, `b`, experiment `e`; the other manifests were validated, not read from the registry or planned._
    ");
    let nothing = Plan {
        targets: Some(Targets::default()),
        ..Plan::empty()
    };
    assert!(
        text(&nothing, false)
            .starts_with("Targeted plan: only nothing (no declared model was selected);"),
        "{}",
        text(&nothing, false)
    );
    let full = text(&Plan::empty(), false);
    assert!(!full.contains("Targeted"), "{full}");
    let json = json(&targeted);
    assert!(
        json.contains("\"targets\": {\n    \"models\": [\n      \"a-model\",\n      \"b\"\n    ],\n    \"experiments\": [\n      \"e\"\n    ]\n  }"),
        "{json}"
    );
}

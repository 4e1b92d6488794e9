//! Export tests: the rendered manifests, and the round trip through `load`.

use std::collections::BTreeMap;

use super::*;
use crate::manifest::{Locator, SourceFile, load};
use crate::state::{LiveVersion, Stage};

fn version(n: u64, stage: Stage) -> LiveVersion {
    LiveVersion {
        version: n,
        stage,
        source: format!("runs:/run{n}/model"),
        run_id: format!("run{n}"),
        ..LiveVersion::default()
    }
}

fn tags<M: FromIterator<(String, String)>>(pairs: &[(&str, &str)]) -> M {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn live() -> LiveState {
    let mut live = LiveState::default();
    let mut a = LiveModel {
        name: "nba-game-predictor".to_string(),
        description: "XGBoost: game outcomes\nsecond line".to_string(),
        tags: tags(&[
            ("team", "ml-engineering"),
            ("year", "2026"),
            ("flag", "true"),
            ("empty", ""),
            ("odd1", "null"),
            ("odd2", "~"),
            ("odd3", "010"),
            ("odd4", "- x"),
            ("odd5", "a: b #c"),
            ("odd6", " lead"),
            ("odd7", "1e3"),
            ("odd8", "*ref"),
            ("mlflow.user", "x"),
            ("modelsync.revision", "abc"),
        ]),
        ..LiveModel::default()
    };
    for (n, stage) in [
        (1, Stage::Archived),
        (2, Stage::Production),
        (3, Stage::Staging),
        (4, Stage::None),
        (5, Stage::None),
    ] {
        a.versions.insert(n, version(n, stage));
    }
    let v3 = a.versions.get_mut(&3).expect("version 3");
    v3.description = "retrained".to_string();
    v3.tags = tags(&[("dataset", "2026-11"), ("mlflow.source", "x")]);
    a.aliases.insert("champion".to_string(), 2);
    a.aliases.insert("challenger".to_string(), 4);
    live.models.insert(a.name.clone(), a);

    // Two versions in Production (made by hand): the highest is declared.
    let mut b = LiveModel {
        name: "churn".to_string(),
        ..LiveModel::default()
    };
    b.versions.insert(1, version(1, Stage::Production));
    b.versions.insert(2, version(2, Stage::Production));
    b.versions.insert(3, version(3, Stage::None));
    live.models.insert(b.name.clone(), b);

    // Nothing held: a bare model document.
    live.models.insert(
        "empty".to_string(),
        LiveModel {
            name: "empty".to_string(),
            ..LiveModel::default()
        },
    );

    live.experiments.insert(
        "nba-game-predictions".to_string(),
        LiveExperiment {
            experiment_id: "1".to_string(),
            name: "nba-game-predictions".to_string(),
            artifact_location: "s3://bucket/mlflow".to_string(),
            tags: tags(&[("team", "ml"), ("mlflow.note.content", "x")]),
        },
    );
    live
}

#[test]
fn renders_manifests() {
    insta::assert_snapshot!(render(&live()));
}

#[test]
fn empty_registry_renders_only_the_header() {
    let out = render(&LiveState::default());
    assert_eq!(
        out,
        "# yaml-language-server: $schema=../schemas/modelsync.schema.json\n"
    );
    let state = load(&[SourceFile {
        path: "x.yaml".to_string(),
        contents: out.into_bytes(),
    }])
    .expect("valid");
    assert!(state.models.is_empty() && state.experiments.is_empty());
}

#[test]
fn round_trips_through_load() {
    let live = live();
    let text = render(&live);
    let state = load(&[SourceFile {
        path: "export.yaml".to_string(),
        contents: text.into_bytes(),
    }])
    .unwrap_or_else(|d| panic!("exported manifests must validate: {d:?}"));

    assert_eq!(
        state.models.keys().collect::<Vec<_>>(),
        live.models.keys().collect::<Vec<_>>()
    );
    for (name, lm) in &live.models {
        let dm = &state.models[name];
        let number = |handle: &String| match dm.versions[handle].locator {
            Locator::Number(n) => n,
            ref other => panic!("exported versions are by number, got {other:?}"),
        };
        // Stages: the (highest) live holder of Staging and Production.
        for stage in [Stage::Staging, Stage::Production] {
            let live_holder = lm.holders(stage).map(|v| v.version).max();
            let declared = dm.stages.get(&stage).map(number);
            assert_eq!(declared, live_holder, "{name} {stage}");
        }
        assert!(dm.stages.keys().all(|s| s.is_exclusive()));
        // Aliases: exactly the live ones.
        let aliases: crate::state::SmallMap<String, u64> = dm
            .aliases
            .iter()
            .map(|(a, h)| (a.clone(), number(h)))
            .collect();
        assert_eq!(aliases, lm.aliases, "{name} aliases");
        // Model tags and description as live, minus system tags.
        let expected_tags: BTreeMap<String, String> = lm
            .tags
            .iter()
            .filter(|(k, _)| !k.starts_with("mlflow.") && !k.starts_with("modelsync."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(dm.tags, expected_tags, "{name} tags");
        let description = (!lm.description.is_empty()).then(|| lm.description.clone());
        assert_eq!(dm.description, description, "{name} description");
        // Declared version descriptions and tags equal the live ones.
        for (handle, v) in &dm.versions {
            let lv = &lm.versions[&number(handle)];
            let d = (!lv.description.is_empty()).then(|| lv.description.clone());
            assert_eq!(v.description, d);
            assert!(v.tags.iter().all(|(k, val)| lv.tags.get(k) == Some(val)));
        }
        assert!(dm.gates.is_empty());
    }
    let e = &state.experiments["nba-game-predictions"];
    assert_eq!(e.artifact_location.as_deref(), Some("s3://bucket/mlflow"));
    assert_eq!(e.tags, tags(&[("team", "ml")]));
}

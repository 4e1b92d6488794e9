//! Property: for generated manifests and live registries, one apply through
//! the real executor and the embedded registry converges — re-planning is
//! empty — and no source is ever registered twice.

use std::collections::BTreeMap;

use modelsync::apply::{self, ApplyOptions};
use modelsync::manifest::{self, SourceFile};
use modelsync::plan::PlanContext;
use modelsync::reconcile;
use modelsync::registry::Registry;
use modelsync::state::Stage;
use modelsync::state::tags;
use proptest::prelude::*;

use crate::support::embedded::TempRegistry;

const MODELS: [&str; 3] = ["alpha", "beta", "gamma"];
const ALIASES: [&str; 3] = ["champion", "challenger", "shadow"];

/// A generated manifest for one model: which of 4 possible sources are
/// declared, and which declared source each stage/alias points at.
#[derive(Debug, Clone)]
struct ModelSpec {
    sources: Vec<usize>,
    staging: Option<usize>,
    production: Option<usize>,
    aliases: Vec<(usize, usize)>,
}

fn model_spec() -> impl Strategy<Value = ModelSpec> {
    (
        proptest::sample::subsequence(vec![0usize, 1, 2, 3], 1..=4),
        any::<(Option<usize>, Option<usize>)>(),
        proptest::collection::vec((0..3usize, any::<usize>()), 0..3),
    )
        .prop_map(|(sources, (s, p), aliases)| {
            let pick = |i: usize| sources[i % sources.len()];
            let staging = s.map(pick);
            // A version holds at most one declared stage.
            let production = p.map(pick).filter(|p| Some(*p) != staging);
            let mut seen = BTreeMap::new();
            for (a, v) in aliases {
                seen.insert(a, pick(v));
            }
            ModelSpec {
                sources,
                staging,
                production,
                aliases: seen.into_iter().collect(),
            }
        })
}

fn yaml(name: &str, m: &ModelSpec) -> String {
    let mut out = format!(
        "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: {name}\nspec:\n  versions:\n"
    );
    for s in &m.sources {
        out.push_str(&format!(
            "    h{s}:\n      source: s3://bucket/{name}/{s}\n"
        ));
    }
    let stages: Vec<_> = [("Staging", m.staging), ("Production", m.production)]
        .into_iter()
        .filter_map(|(st, v)| v.map(|v| (st, v)))
        .collect();
    if !stages.is_empty() {
        out.push_str("  stages:\n");
        for (st, v) in stages {
            out.push_str(&format!("    {st}: h{v}\n"));
        }
    }
    if !m.aliases.is_empty() {
        out.push_str("  aliases:\n");
        for (a, v) in &m.aliases {
            out.push_str(&format!("    {}: h{v}\n", ALIASES[*a]));
        }
    }
    out
}

fn files(specs: &[Option<ModelSpec>]) -> Vec<SourceFile> {
    specs
        .iter()
        .zip(MODELS)
        .filter_map(|(m, name)| {
            m.as_ref().map(|m| SourceFile {
                path: format!("{name}.yaml"),
                contents: yaml(name, m).into_bytes(),
            })
        })
        .collect()
}

fn opts() -> ApplyOptions {
    ApplyOptions {
        concurrency: 2,
        revision: Some("abc123".into()),
        now_ms: modelsync::clock::wall_ms(),
        cancel: None,
        gates: Default::default(),
        approvals: Default::default(),
        lease: None,
        fence: None,
        progress: None,
        sources: Default::default(),
        break_glass: None,
    }
}

/// Hand-made drift: (model, version index, stage index or alias index).
type Drift = Vec<(usize, usize, usize, bool)>;

async fn converge(before: Vec<Option<ModelSpec>>, drift: Drift, after: Vec<Option<ModelSpec>>) {
    let reg = TempRegistry::new();
    let reg = &reg.registry;
    let ctx = PlanContext {
        now_ms: modelsync::clock::wall_ms(),
        prune: false,
        registry: String::new(),
        break_glass: None,
    };
    // The live state: an earlier set of manifests, applied, then drifted by hand.
    let earlier = manifest::load(&files(&before)).expect("earlier manifests are valid");
    let (_, p) = reconcile::plan(reg, &Default::default(), &earlier, &ctx)
        .await
        .expect("plan");
    let report = apply::execute(reg, &p, &opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    for (m, v, target, is_alias) in drift {
        let name = MODELS[m % 3];
        let Some(model) = reg.get_model(name).await.expect("get") else {
            continue;
        };
        let versions: Vec<u64> = model.versions.keys().copied().collect();
        let version = versions[v % versions.len()];
        if is_alias {
            reg.set_alias(name, ALIASES[target % 3], version)
                .await
                .expect("alias");
        } else {
            let stage = Stage::ALL[target % 4];
            reg.transition_stage(name, version, stage)
                .await
                .expect("stage");
        }
    }
    // One apply of the new manifests converges.
    let desired = manifest::load(&files(&after)).expect("manifests are valid");
    let (_, p) = reconcile::plan(reg, &Default::default(), &desired, &ctx)
        .await
        .expect("plan");
    let report = apply::execute(reg, &p, &opts()).await;
    assert_eq!(report.failed(), 0, "{report:?}");
    let (live, again) = reconcile::plan(reg, &Default::default(), &desired, &ctx)
        .await
        .expect("re-plan");
    assert!(
        again.is_empty(),
        "not converged after one apply:\n{again:#?}\nfirst plan:\n{p:#?}"
    );
    // Declared stages hold exactly the declared version.
    for (name, m) in MODELS.iter().zip(&after) {
        let (Some(m), Some(model)) = (m, live.models.get(*name)) else {
            continue;
        };
        for (stage, want) in [
            (Stage::Staging, m.staging),
            (Stage::Production, m.production),
        ] {
            if let Some(want) = want {
                let holders: Vec<_> = model.holders(stage).map(|v| v.source.clone()).collect();
                assert_eq!(
                    holders,
                    vec![format!("s3://bucket/{name}/{want}")],
                    "{stage} of {name}"
                );
            }
        }
        // Never a source registered twice.
        let mut sources = BTreeMap::<String, usize>::new();
        for v in model.versions.values() {
            let s = v
                .tags
                .get(tags::SOURCE)
                .cloned()
                .unwrap_or_else(|| v.source.clone());
            *sources.entry(s).or_default() += 1;
        }
        assert!(
            sources.values().all(|n| *n == 1),
            "duplicate registration: {sources:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn one_apply_converges_and_never_registers_twice(
        before in proptest::collection::vec(proptest::option::of(model_spec()), 3),
        drift in proptest::collection::vec((0..3usize, any::<usize>(), any::<usize>(), any::<bool>()), 0..4),
        after in proptest::collection::vec(proptest::option::of(model_spec()), 3),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(converge(before, drift, after));
    }
}

//! Property test: applying a plan converges in one step.
//!
//! `simulate` applies a plan to a live state the way MLflow would (new
//! versions get the next number, stage moves never archive by themselves,
//! aliases are upserts). For generated desired and live states (no gates),
//! re-planning after one simulated apply is empty, and no source is ever
//! registered twice.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::plan::stale::registered_as;
use crate::plan::{Action, ExperimentAction, VersionRef, plan};
use crate::state::{LiveModel, LiveVersion, ResolvedSource};

const SOURCES: [&str; 5] = [
    "s3://b/1",
    "s3://b/2",
    "runs:/r1/model",
    "runs:/r2/model",
    "models:/m-9",
];
const ALIASES: [&str; 3] = ["champion", "challenger", "old"];
const STAGES: [Stage; 4] = [
    Stage::None,
    Stage::Staging,
    Stage::Production,
    Stage::Archived,
];

/// Applies `plan` to `live` as MLflow would.
pub fn simulate(plan: &crate::plan::Plan, live: &LiveState) -> LiveState {
    let mut out = live.clone();
    for mp in &plan.models {
        let mut new_numbers: BTreeMap<String, u64> = BTreeMap::new();
        for action in &mp.actions {
            if action.is_blocked() {
                continue;
            }
            if let Action::CreateModel { description, tags } = action {
                out.models.insert(
                    mp.model.clone(),
                    crate::state::LiveModel {
                        name: mp.model.clone(),
                        description: description.clone().unwrap_or_default(),
                        tags: tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        ..Default::default()
                    },
                );
                continue;
            }
            let m = out
                .models
                .get_mut(&mp.model)
                .expect("model exists before its changes");
            let number = |t: &VersionRef| match t {
                VersionRef::Existing(n) => *n,
                VersionRef::New(h) => new_numbers[h],
            };
            match action {
                Action::CreateModel { .. } => unreachable!("handled above"),
                Action::CopyVersion { .. } => unreachable!("these plans declare no from:"),
                Action::UpdateModelDescription { after, .. } => m.description = after.clone(),
                Action::SetModelTag { key, after, .. } => {
                    m.tags.insert(key.clone(), after.clone());
                }
                Action::RegisterVersion {
                    handle,
                    source,
                    run_id,
                    model_id,
                    description,
                    tags,
                    ..
                } => {
                    let n = m.versions.keys().max().copied().unwrap_or(0) + 1;
                    m.versions.insert(
                        n,
                        LiveVersion {
                            version: n,
                            source: source.clone(),
                            run_id: run_id.clone().unwrap_or_default(),
                            model_id: model_id.clone().unwrap_or_default(),
                            description: description.clone().unwrap_or_default(),
                            tags: tags.clone(),
                            ..Default::default()
                        },
                    );
                    new_numbers.insert(handle.clone(), n);
                }
                Action::UpdateVersionDescription { version, after, .. } => {
                    m.versions.get_mut(version).expect("version").description = after.clone();
                }
                Action::SetVersionTag {
                    version,
                    key,
                    after,
                    ..
                } => {
                    let v = m.versions.get_mut(version).expect("version");
                    v.tags.insert(key.clone(), after.clone());
                }
                Action::TransitionStage { version, to, .. } => {
                    let n = number(version);
                    m.versions.get_mut(&n).expect("version").stage = *to;
                }
                Action::SetAlias { alias, version, .. } => {
                    let n = number(version);
                    m.aliases.insert(alias.clone(), n);
                }
                Action::ArchiveVersion { version, .. } => {
                    m.versions.get_mut(version).expect("version").stage = Stage::Archived;
                }
                Action::DeleteAlias { alias, .. } => {
                    m.aliases.remove(alias);
                }
                Action::ReleaseHold { target, .. } => {
                    m.tags.remove(&crate::state::hold::tag_key(target));
                }
            }
        }
    }
    for ep in &plan.experiments {
        for action in &ep.actions {
            match action {
                ExperimentAction::CreateExperiment {
                    artifact_location,
                    tags,
                } => {
                    let mut e = live_experiment(&ep.experiment, "", &[]);
                    e.artifact_location = artifact_location.clone().unwrap_or_default();
                    e.tags = tags.clone();
                    out.experiments.insert(ep.experiment.clone(), e);
                }
                ExperimentAction::SetExperimentTag { key, after, .. } => {
                    let e = out.experiments.get_mut(&ep.experiment).expect("experiment");
                    e.tags.insert(key.clone(), after.clone());
                }
            }
        }
    }
    out
}

fn run_of(source: &str) -> String {
    source
        .strip_prefix("runs:/")
        .and_then(|r| r.split('/').next())
        .unwrap_or("")
        .to_string()
}

prop_compose! {
    fn live_model(name: &'static str)(
        versions in prop::collection::vec((0..SOURCES.len(), 0..4usize, any::<bool>()), 0..6),
        aliases in prop::collection::vec(prop::option::of(0..6usize), 3),
        owned_aliases in prop::collection::vec(any::<bool>(), 3),
        owned_stages in prop::collection::vec(any::<bool>(), 4),
        has_inventory in any::<bool>(),
    ) -> LiveModel {
        let mut m = L::new(name);
        for (i, (src, stage, tagged)) in versions.iter().enumerate() {
            let n = i as u64 + 1;
            m = m.version(n, STAGES[*stage], SOURCES[*src]).run_id(n, &run_of(SOURCES[*src]));
            if *tagged {
                m = m.vtag(n, "k", "live");
            }
        }
        for (a, target) in ALIASES.iter().zip(&aliases) {
            if let Some(t) = target.filter(|t| *t < versions.len()) {
                m = m.alias(a, t as u64 + 1);
            }
        }
        if has_inventory {
            let inv = serde_json::json!({
                "aliases": ALIASES.iter().zip(&owned_aliases).filter(|(_, o)| **o).map(|(a, _)| a).collect::<Vec<_>>(),
                "stages": STAGES.iter().zip(&owned_stages).filter(|(_, o)| **o).map(|(s, _)| s.as_str()).collect::<Vec<_>>(),
            });
            m = m.tag("modelsync.managed", &inv.to_string());
        }
        m.0
    }
}

#[derive(Debug, Clone)]
enum H {
    Number(u64),
    Source(usize),
}

prop_compose! {
    fn desired_model(name: &'static str)(
        handles in prop::collection::vec(
            prop_oneof![(1..7u64).prop_map(H::Number), (0..SOURCES.len()).prop_map(H::Source)],
            1..4,
        ),
        tagged in prop::collection::vec(any::<bool>(), 4),
        stages in prop::sample::subsequence(vec![0usize, 1, 2, 3], 0..4),
        stage_handles in prop::collection::vec(0..4usize, 4),
        aliases in prop::collection::vec(prop::option::of(0..4usize), 2),
        described in any::<bool>(),
    ) -> DesiredModel {
        let mut m = M::new(name).tag("team", "ml");
        if described {
            m = m.desc("declared");
        }
        for (i, h) in handles.iter().enumerate() {
            let handle = format!("h{i}");
            m = match h {
                H::Number(n) => m.number(&handle, *n),
                H::Source(s) => m.source(&handle, SOURCES[*s]),
            };
            if tagged[i] {
                m = m.vtag(&handle, "k", "declared");
            }
        }
        // Distinct handles per stage (validation forbids one handle in two).
        let mut used = std::collections::BTreeSet::new();
        for (stage, h) in stages.iter().zip(&stage_handles) {
            let h = h % handles.len();
            if used.insert(h) {
                m = m.stage(STAGES[*stage], &format!("h{h}"));
            }
        }
        for (a, h) in ALIASES.iter().zip(&aliases) {
            if let Some(h) = h {
                m = m.alias(a, &format!("h{}", h % handles.len()));
            }
        }
        m.0
    }
}

prop_compose! {
    fn states()(
        da in desired_model("a"),
        db in desired_model("b"),
        la in prop::option::of(live_model("a")),
        lb in prop::option::of(live_model("b")),
        resolved in any::<bool>(),
        prune in any::<bool>(),
    ) -> (DesiredState, LiveState, bool) {
        let d = desired(vec![M(da), M(db)]);
        let mut l = live(la.into_iter().chain(lb).map(L).collect());
        if resolved {
            l.resolved_sources.insert("runs:/r2/model".into(), ResolvedSource {
                source: "models:/m-2".into(),
                run_id: Some("r2".into()),
                model_id: Some("m-2".into()),
                location: None,
            });
        }
        (d, l, prune)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_apply_converges_and_never_registers_twice((d, l, prune) in states()) {
        let ctx = PlanContext {
            now_ms: NOW_MS,
            prune,
            registry: REGISTRY.into(),
            break_glass: None,
        };
        let first = plan(&d, &l, &ctx);
        for mp in &first.models {
            let mut seen = std::collections::BTreeSet::new();
            for a in &mp.actions {
                if let Action::RegisterVersion { declared_source, source, run_id, .. } = a {
                    prop_assert!(seen.insert(declared_source.clone()), "{} registered twice", declared_source);
                    let already = l.models.get(&mp.model)
                        .and_then(|m| registered_as(m, declared_source, source, run_id.as_deref(), &l))
                        .is_some();
                    prop_assert!(!already, "{} is already registered", declared_source);
                }
            }
        }
        let mut after = simulate(&first, &l);
        // The next snapshot resolves only what still needs resolving.
        let needed = crate::plan::sources_to_resolve(&d, &after);
        after.resolved_sources.retain(|k, _| needed.contains(k));
        let second = plan(&d, &after, &ctx);
        prop_assert!(second.is_empty(), "not converged:\n{}\nfirst:\n{}", show(&second), show(&first));
        let errors = |p: &crate::plan::Plan| {
            p.models.iter().filter(|m| !m.errors.is_empty()).map(|m| m.errors.clone()).collect::<Vec<_>>()
        };
        prop_assert_eq!(errors(&first), errors(&second));
        // The saved first plan is stale against the converged registry only
        // if it changed something.
        prop_assert_eq!(crate::plan::stale::check_actions(&second, &after), Vec::<String>::new());
    }
}

//! The saved-plan format: every action and gate kind round-trips, versions
//! are refused as documented, and plans with errors are not saved.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::manifest::{Gate, GateTarget};
use crate::plan::{
    Action, ExperimentAction, ExperimentPlan, GateCheck, GateStatus, ModelPlan, VersionRef,
};
use crate::state::{CopySource, Stage, TreeFile, VersionStatus};

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter)
}

fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..3)
}

fn stage() -> impl Strategy<Value = Stage> {
    prop::sample::select(Stage::ALL.to_vec())
}

fn target() -> impl Strategy<Value = VersionRef> {
    prop_oneof![
        any::<u64>().prop_map(VersionRef::Existing),
        text().prop_map(VersionRef::New)
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |f| f.is_finite())
}

fn checks() -> impl Strategy<Value = Vec<GateCheck>> {
    let status = prop_oneof![Just(GateStatus::Passed), Just(GateStatus::Blocked)];
    let check = (text(), status, text()).prop_map(|(gate, status, detail)| GateCheck {
        gate,
        status,
        detail,
        approved_by: Vec::new(),
    });
    prop::collection::vec(check, 0..3)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (prop::option::of(text()), tags())
            .prop_map(|(description, tags)| Action::CreateModel { description, tags }),
        (text(), text())
            .prop_map(|(before, after)| Action::UpdateModelDescription { before, after }),
        (text(), prop::option::of(text()), text())
            .prop_map(|(key, before, after)| Action::SetModelTag { key, before, after }),
        (
            text(),
            text(),
            text(),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
            tags()
        )
            .prop_map(
                |(handle, declared_source, source, run_id, model_id, description, tags)| {
                    Action::RegisterVersion {
                        handle,
                        declared_source,
                        source,
                        run_id,
                        model_id,
                        description,
                        tags,
                    }
                }
            ),
        (any::<u64>(), text(), text()).prop_map(|(version, before, after)| {
            Action::UpdateVersionDescription {
                version,
                before,
                after,
            }
        }),
        (any::<u64>(), text(), prop::option::of(text()), text()).prop_map(
            |(version, key, before, after)| {
                Action::SetVersionTag {
                    version,
                    key,
                    before,
                    after,
                }
            }
        ),
        (
            target(),
            stage(),
            stage(),
            prop::collection::vec(any::<u64>(), 0..3),
            checks()
        )
            .prop_map(
                |(version, from, to, holders, gates)| Action::TransitionStage {
                    version,
                    from,
                    to,
                    holders,
                    gates
                }
            ),
        (text(), target(), prop::option::of(any::<u64>()), checks()).prop_map(
            |(alias, version, before, gates)| Action::SetAlias {
                alias,
                version,
                before,
                gates
            }
        ),
        (any::<u64>(), stage(), prop::option::of(target())).prop_map(
            |(version, from, replaced_by)| Action::ArchiveVersion {
                version,
                from,
                replaced_by
            }
        ),
        (text(), any::<u64>()).prop_map(|(alias, before)| Action::DeleteAlias { alias, before }),
        (
            text(),
            copy_source(),
            text(),
            prop::option::of(text()),
            tags()
        )
            .prop_map(|(handle, from, experiment, description, tags)| {
                Action::CopyVersion {
                    handle,
                    from: Box::new(from),
                    experiment,
                    description,
                    tags,
                }
            }),
    ]
}

fn copy_source() -> impl Strategy<Value = CopySource> {
    let file = (text(), any::<u64>(), text()).prop_map(|(path, size, sha256)| TreeFile {
        path,
        size,
        sha256,
    });
    let ids = (
        text(),
        text(),
        any::<u64>(),
        text(),
        text(),
        prop::option::of(text()),
    );
    let store = (text(), prop::collection::vec(file, 0..3), text());
    let evidence = (
        prop::collection::btree_map(text(), finite(), 0..3),
        tags(),
        text(),
    );
    (ids, store, evidence).prop_map(
        |(
            (registry, uri, version, model, run_id, model_id),
            (artifact_uri, files, digest),
            (metrics, params, description),
        )| CopySource {
            registry,
            uri,
            model,
            version,
            run_id,
            model_id,
            artifact_uri,
            files,
            digest,
            metrics,
            params,
            description,
        },
    )
}

fn observed_copy() -> impl Strategy<Value = ObservedCopy> {
    (
        text(),
        text(),
        any::<u64>(),
        text(),
        prop::option::of(text()),
        text(),
    )
        .prop_map(
            |(registry, model, version, run_id, model_id, digest)| ObservedCopy {
                registry,
                model,
                version,
                run_id,
                model_id,
                digest,
            },
        )
}

fn experiment_action() -> impl Strategy<Value = ExperimentAction> {
    prop_oneof![
        (prop::option::of(text()), tags()).prop_map(|(artifact_location, tags)| {
            ExperimentAction::CreateExperiment {
                artifact_location,
                tags,
            }
        }),
        (text(), prop::option::of(text()), text()).prop_map(|(key, before, after)| {
            ExperimentAction::SetExperimentTag { key, before, after }
        }),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    let model = (
        text(),
        prop::collection::vec(action(), 0..3),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(|(model, actions, errors)| ModelPlan {
            model,
            actions,
            errors,
            held: Vec::new(),
        });
    let exp = (
        text(),
        prop::collection::vec(experiment_action(), 0..3),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(text(), 0..2),
    )
        .prop_map(|(experiment, actions, warnings, errors)| ExperimentPlan {
            experiment,
            actions,
            warnings,
            errors,
        });
    (
        any::<u32>(),
        prop::collection::vec(model, 0..3),
        prop::collection::vec(exp, 0..3),
        prop::collection::vec(prompt_plan(), 0..2),
        prop::option::of(targets()),
        prop::collection::vec(access_plan(), 0..2),
    )
        .prop_map(
            |(format_version, models, experiments, prompts, targets, access)| Plan {
                outputs: Vec::new(),
                format_version,
                models,
                experiments,
                prompts,
                targets,
                access,
            },
        )
}

fn targets() -> impl Strategy<Value = Targets> {
    (
        prop::collection::btree_set(text(), 0..3),
        prop::collection::btree_set(text(), 0..2),
    )
        .prop_map(|(models, experiments)| Targets {
            models,
            experiments,
        })
}

fn access_plan() -> impl Strategy<Value = crate::plan::access::AccessPlan> {
    use crate::plan::access::{AccessAction, AccessPlan};
    use crate::state::access::{Grants, Level, Principal};
    let principal = prop_oneof![
        "[a-z]{1,6}".prop_map(Principal::User),
        "[a-z-]{1,6}".prop_map(Principal::Role),
    ];
    let level = prop::sample::select(Level::DECLARABLE.to_vec());
    let grants = prop::collection::btree_map(principal.clone(), level.clone(), 0..3);
    let action = prop_oneof![
        (
            principal.clone(),
            level.clone(),
            prop::option::of(level.clone()),
            "[a-z]{1,6}"
        )
            .prop_map(|(principal, level, before, policy)| AccessAction::Grant {
                principal,
                level,
                before,
                policy,
            }),
        (principal, level)
            .prop_map(|(principal, before)| AccessAction::Revoke { principal, before }),
        (
            prop::option::of(grants.clone()),
            grants,
            prop::collection::btree_set("[a-z]{1,4}", 0..2)
        )
            .prop_map(|(before, after, policies): (Option<Grants>, Grants, _)| {
                AccessAction::Record {
                    before,
                    after,
                    policies,
                }
            }),
    ];
    (
        "[a-z]{1,8}",
        prop::collection::vec(action, 0..4),
        prop::collection::vec(".{0,10}", 0..2),
        prop::collection::vec(".{0,10}", 0..2),
    )
        .prop_map(|(model, actions, warnings, errors)| AccessPlan {
            model,
            actions,
            warnings,
            errors,
        })
}

fn prompt_plan() -> impl Strategy<Value = crate::plan::prompts::PromptPlan> {
    use crate::plan::prompts::{PromptAction, PromptPlan};
    let action = prop_oneof![
        Just(PromptAction::CreatePrompt),
        (
            "[a-z0-9]{1,6}",
            ".{0,40}",
            prop::option::of(".{0,10}"),
            prop::collection::btree_map("[a-z.]{1,6}", ".{0,6}", 0..2)
        )
            .prop_map(|(handle, template, commit_message, tags)| {
                PromptAction::RegisterVersion {
                    handle,
                    template,
                    commit_message,
                    tags,
                }
            }),
        (
            "[a-z]{1,6}",
            "[a-z0-9]{1,6}",
            prop::option::of(1u64..50),
            prop::option::of(1u64..50),
            ".{0,30}"
        )
            .prop_map(
                |(alias, handle, version, from, diff)| PromptAction::SetAlias {
                    alias,
                    handle,
                    version,
                    from,
                    diff,
                }
            ),
    ];
    (
        "[a-z]{1,8}",
        prop::collection::vec(action, 0..4),
        prop::collection::vec(".{0,10}", 0..2),
        prop::collection::vec(".{0,10}", 0..2),
    )
        .prop_map(|(prompt, actions, errors, warnings)| PromptPlan {
            prompt,
            actions,
            errors,
            warnings,
        })
}

fn gate_target() -> impl Strategy<Value = GateTarget> {
    prop_oneof![
        stage().prop_map(GateTarget::Stage),
        "[a-zA-Z0-9_-]{1,8}".prop_map(GateTarget::Alias),
    ]
}

fn gate() -> impl Strategy<Value = Gate> {
    prop_oneof![
        (
            text(),
            prop::option::of(finite()),
            prop::option::of(finite())
        )
            .prop_map(|(metric, at_least, at_most)| Gate::Metric {
                dataset: None,
                metric,
                at_least,
                at_most
            }),
        (text(), text(), finite()).prop_map(|(alias, metric, by)| Gate::Beats {
            dataset: None,
            alias,
            metric,
            by
        }),
        (gate_target(), any::<u64>(), 0..1_000_000_000u32).prop_map(|(target, s, n)| Gate::Soak {
            target,
            duration: Duration::new(s, n)
        }),
        (text(), prop::option::of(text())).prop_map(|(key, value)| Gate::RequireTag { key, value }),
    ]
}

fn gates() -> impl Strategy<Value = GateSpecs> {
    let per_model =
        prop::collection::btree_map(gate_target(), prop::collection::vec(gate(), 0..4), 0..3);
    prop::collection::btree_map(text(), per_model, 0..3)
}

fn version() -> impl Strategy<Value = ObservedVersion> {
    let status = prop::sample::select(vec![
        VersionStatus::PendingRegistration,
        VersionStatus::FailedRegistration,
        VersionStatus::Ready,
    ]);
    (stage(), status, text(), text(), text(), text(), tags()).prop_map(
        |(stage, status, source, run_id, model_id, description, tags)| ObservedVersion {
            stage,
            status,
            source,
            run_id,
            model_id,
            description,
            tags,
        },
    )
}

fn observed() -> impl Strategy<Value = Observed> {
    let aliases = prop::collection::btree_map(text(), any::<u64>(), 0..3);
    let versions = prop::collection::btree_map(any::<u64>(), version(), 0..3);
    let model =
        (text(), tags(), aliases, versions).prop_map(|(description, tags, aliases, versions)| {
            ObservedModel {
                description,
                tags,
                aliases,
                versions,
            }
        });
    let exp = (text(), tags()).prop_map(|(artifact_location, tags)| ObservedExperiment {
        artifact_location,
        tags,
    });
    let versions = prop::collection::btree_map(any::<u64>(), prop::option::of(text()), 0..2);
    (
        prop::collection::btree_map(text(), prop::option::of(model), 0..3),
        prop::collection::btree_map(text(), prop::option::of(exp), 0..3),
        prop::collection::btree_map(text(), prop::option::of(observed_copy()), 0..3),
        prop::collection::btree_map(text(), versions, 0..2),
        prop::collection::btree_map(text(), prop::option::of(text()), 0..2),
    )
        .prop_map(
            |(models, experiments, copies, version_trees, source_trees)| Observed {
                models,
                experiments,
                copies,
                version_trees,
                source_trees,
                prompts: BTreeMap::from([(
                    "p".to_string(),
                    Some(crate::state::LivePrompt {
                        versions: BTreeMap::from([(1, "Hi {{x}}".to_string())]),
                        aliases: BTreeMap::from([("prod".to_string(), 1)]),
                        not_a_prompt: false,
                    }),
                )]),
                access: Some(super::ObservedAccess {
                    models: BTreeMap::from([(
                        "m".to_string(),
                        crate::state::access::ModelAccess {
                            grants: BTreeMap::from([(
                                crate::state::access::Principal::User("alice".into()),
                                crate::state::access::Level::Read,
                            )]),
                            record: Some("{\"grants\":{}}".into()),
                        },
                    )]),
                    wildcard: BTreeMap::new(),
                    default_permission: Some(crate::state::access::Level::Read),
                }),
            },
        )
}

fn saved_plan() -> impl Strategy<Value = SavedPlan> {
    (
        text(),
        text(),
        prop::option::of(text()),
        text(),
        any::<bool>(),
        plan(),
        gates(),
        observed(),
        prop::collection::vec((text(), text()), 0..3),
        prop::collection::vec(text(), 0..2),
        prop::collection::vec(text(), 0..2),
        prop::option::of(targets()),
    )
        .prop_map(
            |(
                registry,
                manifests_digest,
                revision,
                created_at,
                prune,
                plan,
                gates,
                observed,
                files,
                protect,
                roots,
                targets,
            )| SavedPlan {
                outputs: Vec::new(),
                registries: Default::default(),
                templates: Default::default(),
                format_version: PLAN_FORMAT_VERSION,
                registry,
                manifests_digest,
                revision,
                created_at,
                prune,
                plan,
                gates,
                observed,
                manifests: files
                    .into_iter()
                    .map(|(path, text)| SavedManifest { path, text })
                    .collect(),
                protect,
                roots,
                approvers: None,
                approvals: Default::default(),
                windows: Vec::new(),
                targets,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_is_written_reads_back_the_same(p in saved_plan()) {
        let text = to_json(&p).expect("serializes");
        prop_assert_eq!(from_json(&text).expect("reads back"), p);
    }
}

fn small() -> SavedPlan {
    let mut gates = GateSpecs::new();
    gates.insert(
        "m".into(),
        BTreeMap::from([
            (
                GateTarget::Stage(Stage::Production),
                vec![Gate::Soak {
                    target: GateTarget::Alias("champion".into()),
                    duration: Duration::from_secs(3600),
                }],
            ),
            (
                GateTarget::Alias("champion".into()),
                vec![Gate::RequireTag {
                    key: "approved".into(),
                    value: None,
                }],
            ),
        ]),
    );
    SavedPlan {
        outputs: Vec::new(),
        registries: Default::default(),
        templates: Default::default(),
        format_version: PLAN_FORMAT_VERSION,
        registry: "file:r.json".into(),
        manifests_digest: "sha256:00".into(),
        revision: None,
        created_at: "2026-11-20T12:00:00Z".into(),
        prune: false,
        plan: Plan::empty(),
        gates,
        observed: Observed::default(),
        manifests: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        approvals: Default::default(),
        windows: Vec::new(),
        targets: None,
    }
}

#[test]
fn gate_targets_are_strings_stages_by_name_aliases_with_an_at() {
    let text = to_json(&small()).expect("serializes");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    insta::assert_snapshot!(serde_json::to_string(&v["gates"]).expect("json"), @r#"{"m":{"@champion":[{"require_tag":{"key":"approved","value":null}}],"Production":[{"soak":{"duration":{"nanos":0,"secs":3600},"target":"@champion"}}]}}"#);
}

#[test]
fn newer_older_and_foreign_files_are_refused() {
    let text = to_json(&small()).expect("serializes");
    let with = |v: &str| {
        text.replace(
            "\"format_version\": 5,",
            &format!("\"format_version\": {v},"),
        )
    };
    assert!(text.contains("\"format_version\": 5,"), "{text}");
    assert_eq!(from_json(&with("6")), Err(FormatError::Newer { found: 6 }));
    assert_eq!(from_json(&with("1")), Err(FormatError::Older { found: 1 }));
    for older in ["2", "3", "4"] {
        assert!(
            from_json(&with(older)).is_ok(),
            "version {older} plans without copies are still read"
        );
    }
    assert_eq!(from_json(&with("\"4\"")), Err(FormatError::NoVersion));
    assert!(matches!(from_json("{"), Err(FormatError::NotJson(_))));
    assert!(matches!(
        from_json(r#"{"format_version": 5}"#),
        Err(FormatError::Invalid(_))
    ));
    let msg = FormatError::Older { found: 1 }.to_string();
    assert!(msg.contains("plan --out"), "{msg}");
}

#[test]
fn a_plan_with_errors_is_not_saved() {
    let mut p = Plan::empty();
    p.models.push(ModelPlan {
        model: "m".into(),
        actions: Vec::new(),
        errors: vec!["version 9 does not exist".into()],
        held: Vec::new(),
    });
    let made = Provenance {
        registry: "file:r.json".into(),
        revision: None,
        created_at: "2026-11-20T12:00:00Z".into(),
        prune: false,
        files: Vec::new(),
        protect: Vec::new(),
        roots: Vec::new(),
        approvers: None,
        windows: Vec::new(),
    };
    let err = SavedPlan::new(p, &DesiredState::default(), &LiveState::default(), made);
    assert_eq!(err, Err(SaveError::PlanHasErrors(vec!["m".into()])));
}

const COPYING_MANIFEST: &str = "apiVersion: modelsync/v1
kind: RegisteredModel
metadata:
  name: nba
spec:
  versions:
    released:
      from: {registry: dev, model: nba-dev, alias: champion}
  aliases:
    champion: released
";

/// `small()` made from manifests that copy `champion` of dev's `nba-dev`.
fn copying() -> SavedPlan {
    SavedPlan {
        manifests: vec![SavedManifest {
            path: "m/nba.yaml".into(),
            text: COPYING_MANIFEST.into(),
        }],
        registries: BTreeMap::from([("dev".to_string(), "http://dev".to_string())]),
        ..small()
    }
}

#[test]
fn an_older_plan_whose_manifests_copy_is_refused_a_current_one_is_read() {
    let plan = copying();
    assert!(plan.desired().is_ok(), "{:?}", plan.desired());
    let text = to_json(&plan).expect("serializes");
    assert_eq!(from_json(&text), Ok(plan));
    for found in [3, 4] {
        let older = text.replace(
            "\"format_version\": 5,",
            &format!("\"format_version\": {found},"),
        );
        assert_eq!(
            from_json(&older),
            Err(FormatError::CopiesNotRecorded { found })
        );
    }
    let msg = FormatError::CopiesNotRecorded { found: 3 }.to_string();
    assert!(msg.contains("plan --out") && msg.contains("from:"), "{msg}");
}

#[test]
fn an_older_plan_with_a_copy_action_is_refused() {
    let mut plan = small();
    plan.plan.models.push(ModelPlan {
        model: "nba".into(),
        actions: vec![Action::CopyVersion {
            handle: "released".into(),
            from: Box::default(),
            experiment: "modelsync-copies".into(),
            description: None,
            tags: BTreeMap::new(),
        }],
        errors: Vec::new(),
        held: Vec::new(),
    });
    let text = to_json(&plan)
        .expect("serializes")
        .replace("\"format_version\": 5,", "\"format_version\": 2,");
    assert_eq!(
        from_json(&text),
        Err(FormatError::CopiesNotRecorded { found: 2 })
    );
}

/// Two models, one targeted.
const TWO_MODELS: &str = "apiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: a\nspec:\n  versions:\n    v: {version: 1}\n  aliases: {champion: v}\n---\napiVersion: modelsync/v1\nkind: RegisteredModel\nmetadata:\n  name: b\nspec:\n  versions:\n    v: {version: 1}\n  aliases: {champion: v}\n";

#[test]
fn a_targeted_plan_reads_back_narrowed_and_applies_only_as_targeted() {
    use crate::manifest::targets::Targets;
    let only_a = Targets {
        models: ["a".to_string()].into(),
        experiments: Default::default(),
    };
    let plan = SavedPlan {
        manifests: vec![SavedManifest {
            path: "m/two.yaml".into(),
            text: TWO_MODELS.into(),
        }],
        targets: Some(only_a.clone()),
        ..small()
    };
    let text = to_json(&plan).expect("serializes");
    assert!(text.contains("\"targets\": {"), "{text}");
    assert_eq!(from_json(&text), Ok(plan.clone()));
    let desired = plan.desired().expect("valid");
    assert_eq!(desired.models.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(desired.targets.as_ref(), Some(&only_a));
    let all = plan.desired_all().expect("valid");
    assert_eq!(all.models.keys().collect::<Vec<_>>(), ["a", "b"]);

    assert_eq!(plan.applies_as(Some(&only_a)), Ok(()));
    let full = plan
        .applies_as(None)
        .expect_err("a full apply of a targeted plan");
    assert!(
        full.to_string()
            .starts_with("the saved plan is targeted (it covers only a);"),
        "{full}"
    );
    let both = Targets {
        models: ["a".to_string(), "b".to_string()].into(),
        experiments: Default::default(),
    };
    let differs = plan.applies_as(Some(&both)).expect_err("other targets");
    assert_eq!(
        differs.to_string(),
        "--model/--changed-since select a, b here, but the saved plan covers a: apply it with targeting that selects exactly what it was made for"
    );
    let untargeted = SavedPlan {
        targets: None,
        ..plan
    };
    assert_eq!(untargeted.applies_as(None), Ok(()));
    let partial = untargeted
        .applies_as(Some(&only_a))
        .expect_err("a targeted apply of a full plan");
    assert!(
        partial
            .to_string()
            .starts_with("the saved plan is a full plan;"),
        "{partial}"
    );
    // An older plan (format 4) has no targets: a full one.
    let older = to_json(&untargeted)
        .expect("serializes")
        .replace("\"format_version\": 5,", "\"format_version\": 4,");
    assert_eq!(from_json(&older).expect("read").targets, None);
}

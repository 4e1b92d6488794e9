//! Which version a marker's reference (`MODEL@ALIAS`, `MODEL@STAGE`)
//! stands for: as the registry was read, or — planning — once the plan's
//! moves are applied. Pure: `reconcile/outputs.rs` resolves the version's
//! values and rewrites the marked files.

use super::{Action, Plan, VersionRef};
use crate::outputs::{Reference, Target};
use crate::state::LiveState;

/// The version behind a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behind {
    Version(u64),
    /// A version the plan registers (its handle): no number yet.
    New(String),
}

/// The version `r` stands for in `live`, after `plan`'s moves when given;
/// why none, when none does.
pub fn behind(live: &LiveState, plan: Option<&Plan>, r: &Reference) -> Result<Behind, String> {
    let model = live.models.get(&r.model);
    let actions: Vec<&Action> = plan
        .and_then(|p| p.models.iter().find(|m| m.model == r.model))
        .map(|m| m.actions.iter().collect())
        .unwrap_or_default();
    if model.is_none() && actions.is_empty() {
        return Err(format!("registered model {:?} does not exist", r.model));
    }
    let found = match &r.target {
        Target::Alias(alias) => {
            let mut now = model
                .and_then(|m| m.aliases.get(alias))
                .map(|n| VersionRef::Existing(*n));
            for a in &actions {
                match a {
                    Action::SetAlias {
                        alias: a, version, ..
                    } if a == alias => {
                        now = Some(version.clone());
                    }
                    Action::DeleteAlias { alias: a, .. } if a == alias => now = None,
                    _ => {}
                }
            }
            now
        }
        Target::Stage(stage) => {
            let mut holders: Vec<VersionRef> = model
                .map(|m| {
                    m.holders(*stage)
                        .map(|v| VersionRef::Existing(v.version))
                        .collect()
                })
                .unwrap_or_default();
            for a in &actions {
                match a {
                    Action::TransitionStage { version, to, .. } => {
                        holders.retain(|h| h != version);
                        if to == stage {
                            holders.push(version.clone());
                        }
                    }
                    Action::ArchiveVersion { version, .. } => {
                        holders.retain(|h| *h != VersionRef::Existing(*version));
                    }
                    _ => {}
                }
            }
            // The highest number; a version the plan registers is newer.
            holders.into_iter().max_by_key(|h| match h {
                VersionRef::Existing(n) => (0, *n),
                VersionRef::New(_) => (1, 0),
            })
        }
    };
    match found {
        Some(VersionRef::Existing(n)) => Ok(Behind::Version(n)),
        Some(VersionRef::New(handle)) => Ok(Behind::New(handle)),
        None => Err(format!("no version of {:?} is behind {r}", r.model)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outputs::markers::parse_reference;
    use crate::plan::ModelPlan;
    use crate::state::{LiveModel, LiveVersion, Stage};

    fn live() -> LiveState {
        let mut m = LiveModel {
            name: "fraud".into(),
            ..LiveModel::default()
        };
        for (n, stage) in [
            (1, Stage::Production),
            (2, Stage::Production),
            (3, Stage::None),
        ] {
            m.versions.insert(
                n,
                LiveVersion {
                    version: n,
                    stage,
                    ..LiveVersion::default()
                },
            );
        }
        m.aliases.insert("champion".into(), 2);
        let mut live = LiveState::default();
        live.models.insert("fraud".into(), m);
        live
    }

    fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            models: vec![ModelPlan {
                model: "fraud".into(),
                actions,
                errors: vec![],
                held: vec![],
            }],
            ..Plan::empty()
        }
    }

    fn r(s: &str) -> Reference {
        parse_reference(s).expect("a reference")
    }

    #[test]
    fn as_read_an_alias_and_the_highest_version_in_a_stage() {
        let live = live();
        assert_eq!(
            behind(&live, None, &r("fraud@champion")),
            Ok(Behind::Version(2))
        );
        assert_eq!(
            behind(&live, None, &r("fraud@Production")),
            Ok(Behind::Version(2))
        );
        assert!(
            behind(&live, None, &r("fraud@Staging"))
                .unwrap_err()
                .contains("no version")
        );
        assert!(behind(&live, None, &r("fraud@other")).is_err());
        assert!(
            behind(&live, None, &r("nope@champion"))
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn planning_follows_the_plans_moves() {
        let live = live();
        let p = plan(vec![
            Action::SetAlias {
                alias: "champion".into(),
                version: VersionRef::Existing(3),
                before: Some(2),
                gates: vec![],
            },
            Action::TransitionStage {
                version: VersionRef::New("v4".into()),
                from: Stage::None,
                to: Stage::Production,
                holders: vec![1, 2],
                gates: vec![],
            },
            Action::ArchiveVersion {
                version: 2,
                from: Stage::Production,
                replaced_by: None,
            },
        ]);
        assert_eq!(
            behind(&live, Some(&p), &r("fraud@champion")),
            Ok(Behind::Version(3))
        );
        assert_eq!(
            behind(&live, Some(&p), &r("fraud@Production")),
            Ok(Behind::New("v4".into()))
        );
        let p = plan(vec![Action::DeleteAlias {
            alias: "champion".into(),
            before: 2,
        }]);
        assert!(behind(&live, Some(&p), &r("fraud@champion")).is_err());
    }
}

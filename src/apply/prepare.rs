//! What the executor works out from one model's plan before its first
//! write, so that the writes carry more and fewer of them go out:
//!
//! - the audit tag of each move planned for a *new* version travels in that
//!   version's `model-versions/create` body (removed again if the move does
//!   not happen);
//! - a stage move whose planned archivals are exactly the other holders of
//!   that stage archives them in the same request
//!   (`archive_existing_versions=true`: MLflow's store archives the model's
//!   other versions in the target stage, in the transaction of the move).

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Action, ModelPlan, VersionRef};
use crate::state::{Stage, tags};

/// The per-model facts the executor uses; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    /// Handle of a new version -> the audit tags of the moves planned for it.
    pub audit_on_create: BTreeMap<String, BTreeMap<String, String>>,
    /// Stages whose move archives the replaced holders itself.
    pub archiving: BTreeSet<Stage>,
}

/// The audit tag of a move into `target`: its key and value.
/// A move through a window or a freeze by `--break-glass` (`glass`)
/// says so, and who broke it and why.
pub(super) fn audit_tag(
    target: &str,
    now_ms: i64,
    (previous, approved_by): (Option<u64>, Vec<String>),
    revision: Option<&str>,
    glass: Option<&crate::plan::BreakGlass>,
) -> (String, String) {
    let stamp = tags::Stamp {
        previous,
        approved_by,
        break_glass: glass.is_some(),
        by: glass.map(|g| g.by.clone()),
        reason: glass.map(|g| g.reason.clone()),
        revision: revision.map(str::to_owned),
        ..tags::Stamp::at(crate::clock::rfc3339_seconds(now_ms))
    };
    (
        format!("{}{target}", tags::PROMOTED_AT_PREFIX),
        stamp.render(),
    )
}

/// True for a move that writes an audit tag (not a move out of the stages).
pub(super) fn audited(to: Stage) -> bool {
    !matches!(to, Stage::None | Stage::Archived)
}

pub(super) fn prepare(mp: &ModelPlan, now_ms: i64, revision: Option<&str>) -> Prepared {
    let mut out = Prepared::default();
    let moved: BTreeSet<u64> = mp
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::TransitionStage {
                version: VersionRef::Existing(n),
                ..
            } => Some(*n),
            _ => None,
        })
        .collect();
    for action in &mp.actions {
        // A move that breaks the glass is stamped after it (with who and
        // why), never in a create body.
        if action.is_blocked() || action.breaks_glass() {
            continue;
        }
        match action {
            Action::TransitionStage {
                version,
                to,
                holders,
                ..
            } => {
                if let VersionRef::New(handle) = version
                    && audited(*to)
                {
                    let (k, v) = audit_tag(
                        to.as_str(),
                        now_ms,
                        (holders.first().copied(), Vec::new()),
                        revision,
                        None,
                    );
                    out.audit_on_create
                        .entry(handle.clone())
                        .or_default()
                        .insert(k, v);
                }
                if archives_exactly_the_holders(mp, version, *to, holders, &moved) {
                    out.archiving.insert(*to);
                }
            }
            Action::SetAlias {
                alias,
                version: VersionRef::New(handle),
                before,
                ..
            } => {
                let (k, v) = audit_tag(alias, now_ms, (*before, Vec::new()), revision, None);
                out.audit_on_create
                    .entry(handle.clone())
                    .or_default()
                    .insert(k, v);
            }
            _ => {}
        }
    }
    out
}

/// True when the plan archives, for the move of `version` into `to`, exactly
/// the other versions holding `to` now, and none of them moves elsewhere in
/// this plan: then the server's `archive_existing_versions` does the same
/// archivals, in the move's own transaction.
fn archives_exactly_the_holders(
    mp: &ModelPlan,
    version: &VersionRef,
    to: Stage,
    holders: &[u64],
    moved: &BTreeSet<u64>,
) -> bool {
    if !matches!(to, Stage::Staging | Stage::Production) {
        return false;
    }
    let others: BTreeSet<u64> = holders
        .iter()
        .copied()
        .filter(|h| *version != VersionRef::Existing(*h))
        .collect();
    let archived: BTreeSet<u64> = mp
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::ArchiveVersion {
                version: h,
                from,
                replaced_by: Some(t),
            } if *from == to && t == version => Some(*h),
            _ => None,
        })
        .collect();
    !archived.is_empty() && archived == others && others.is_disjoint(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(version: VersionRef, to: Stage, holders: Vec<u64>) -> Action {
        Action::TransitionStage {
            version,
            from: Stage::None,
            to,
            holders,
            gates: vec![],
        }
    }

    fn archive(version: u64, from: Stage, by: VersionRef) -> Action {
        Action::ArchiveVersion {
            version,
            from,
            replaced_by: Some(by),
        }
    }

    fn plan(actions: Vec<Action>) -> ModelPlan {
        ModelPlan {
            model: "m".into(),
            actions,
            errors: vec![],
            held: vec![],
        }
    }

    #[test]
    fn a_move_archives_in_one_request_only_when_the_plan_archives_exactly_the_holders() {
        let new = VersionRef::New("b".into());
        let p = plan(vec![
            transition(new.clone(), Stage::Production, vec![1]),
            archive(1, Stage::Production, new.clone()),
        ]);
        assert_eq!(
            prepare(&p, 0, None).archiving,
            BTreeSet::from([Stage::Production])
        );
        // Two holders, one archived by the plan: explicit archival.
        let p = plan(vec![
            transition(new.clone(), Stage::Production, vec![1, 2]),
            archive(1, Stage::Production, new.clone()),
        ]);
        assert!(prepare(&p, 0, None).archiving.is_empty());
        // The holder moves to Staging itself: explicit order kept.
        let p = plan(vec![
            transition(VersionRef::Existing(1), Stage::Staging, vec![]),
            transition(new.clone(), Stage::Production, vec![1]),
            archive(1, Stage::Production, new.clone()),
        ]);
        assert!(prepare(&p, 0, None).archiving.is_empty());
        // Nothing to archive: a plain move.
        let p = plan(vec![transition(new, Stage::Production, vec![])]);
        assert!(prepare(&p, 0, None).archiving.is_empty());
    }

    #[test]
    fn moves_of_new_versions_put_their_audit_tag_in_the_create() {
        let p = plan(vec![
            transition(VersionRef::New("b".into()), Stage::Production, vec![1]),
            Action::SetAlias {
                alias: "champion".into(),
                version: VersionRef::New("b".into()),
                before: None,
                gates: vec![],
            },
            transition(VersionRef::Existing(1), Stage::Staging, vec![]),
        ]);
        let got = prepare(&p, 0, Some("abc")).audit_on_create;
        assert_eq!(
            got["b"],
            BTreeMap::from([
                (
                    "modelsync.promoted-at.Production".to_string(),
                    "1970-01-01T00:00:00Z previous=1 revision=abc".to_string()
                ),
                (
                    "modelsync.promoted-at.champion".to_string(),
                    "1970-01-01T00:00:00Z revision=abc".to_string()
                ),
            ])
        );
        assert_eq!(got.len(), 1);
    }
}

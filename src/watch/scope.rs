//! What one daemon run reconciles (pure): everything, or only the models
//! its triggers name and those the source's new commit changed, or
//! nothing at all; and ([`decide`]) whether it applies or only reports
//! drift.
//!
//! - A trigger for everything (start-up, election, a folder change, the
//!   resync, a retry of such a run, an MLflow delivery naming no model):
//!   a full pass.
//! - The source moved since the revision applied last: what changed
//!   between the two commits (their manifests, `templateFile`s, approval
//!   files; `manifest::targets` decides), with the models MLflow named;
//!   a full pass when the change cannot be told (a folder, nothing applied
//!   yet, a commit no longer in the cache) or `modelsync.toml` changed.
//! - It did not: the models MLflow named — nothing when none of them is
//!   declared (MLflow delivers every model's events; the names the applied
//!   revision declares are known from its last full pass); nothing for a
//!   git poll alone; a full pass for `POST /hooks/git` (a push whose commit
//!   is already applied still asks for a pass, as before).

use std::collections::BTreeSet;

use crate::manifest::targets::{Changes, Selector};

use super::DriftMode;
use super::engine::{Batch, Trigger};

/// How much a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    /// A targeted pass ([`crate::reconcile::Pass::targets`]).
    Targeted(Selector),
    /// Nothing to do (a poll that found no new commit).
    Nothing,
}

/// The scope of a run over `batch`. `moved`: the source's revision is not
/// the one applied last; `changes` tells what changed since (`None` when
/// that cannot be told), asked only when it moved; `declared`: the models
/// and prompts the unmoved revision declares, when known.
pub fn scope(
    batch: &Batch,
    moved: bool,
    changes: impl FnOnce() -> Option<Changes>,
    declared: Option<&BTreeSet<String>>,
) -> Scope {
    if batch.everything {
        return Scope::Everything;
    }
    let targeted = |changed: Option<Changes>| {
        Scope::Targeted(Selector {
            patterns: Vec::new(),
            changed,
            named: batch.models.clone(),
        })
    };
    if moved {
        return match changes() {
            Some(c) if c.config.is_empty() => targeted(Some(c)),
            _ => Scope::Everything,
        };
    }
    let undeclared = declared.is_some_and(|d| batch.models.iter().all(|m| !d.contains(m)));
    if batch.reasons.contains(&Trigger::Webhook) {
        Scope::Everything
    } else if batch.models.is_empty() || undeclared {
        Scope::Nothing
    } else {
        targeted(None)
    }
}

/// What a run does with its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Apply,
    /// `--drift warn` and the revision already applied: plan and report
    /// drift, write nothing.
    ReportDrift,
}

/// A run of the revision applied last is a drift check; warn mode only
/// reports what it finds; a new revision (or heal mode) is applied.
pub fn decide(mode: DriftMode, same_revision: bool) -> Decision {
    if same_revision && mode == DriftMode::Warn {
        Decision::ReportDrift
    } else {
        Decision::Apply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::targets::ChangedFile;

    fn named(models: &[&str]) -> Batch {
        Batch {
            reasons: [Trigger::RegistryEvent].into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Batch::default()
        }
    }

    fn change(config: bool) -> Option<Changes> {
        Some(Changes {
            since: "old".into(),
            files: vec![ChangedFile {
                path: "m/a.yaml".into(),
                before: None,
            }],
            config: if config {
                vec!["m/modelsync.toml".into()]
            } else {
                vec![]
            },
        })
    }

    fn unasked() -> Option<Changes> {
        panic!("changes asked for an unmoved source")
    }

    #[test]
    fn a_webhook_delivery_targets_its_model() {
        let Scope::Targeted(s) = scope(&named(&["a"]), false, unasked, None) else {
            panic!("not targeted");
        };
        assert_eq!(s.named, ["a".to_string()].into());
        assert!(s.changed.is_none() && s.patterns.is_empty());
    }

    #[test]
    fn a_new_commit_targets_what_it_changed_and_the_named_models() {
        let Scope::Targeted(s) = scope(&named(&["b"]), true, || change(false), None) else {
            panic!("not targeted");
        };
        assert_eq!(s.changed, change(false));
        assert_eq!(s.named, ["b".to_string()].into());
        let poll = Batch::of([Trigger::Poll]);
        assert!(matches!(
            scope(&poll, true, || change(false), None),
            Scope::Targeted(_)
        ));
    }

    #[test]
    fn a_full_pass_when_the_change_cannot_be_told_or_the_config_changed() {
        let poll = Batch::of([Trigger::Poll]);
        assert_eq!(scope(&poll, true, || change(true), None), Scope::Everything);
        assert_eq!(scope(&poll, true, || None, None), Scope::Everything);
        assert_eq!(
            scope(&named(&["a"]), true, || None, None),
            Scope::Everything
        );
        for t in [
            Trigger::Startup,
            Trigger::Resync,
            Trigger::Elected,
            Trigger::Change,
        ] {
            assert_eq!(
                scope(&Batch::of([t]), false, unasked, None),
                Scope::Everything
            );
        }
    }

    #[test]
    fn a_delivery_for_no_declared_model_does_nothing() {
        let declared: BTreeSet<String> = ["a".to_string()].into();
        let other = named(&["x", "y"]);
        assert_eq!(
            scope(&other, false, unasked, Some(&declared)),
            Scope::Nothing
        );
        let some = named(&["x", "a"]);
        assert!(matches!(
            scope(&some, false, unasked, Some(&declared)),
            Scope::Targeted(_)
        ));
        assert!(
            matches!(scope(&other, false, unasked, None), Scope::Targeted(_)),
            "unknown declared names: a pass decides"
        );
    }

    #[test]
    fn a_poll_without_a_new_commit_does_nothing_a_git_hook_a_full_pass() {
        assert_eq!(
            scope(&Batch::of([Trigger::Poll]), false, unasked, None),
            Scope::Nothing
        );
        let hook = Batch::of([Trigger::Webhook]);
        assert_eq!(scope(&hook, false, unasked, None), Scope::Everything);
        assert!(matches!(
            scope(&hook, true, || change(false), None),
            Scope::Targeted(_)
        ));
    }

    #[test]
    fn warn_reports_drift_only_for_the_applied_revision() {
        use Decision::*;
        use DriftMode::*;
        assert_eq!(decide(Warn, true), ReportDrift);
        assert_eq!(decide(Warn, false), Apply, "new revision or first run");
        assert_eq!(decide(Heal, true), Apply);
    }
}

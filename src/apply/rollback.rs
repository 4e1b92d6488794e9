//! A rollback: one target (stage or alias) of one model moved back to a
//! version — by default the one that held it before, as the audit trail
//! records it — and held there (issue 19). `modelsync rollback` and a
//! verification's `onFailure: rollback` both run it.
//!
//! Under the applier lease ([`run`] takes it; [`under_lease`] is for a
//! caller that holds it already), in this order: read the model; decide
//! (pure, [`decide`]): the version to go back to exists and is READY, and
//! the target is not held by someone else unless the glass is broken;
//! write the hold (first: a rollback cut short leaves the target held,
//! never healed back by a daemon); move the target (a stage archives the
//! version it replaces, make-before-break, as `apply` does); stamp the
//! move on the version (`modelsync.promoted-at.<target>` with `previous=`,
//! `rollback`, who and why). A freeze does not stop a rollback: it is the
//! incident tool. An open deny window (or a closed allow window) of
//! `modelsync.toml` that applies to the target does, as it stops a move,
//! unless the glass is broken: then the window is passed, said, and the
//! stamp records `break-glass`.

use crate::manifest::GateTarget;
use crate::manifest::windows::Window;
use crate::plan::{BreakGlass, GateCheck, GateStatus};
use crate::registry::{AnyRegistry, HeldLease, Registry, RegistryError};
use crate::state::hold::{self, Cause, Hold};
use crate::state::{LiveModel, Stage, VersionStatus, history, tags};

/// What to roll back, and who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackRequest {
    pub model: String,
    /// A stage (Staging or Production) or an alias.
    pub target: GateTarget,
    /// The version to go back to; `None`: the previous holder.
    pub to: Option<u64>,
    pub reason: String,
    pub cause: Cause,
    /// Who (`state::hold::actor`, or the daemon's name).
    pub by: String,
    /// Replace a hold someone else placed on the target, pass a window.
    pub break_glass: bool,
    /// The evaluation clock's now (ms): the hold's and the stamp's time,
    /// and when the windows are evaluated.
    pub now_ms: i64,
    /// The promotion windows of `modelsync.toml` (none: no window applies).
    pub windows: Vec<Window>,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackOutcome {
    /// The version that held the target before (`None`: nothing did).
    pub from: Option<u64>,
    pub to: u64,
    /// The hold now on the target.
    pub hold: Hold,
    /// The hold it replaced, if one stood.
    pub replaced_hold: Option<Hold>,
    /// Other holders of the stage archived after the move.
    pub archived: Vec<u64>,
    /// False when the target already held `to` (only the hold was placed).
    pub moved: bool,
    /// The windows `--break-glass` let it through (status `overridden`).
    pub overridden: Vec<GateCheck>,
}

/// Why a rollback did not happen (nothing was written, unless
/// [`RollbackError::Registry`] or [`RollbackError::LostLease`] say a write
/// failed midway).
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("model {0:?} does not exist")]
    NoModel(String),
    #[error(
        "stage {0} cannot be rolled back: only Staging and Production hold one version (or name an alias)"
    )]
    NotExclusive(Stage),
    #[error(
        "no previous holder of {target} of {model:?} is recorded in the audit trail{}; name the version with --to",
        current.map(|c| format!(" (version {c} holds it; its stamp names none)")).unwrap_or_default()
    )]
    NoPrevious {
        model: String,
        target: String,
        current: Option<u64>,
    },
    #[error("version {version} of {model:?} does not exist")]
    NoSuchVersion { model: String, version: u64 },
    #[error("version {version} of {model:?} is {}, not READY: only a READY version can serve", .status.as_str())]
    NotReady {
        model: String,
        version: u64,
        status: VersionStatus,
    },
    #[error(
        "{target} of {model:?} is held by someone else ({}); --break-glass replaces their hold",
        .hold.describe()
    )]
    HeldByOther {
        model: String,
        target: String,
        hold: Box<Hold>,
    },
    #[error(
        "{target} of {model:?} may not move now: {}; --break-glass lets this rollback through",
        .checks.iter().map(|c| format!("{}: {}", c.gate, c.detail)).collect::<Vec<_>>().join("; ")
    )]
    Window {
        model: String,
        target: String,
        checks: Vec<GateCheck>,
    },
    #[error("{0}; the rollback stopped")]
    LostLease(String),
}

impl RollbackError {
    /// True when someone else's hold or a window stopped it (exit 5, like
    /// a gate).
    pub fn is_blocked(&self) -> bool {
        matches!(
            self,
            RollbackError::HeldByOther { .. } | RollbackError::Window { .. }
        )
    }
}

/// The writes a rollback makes, decided from the model as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub from: Option<u64>,
    pub to: u64,
    pub hold: Hold,
    pub replaced_hold: Option<Hold>,
    /// Other holders of the stage, to archive once `to` holds it.
    pub archive: Vec<u64>,
    /// The windows the glass let it through.
    pub overridden: Vec<GateCheck>,
}

/// Decides a rollback of `model` (pure): the current holder, the version
/// to go back to, the hold; refuses what may not be rolled back.
pub fn decide(model: &LiveModel, req: &RollbackRequest) -> Result<Decision, RollbackError> {
    let target = req.target.key();
    let current: Vec<u64> = match &req.target {
        GateTarget::Stage(s) if !s.is_exclusive() => return Err(RollbackError::NotExclusive(*s)),
        GateTarget::Stage(s) => newest_first(model, &target, model.holders(*s).map(|v| v.version)),
        GateTarget::Alias(a) => model.aliases.get(a).copied().into_iter().collect(),
    };
    let from = current.first().copied();
    let overridden = windows(req, &target)?;
    let replaced_hold = hold::holds(model).remove(&target);
    if let Some(h) = &replaced_hold
        && h.by != req.by
        && !req.break_glass
    {
        return Err(RollbackError::HeldByOther {
            model: req.model.clone(),
            target,
            hold: Box::new(h.clone()),
        });
    }
    let to = match req.to {
        Some(n) => n,
        None => from
            .and_then(|c| history::previous_holder(model, &target, c))
            .ok_or_else(|| RollbackError::NoPrevious {
                model: req.model.clone(),
                target: target.clone(),
                current: from,
            })?,
    };
    let version = model
        .versions
        .get(&to)
        .ok_or_else(|| RollbackError::NoSuchVersion {
            model: req.model.clone(),
            version: to,
        })?;
    if version.status != VersionStatus::Ready {
        return Err(RollbackError::NotReady {
            model: req.model.clone(),
            version: to,
            status: version.status,
        });
    }
    let hold = Hold {
        version: to,
        by: req.by.clone(),
        at: crate::clock::rfc3339_seconds(req.now_ms),
        reason: req.reason.clone(),
        cause: req.cause,
        extra: Default::default(),
    };
    let archive = match req.target {
        GateTarget::Stage(_) => current.iter().copied().filter(|c| *c != to).collect(),
        GateTarget::Alias(_) => Vec::new(),
    };
    Ok(Decision {
        from,
        to,
        hold,
        replaced_hold,
        archive,
        overridden,
    })
}

/// What the windows say about moving `target` now: an error when one
/// stops it, else the windows the glass passed (`plan::windows`, the
/// freeze left out: a rollback is the incident tool).
fn windows(req: &RollbackRequest, target: &str) -> Result<Vec<GateCheck>, RollbackError> {
    let glass = req.break_glass.then(|| BreakGlass {
        by: req.by.clone(),
        reason: req.reason.clone(),
    });
    let checks = crate::plan::windows::checks(
        &req.windows,
        None,
        (&req.model, &req.target),
        req.now_ms,
        glass.as_ref(),
    );
    let (blocked, passed): (Vec<GateCheck>, Vec<GateCheck>) = checks
        .into_iter()
        .filter(|c| c.status != GateStatus::Passed)
        .partition(|c| c.status == GateStatus::Blocked);
    if blocked.is_empty() {
        Ok(passed)
    } else {
        Err(RollbackError::Window {
            model: req.model.clone(),
            target: target.to_string(),
            checks: blocked,
        })
    }
}

/// Versions, the one most recently promoted into `target` first.
fn newest_first(model: &LiveModel, target: &str, versions: impl Iterator<Item = u64>) -> Vec<u64> {
    let key = format!("{}{target}", tags::PROMOTED_AT_PREFIX);
    let mut out: Vec<(String, u64)> = versions
        .map(|n| {
            let at = model.versions[&n]
                .tags
                .get(&key)
                .map(|s| tags::Stamp::parse(s).at)
                .unwrap_or_default();
            (at, n)
        })
        .collect();
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|(_, n)| n).collect()
}

/// Rolls back under the applier lease, which it takes, keeps and
/// releases (the embedded registry: its file lock, held by opening it for
/// writing).
pub async fn run(
    reg: &AnyRegistry,
    req: &RollbackRequest,
) -> Result<RollbackOutcome, RollbackError> {
    let lease = reg.acquire_lease().await?;
    let held = lease.held();
    let out = tokio::select! {
        out = under_lease(reg, req, held.as_ref()) => out,
        never = reg.keep_lease(&lease) => match never {},
    };
    if let Err(e) = reg.release_lease(lease).await {
        tracing::warn!(error = %e, "could not release the applier lease");
    }
    out
}

/// Rolls back for a caller that holds the applier lease (`lease`: asked
/// before each write; `None` on the embedded registry).
pub async fn under_lease<R: Registry>(
    reg: &R,
    req: &RollbackRequest,
    lease: Option<&HeldLease>,
) -> Result<RollbackOutcome, RollbackError> {
    let model = reg
        .get_model(&req.model)
        .await?
        .ok_or_else(|| RollbackError::NoModel(req.model.clone()))?;
    let d = decide(&model, req)?;
    let may_write = || match lease {
        Some(h) if h.guard().check_at(crate::clock::wall_ms()).is_err() => Err(
            RollbackError::LostLease(crate::term::lost_reason(h.guard())),
        ),
        _ => Ok(()),
    };
    let target = req.target.key();
    may_write()?;
    super::hold::place(reg, &req.model, &target, &d.hold).await?;
    let moved = d.from != Some(d.to);
    if moved {
        may_write()?;
        match &req.target {
            GateTarget::Stage(s) => reg.transition_stage(&req.model, d.to, *s).await?,
            GateTarget::Alias(a) => reg.set_alias(&req.model, a, d.to).await?,
        }
        for old in &d.archive {
            may_write()?;
            reg.transition_stage(&req.model, *old, Stage::Archived)
                .await?;
        }
        let stamp = tags::Stamp {
            previous: d.from.filter(|f| *f != d.to),
            rollback: true,
            break_glass: !d.overridden.is_empty()
                || (req.break_glass && d.replaced_hold.as_ref().is_some_and(|h| h.by != req.by)),
            by: Some(req.by.clone()),
            reason: Some(req.reason.clone()),
            ..tags::Stamp::at(d.hold.at.clone())
        };
        may_write()?;
        let key = format!("{}{target}", tags::PROMOTED_AT_PREFIX);
        reg.set_version_tag(&req.model, d.to, &key, &stamp.render())
            .await?;
    }
    reg.flush().await?;
    tracing::info!(model = %req.model, target = %target, from = ?d.from, to = d.to, by = %req.by, "rolled back and held");
    Ok(RollbackOutcome {
        from: d.from,
        to: d.to,
        hold: d.hold,
        replaced_hold: d.replaced_hold,
        archived: if moved { d.archive } else { Vec::new() },
        moved,
        overridden: d.overridden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::LiveVersion;

    fn version(n: u64, stage: Stage, stamp: Option<&str>) -> LiveVersion {
        let mut v = LiveVersion {
            version: n,
            stage,
            status: VersionStatus::Ready,
            ..LiveVersion::default()
        };
        if let Some(s) = stamp {
            v.tags
                .insert("modelsync.promoted-at.Production".into(), s.into());
            v.tags
                .insert("modelsync.promoted-at.champion".into(), s.into());
        }
        v
    }

    fn model() -> LiveModel {
        let mut m = LiveModel {
            name: "m".into(),
            ..LiveModel::default()
        };
        m.versions
            .insert(1, version(1, Stage::Archived, Some("2026-01-01T00:00:00Z")));
        m.versions.insert(
            2,
            version(
                2,
                Stage::Production,
                Some("2026-02-01T00:00:00Z previous=1"),
            ),
        );
        m.versions.insert(3, version(3, Stage::None, None));
        m.versions.get_mut(&3).expect("v3").status = VersionStatus::PendingRegistration;
        m.aliases.insert("champion".into(), 2);
        m
    }

    fn req(target: GateTarget, to: Option<u64>) -> RollbackRequest {
        RollbackRequest {
            model: "m".into(),
            target,
            to,
            reason: "p99 doubled".into(),
            cause: Cause::Rollback,
            by: "alice".into(),
            break_glass: false,
            now_ms: 1_772_000_000_000,
            windows: Vec::new(),
        }
    }

    #[test]
    fn the_default_is_the_previous_holder_from_the_audit_trail() {
        let d = decide(&model(), &req(GateTarget::Stage(Stage::Production), None)).expect("ok");
        assert_eq!((d.from, d.to, d.archive.clone()), (Some(2), 1, vec![2]));
        assert_eq!(d.hold.version, 1);
        assert_eq!(d.hold.by, "alice");
        assert_eq!(d.hold.cause, Cause::Rollback);
        let d = decide(&model(), &req(GateTarget::Alias("champion".into()), None)).expect("ok");
        assert_eq!((d.from, d.to), (Some(2), 1));
        assert!(d.archive.is_empty(), "an alias archives nothing");
    }

    #[test]
    fn refuses_what_cannot_serve_or_is_not_recorded() {
        let m = model();
        let alias = || GateTarget::Alias("champion".into());
        assert!(matches!(
            decide(&m, &req(alias(), Some(9))),
            Err(RollbackError::NoSuchVersion { version: 9, .. })
        ));
        let e = decide(&m, &req(alias(), Some(3))).expect_err("pending");
        assert!(e.to_string().contains("not READY"), "{e}");
        let mut bare = m.clone();
        bare.versions.get_mut(&2).expect("v2").tags.clear();
        let e = decide(&bare, &req(alias(), None)).expect_err("no trail");
        assert!(e.to_string().contains("--to"), "{e}");
        let e = decide(&m, &req(GateTarget::Stage(Stage::Archived), Some(1))).expect_err("stage");
        assert!(matches!(e, RollbackError::NotExclusive(Stage::Archived)));
    }

    #[test]
    fn someone_elses_hold_needs_the_glass_broken() {
        let mut m = model();
        let theirs = Hold {
            version: 2,
            by: "bob".into(),
            at: String::new(),
            reason: "verified".into(),
            cause: Cause::Manual,
            extra: Default::default(),
        };
        m.tags.insert(hold::tag_key("champion"), theirs.render());
        let mut r = req(GateTarget::Alias("champion".into()), None);
        let e = decide(&m, &r).expect_err("held");
        assert!(e.is_blocked() && e.to_string().contains("bob"), "{e}");
        r.break_glass = true;
        let d = decide(&m, &r).expect("broken glass");
        assert_eq!(d.replaced_hold, Some(theirs.clone()));
        // One's own hold is replaced without.
        r.break_glass = false;
        r.by = "bob".into();
        assert!(decide(&m, &r).is_ok());
    }

    /// Open every day from 00:00 UTC for 24 hours (always), on champion.
    fn always_denied() -> Window {
        Window {
            name: "incident-free".into(),
            kind: crate::manifest::windows::WindowKind::Deny,
            schedule: "0 0 * * *".into(),
            duration_ms: 24 * 3_600_000,
            timezone: chrono_tz::UTC,
            targets: vec!["champion".into()],
            models: Vec::new(),
            origin: Default::default(),
        }
    }

    #[test]
    fn a_deny_window_stops_it_unless_the_glass_is_broken() {
        let mut r = req(GateTarget::Alias("champion".into()), None);
        r.windows = vec![always_denied()];
        let e = decide(&model(), &r).expect_err("inside the window");
        assert!(e.is_blocked(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("window incident-free (deny)") && text.contains(" until "),
            "{text}"
        );
        r.break_glass = true;
        let d = decide(&model(), &r).expect("through the glass");
        assert_eq!(d.overridden.len(), 1, "{d:?}");
        assert_eq!(d.overridden[0].status, GateStatus::Overridden);
        // Production is not a target the window names.
        let mut r = req(GateTarget::Stage(Stage::Production), None);
        r.windows = vec![always_denied()];
        assert!(decide(&model(), &r).is_ok());
    }
}

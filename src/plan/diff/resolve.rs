//! Resolving declared version handles to live versions or to versions the
//! plan registers.
//!
//! A handle declared by number must exist; a handle declared by source is
//! the lowest live version registered from that source (verbatim, by the
//! `modelsync.source` tag, or by the source the registry resolved it to),
//! and otherwise a new registration — unless the registry said the source
//! cannot be registered (a `runs:/` source whose run does not exist or holds
//! no model there), which is an error. A handle on a version that is not
//! READY (still PENDING_REGISTRATION after the wait, or
//! FAILED_REGISTRATION) is an error too: such a version is never moved.
//! Errors name the handle's file:line:column. Pure: reads the snapshot only.

use std::collections::BTreeMap;

use crate::manifest::{DesiredModel, DesiredVersion, Locator, Origin};
use crate::plan::Target;
use crate::state::tags;
use crate::state::{LiveModel, LiveState, LiveVersion, ResolvedSource, VersionStatus};

/// A declared handle, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Slot<'a> {
    pub target: Target,
    /// The live version, `None` for a version this plan registers.
    pub live: Option<&'a LiveVersion>,
    /// The run the version has, or will have once registered.
    pub run_id: Option<String>,
    /// The MLflow 3 logged model the version has, or will have.
    pub model_id: Option<String>,
}

/// A version the plan registers.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub handle: String,
    pub declared_source: String,
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
}

/// All handles of one model, resolved.
#[derive(Debug, Default)]
pub(crate) struct Resolved<'a> {
    pub slots: BTreeMap<String, Slot<'a>>,
    /// In handle order; one per distinct declared source.
    pub registrations: Vec<Registration>,
    pub errors: Vec<String>,
}

/// Resolves every handle of `dm` against `model` (absent when the model
/// does not exist yet).
pub(crate) fn resolve<'a>(
    dm: &DesiredModel,
    model: Option<&'a LiveModel>,
    live: &LiveState,
) -> Resolved<'a> {
    let mut out = Resolved::default();
    // Declared source -> handle of its registration (never register twice).
    let mut registered: BTreeMap<&str, String> = BTreeMap::new();
    // Number -> where it was first declared (several handles may name it).
    let mut missing: BTreeMap<u64, &Origin> = BTreeMap::new();
    let mut problems = Vec::new();
    for (handle, dv) in &dm.versions {
        match &dv.locator {
            Locator::Number(n) => match model.and_then(|m| m.versions.get(n)) {
                Some(v) => {
                    problems.extend(not_ready(dm, dv, v));
                    out.slots.insert(handle.clone(), existing(v));
                }
                None => {
                    let at = missing.entry(*n).or_insert(&dv.origin);
                    *at = (*at).min(&dv.origin);
                }
            },
            Locator::Source { source, run_id } => {
                let resolved = live.resolved_sources.get(source);
                let found = model.and_then(|m| find_source(m, source, run_id.as_deref(), resolved));
                if let Some(v) = found {
                    problems.extend(not_ready(dm, dv, v));
                    out.slots.insert(handle.clone(), existing(v));
                    continue;
                }
                if let Some(why) = live.unresolvable_sources.get(source) {
                    problems.push(format!(
                        "{}: source {source:?} cannot be registered: {why}",
                        dv.origin
                    ));
                    continue;
                }
                let first = registered
                    .entry(source.as_str())
                    .or_insert_with(|| handle.clone())
                    .clone();
                let reg = registration(&first, source, run_id.as_deref(), resolved);
                let slot = Slot {
                    target: Target::New(first.clone()),
                    live: None,
                    run_id: reg.run_id.clone(),
                    model_id: reg.model_id.clone(),
                };
                if first == *handle {
                    out.registrations.push(reg);
                }
                out.slots.insert(handle.clone(), slot);
            }
        }
    }
    out.errors = missing
        .into_iter()
        .map(|(n, at)| {
            let problem = format!("version {n} of {:?} does not exist", dm.name);
            // Versions built in code (not read from a file) have no origin.
            if at.file.is_empty() {
                problem
            } else {
                format!("{at}: {problem}")
            }
        })
        .collect();
    out.errors.extend(problems);
    out
}

/// Why the live version `v` that handle `dv` names cannot be used, if it
/// is not READY.
fn not_ready(dm: &DesiredModel, dv: &DesiredVersion, v: &LiveVersion) -> Option<String> {
    let what = format!("{}: version {} of {:?}", dv.origin, v.version, dm.name);
    let detail = if v.status_message.is_empty() {
        String::new()
    } else {
        format!(": {}", v.status_message)
    };
    match v.status {
        VersionStatus::Ready => None,
        VersionStatus::PendingRegistration => Some(format!(
            "{what} is still registering (PENDING_REGISTRATION{detail}); it is not moved \
             before it is READY: plan again later"
        )),
        VersionStatus::FailedRegistration => Some(format!(
            "{what} failed to register (FAILED_REGISTRATION{detail}); it is never moved into \
             a stage or behind an alias: delete that version to register its source again"
        )),
    }
}

/// The lowest live version of `model` registered from `source`.
pub(crate) fn find_source<'a>(
    model: &'a LiveModel,
    source: &str,
    run_id: Option<&str>,
    resolved: Option<&ResolvedSource>,
) -> Option<&'a LiveVersion> {
    // `versions` is a BTreeMap, so the first match is the lowest number. A
    // failed registration counts only when no other version matches.
    let mut matching = model
        .versions
        .values()
        .filter(|v| matches_source(v, source, run_id, resolved));
    let first = matching.next()?;
    if first.status != VersionStatus::FailedRegistration {
        return Some(first);
    }
    matching
        .find(|v| v.status != VersionStatus::FailedRegistration)
        .or(Some(first))
}

/// True when `v` is the version registered from the declared `source`.
pub(crate) fn matches_source(
    v: &LiveVersion,
    source: &str,
    run_id: Option<&str>,
    resolved: Option<&ResolvedSource>,
) -> bool {
    let same_source = v.source == source
        || v.tags.get(tags::SOURCE).is_some_and(|s| s == source)
        || resolved.is_some_and(|r| v.source == r.source);
    let same_run = match run_id {
        Some(r) => v.run_id.is_empty() || v.run_id == r,
        None => true,
    };
    same_source && same_run
}

fn existing(v: &LiveVersion) -> Slot<'_> {
    Slot {
        target: Target::Existing(v.version),
        live: Some(v),
        run_id: (!v.run_id.is_empty()).then(|| v.run_id.clone()),
        model_id: (!v.model_id.is_empty()).then(|| v.model_id.clone()),
    }
}

fn registration(
    handle: &str,
    declared: &str,
    run_id: Option<&str>,
    resolved: Option<&ResolvedSource>,
) -> Registration {
    match resolved {
        Some(r) => Registration {
            handle: handle.to_string(),
            declared_source: declared.to_string(),
            source: r.source.clone(),
            run_id: r.run_id.clone().or_else(|| run_id.map(str::to_string)),
            model_id: r.model_id.clone(),
        },
        None => Registration {
            handle: handle.to_string(),
            declared_source: declared.to_string(),
            source: declared.to_string(),
            run_id: run_id.map(str::to_string),
            model_id: None,
        },
    }
}

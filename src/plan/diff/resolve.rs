//! Resolving declared version handles to live versions or to versions the
//! plan registers.
//!
//! A handle declared by number must exist; a handle declared by source is
//! the live version that source is (`LiveModel::version_for_source`: by the
//! `modelsync.source` tag first, else by its stored source or the source the
//! registry resolved it to), and otherwise a new registration — unless the registry said the source
//! cannot be registered (a `runs:/` source whose run does not exist or holds
//! no model there), which is an error. A handle on a version that is not
//! READY (still PENDING_REGISTRATION after the wait, or
//! FAILED_REGISTRATION) is an error too: such a version is never moved.
//! Errors name the handle's file:line:column. Pure: reads the snapshot only.

use std::collections::BTreeMap;

use crate::manifest::{DesiredModel, DesiredVersion, FromRef, Locator, Origin};
use crate::plan::VersionRef;
use crate::state::tags;
use crate::state::{
    CopySource, DeclaredSource, LiveModel, LiveState, LiveVersion, ResolvedSource, VersionStatus,
};

/// A declared handle, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Slot<'a> {
    pub target: VersionRef,
    /// The live version, `None` for a version this plan registers.
    pub live: Option<&'a LiveVersion>,
    /// The run the version has, or will have once registered.
    pub run_id: Option<String>,
    /// The MLflow 3 logged model the version has, or will have.
    pub model_id: Option<String>,
    /// For a version this plan registers or copies: the digest of its
    /// bytes, which its registration records (`Err`: why none was taken).
    pub pinned: Option<Result<String, String>>,
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

/// A version the plan copies from another registry.
#[derive(Debug, Clone)]
pub(crate) struct CopyReg {
    pub handle: String,
    pub source: CopySource,
    pub experiment: String,
}

/// All handles of one model, resolved.
#[derive(Debug, Default)]
pub(crate) struct Resolved<'a> {
    pub slots: BTreeMap<String, Slot<'a>>,
    /// In handle order; one per distinct declared source.
    pub registrations: Vec<Registration>,
    /// In handle order; one per distinct source lineage.
    pub copies: Vec<CopyReg>,
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
    // Copy lineage -> handle of its copy (never copy twice).
    let mut copied: BTreeMap<String, String> = BTreeMap::new();
    for (handle, dv) in &dm.versions {
        match &dv.locator {
            Locator::From(from) => {
                match resolve_copy(dm, (handle, dv), from, model, live, &mut copied) {
                    Ok((slot, copy)) => {
                        out.slots.insert(handle.clone(), slot);
                        out.copies.extend(copy);
                    }
                    Err(problem) => problems.push(problem),
                }
            }
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
                    target: VersionRef::New(first.clone()),
                    live: None,
                    run_id: reg.run_id.clone(),
                    model_id: reg.model_id.clone(),
                    pinned: Some(source_digest(live, source)),
                };
                if first == *handle {
                    out.registrations.push(reg);
                }
                out.slots.insert(handle.clone(), slot);
            }
        }
    }
    out.errors = missing_versions(&dm.name, missing);
    out.errors.extend(problems);
    out
}

/// One error per version number declared and not in the registry, where
/// it was first declared.
fn missing_versions(model: &str, missing: BTreeMap<u64, &Origin>) -> Vec<String> {
    missing
        .into_iter()
        .map(|(n, at)| {
            let problem = format!("version {n} of {model:?} does not exist");
            // Versions built in code (not read from a file) have no origin.
            if at.file.is_empty() {
                problem
            } else {
                format!("{at}: {problem}")
            }
        })
        .collect()
}

/// A `from:` handle: the live version already copied from those bytes
/// (found by its lineage tag), or a copy to make. An error when the source
/// could not be read, or when the same source version was copied before
/// from other bytes (nothing is overwritten).
fn resolve_copy<'a>(
    dm: &DesiredModel,
    (handle, dv): (&str, &DesiredVersion),
    from: &FromRef,
    model: Option<&'a LiveModel>,
    live: &LiveState,
    copied: &mut BTreeMap<String, String>,
) -> Result<(Slot<'a>, Option<CopyReg>), String> {
    let src = match live.copy_sources.get(&from.key()) {
        Some(Ok(src)) => src,
        Some(Err(why)) => return Err(format!("{}: {why}", dv.origin)),
        None => {
            return Err(format!(
                "{}: {} of {:?} in registry {:?} was not read",
                dv.origin, from.select, from.model, from.registry
            ));
        }
    };
    let lineage = src.lineage();
    if let Some(v) = model.and_then(|m| find_copy(m, src)) {
        if let Some(problem) = not_ready(dm, dv, v) {
            return Err(problem);
        }
        return Ok((existing(v), None));
    }
    let earlier = model.and_then(|m| {
        m.versions
            .values()
            .find(|v| v.tags.get(tags::COPY_OF) == Some(&src.origin()))
    });
    if let Some(v) = earlier {
        let before = v.tags.get(tags::COPY_LINEAGE).cloned().unwrap_or_default();
        return Err(format!(
            "{}: version {} of {:?} in registry {:?} changed since it was copied here as version {} \
             (lineage now {lineage}, the copy has {before}); nothing is overwritten: register the \
             changed files as a new version in {:?} and copy that one",
            dv.origin, src.version, src.model, src.registry, v.version, src.registry
        ));
    }
    if let Some(id) = live.deleted_experiments.get(&from.experiment) {
        let problem = crate::naming::deleted_experiment_problem(&from.experiment, id);
        return Err(format!("{}: the copy's {problem}", dv.origin));
    }
    let first = copied
        .entry(lineage)
        .or_insert_with(|| handle.to_owned())
        .clone();
    let slot = Slot {
        target: VersionRef::New(first.clone()),
        live: None,
        run_id: (!src.run_id.is_empty()).then(|| src.run_id.clone()),
        // Gated on the source run's metrics (observe adds them) until the
        // copy is made; the source's logged model is not in this registry.
        model_id: None,
        pinned: Some(Ok(src.digest.clone())),
    };
    let copy = (first == handle).then(|| CopyReg {
        handle: first,
        source: src.clone(),
        experiment: from.experiment.clone(),
    });
    Ok((slot, copy))
}

/// The lowest live version carrying `src`'s copy lineage.
pub(crate) fn find_copy<'a>(model: &'a LiveModel, src: &CopySource) -> Option<&'a LiveVersion> {
    model.versions.values().find(|v| {
        v.tags
            .get(tags::COPY_LINEAGE)
            .is_some_and(|l| src.is_lineage(l))
    })
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

/// The live version of `model` that the declared `source` is
/// ([`DeclaredSource`]'s rule), given what the registry resolved it to.
pub(crate) fn find_source<'a>(
    model: &'a LiveModel,
    source: &str,
    run_id: Option<&str>,
    resolved: Option<&ResolvedSource>,
) -> Option<&'a LiveVersion> {
    model.version_for_source(&DeclaredSource {
        source,
        run_id,
        stored_as: resolved.map(|r| r.source.as_str()),
    })
}

fn existing(v: &LiveVersion) -> Slot<'_> {
    Slot {
        target: VersionRef::Existing(v.version),
        live: Some(v),
        run_id: (!v.run_id.is_empty()).then(|| v.run_id.clone()),
        model_id: (!v.model_id.is_empty()).then(|| v.model_id.clone()),
        pinned: None,
    }
}

/// The digest of the bytes a registration of `source` records, or why
/// there is none.
fn source_digest(live: &LiveState, source: &str) -> Result<String, String> {
    match live.source_trees.get(source) {
        Some(Ok(tree)) => Ok(tree.digest.clone()),
        Some(Err(why)) => Err(why.clone()),
        None => Err("its bytes were not read".to_string()),
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

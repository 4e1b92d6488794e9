//! Checks of `spec.versions`: handles, numbers, sources and run ids.

use std::collections::HashMap;

use super::rules::{handle_problem, run_id_of_source};
use super::{Ctx, ModelCheck, check_description, check_tags, version_number};
use crate::manifest::schema::{FromSpec, ModelSpec, VersionSpec};
use crate::manifest::yaml::Located;
use crate::manifest::{
    DEFAULT_COPY_EXPERIMENT, DesiredVersion, FromRef, FromSelect, Locator, Origin,
};
use crate::naming::{source_problem, tag_value_problem};
use crate::state::Stage;

/// `spec.versions`: valid handles, each with exactly one of a number or
/// a source, neither declared twice.
pub(super) fn check_versions(ctx: &mut Ctx<'_>, spec: &ModelSpec, mc: &mut ModelCheck) {
    let mut sources: HashMap<String, (String, Origin)> = HashMap::new();
    let mut numbers: HashMap<u64, (String, Origin)> = HashMap::new();
    for (handle, v) in spec.versions.iter() {
        mc.declared.insert(handle.value.clone());
        if let Some(problem) = handle_problem(&handle.value) {
            ctx.error(handle, problem);
            continue;
        }
        let tags = check_tags(ctx, &v.tags, tag_value_problem);
        check_description(ctx, &v.description);
        let Some(locator) = locate(ctx, handle, v, &mut numbers, &mut sources) else {
            continue;
        };
        // Where the version is declared: its `version: N` (what an unknown
        // number's error points at), else its handle.
        let origin = match (&locator, &v.version) {
            (Locator::Number(_), Some(number)) => ctx.origin(number),
            _ => ctx.origin(handle),
        };
        mc.versions.insert(
            handle.value.clone(),
            DesiredVersion {
                origin,
                locator,
                description: v.description.as_ref().map(|d| d.value.clone()),
                tags,
            },
        );
    }
}

/// Where one version is: its number, or its source (with the run id the
/// source names or `runId` gives). Every problem is reported.
fn locate(
    ctx: &mut Ctx<'_>,
    handle: &Located<String>,
    v: &VersionSpec,
    numbers: &mut HashMap<u64, (String, Origin)>,
    sources: &mut HashMap<String, (String, Origin)>,
) -> Option<Locator> {
    if let Some(from) = &v.from {
        if v.version.is_some() || v.source.is_some() || v.run_id.is_some() {
            ctx.error(
                handle,
                format!(
                    "version \"{}\" has from together with version, source or runId: give exactly one",
                    handle.value
                ),
            );
            return None;
        }
        return locate_from(ctx, from).map(|f| Locator::From(Box::new(f)));
    }
    match (&v.version, &v.source) {
        (Some(_), Some(_)) => {
            ctx.error(
                handle,
                format!(
                    "version \"{}\" has both version and source: give exactly one",
                    handle.value
                ),
            );
            None
        }
        (None, None) => {
            ctx.error(
                handle,
                format!(
                    "version \"{}\" has neither version, source nor from: give exactly one",
                    handle.value
                ),
            );
            None
        }
        (Some(number), None) => locate_number(ctx, handle, v, number, numbers),
        (None, Some(source)) => locate_source(ctx, handle, v, source, sources),
    }
}

/// `version: N`: a number declared once, without `runId`.
fn locate_number(
    ctx: &mut Ctx<'_>,
    handle: &Located<String>,
    v: &VersionSpec,
    number: &Located<i64>,
    numbers: &mut HashMap<u64, (String, Origin)>,
) -> Option<Locator> {
    if let Some(run_id) = &v.run_id {
        ctx.error(
            run_id,
            "runId is only allowed together with source".to_string(),
        );
    }
    let n = version_number(ctx, number)?;
    if let Some((first, at)) = numbers.get(&n) {
        let message = format!("version {n} is already declared as \"{first}\" at {at}");
        ctx.error(handle, message);
        return None;
    }
    numbers.insert(n, (handle.value.clone(), ctx.origin(handle)));
    Some(Locator::Number(n))
}

/// `source: URI`: a valid source declared once, with the run id it names
/// or `runId` gives (the two must agree).
fn locate_source(
    ctx: &mut Ctx<'_>,
    handle: &Located<String>,
    v: &VersionSpec,
    source: &Located<String>,
    sources: &mut HashMap<String, (String, Origin)>,
) -> Option<Locator> {
    if let Some(problem) = source_problem(&source.value) {
        ctx.error(source, problem);
        return None;
    }
    if let Some((first, at)) = sources.get(&source.value) {
        let message = format!(
            "source \"{}\" is already declared by \"{first}\" at {at}",
            source.value
        );
        ctx.error(source, message);
        return None;
    }
    sources.insert(
        source.value.clone(),
        (handle.value.clone(), ctx.origin(handle)),
    );
    let run_id = match (&v.run_id, run_id_of_source(&source.value)) {
        (Some(given), Some(id)) if given.value != id => {
            ctx.error(
                given,
                format!(
                    "runId \"{}\" contradicts source \"{}\": expected \"{id}\"",
                    given.value, source.value
                ),
            );
            return None;
        }
        (Some(given), _) if given.value.trim().is_empty() => {
            ctx.error(given, "runId must not be empty".to_string());
            return None;
        }
        (Some(given), _) => Some(given.value.clone()),
        (None, id) => id.map(str::to_string),
    };
    Some(Locator::Source {
        source: source.value.clone(),
        run_id,
    })
}

/// `from:`: a declared registry, a model, and exactly one of alias,
/// version or stage.
fn locate_from(ctx: &mut Ctx<'_>, from: &Located<FromSpec>) -> Option<FromRef> {
    let f = &from.value;
    let mut ok = true;
    if !ctx.options.registries.contains_key(&f.registry.value) {
        let known: Vec<&str> = ctx.options.registries.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none is declared".to_string()
        } else {
            format!("declared: {}", known.join(", "))
        };
        ctx.error(
            &f.registry,
            format!(
                "registry \"{}\" is not declared: add [registries.{}] with a uri to modelsync.toml beside the manifests ({known})",
                f.registry.value, f.registry.value
            ),
        );
        ok = false;
    }
    if f.model.value.trim().is_empty() {
        ctx.error(&f.model, "from.model must not be empty".to_string());
        ok = false;
    }
    let given = [f.alias.is_some(), f.version.is_some(), f.stage.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        ctx.error(
            from,
            "from needs exactly one of alias, version or stage".to_string(),
        );
        return None;
    }
    let select = if let Some(a) = &f.alias {
        if a.value.trim().is_empty() {
            ctx.error(a, "from.alias must not be empty".to_string());
            return None;
        }
        FromSelect::Alias(a.value.clone())
    } else if let Some(n) = &f.version {
        FromSelect::Version(version_number(ctx, n)?)
    } else {
        let s = f.stage.as_ref().expect("one of three");
        match Stage::parse(&s.value) {
            Some(stage) => FromSelect::Stage(stage),
            None => {
                ctx.error(
                    s,
                    format!(
                        "unknown stage {:?} in from.stage: use None, Staging, Production or Archived",
                        s.value
                    ),
                );
                return None;
            }
        }
    };
    let experiment = f
        .experiment
        .as_ref()
        .map_or(DEFAULT_COPY_EXPERIMENT.to_string(), |e| e.value.clone());
    ok.then(|| FromRef {
        registry: f.registry.value.clone(),
        model: f.model.value.clone(),
        select,
        experiment,
    })
}

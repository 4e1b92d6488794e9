//! Checks of `spec.versions`: handles, numbers, sources and run ids.

use std::collections::HashMap;

use super::rules::{handle_problem, run_id_of_source};
use super::{Ctx, ModelCheck, check_description, check_tags, version_number};
use crate::manifest::schema::{ModelSpec, VersionSpec};
use crate::manifest::yaml::Located;
use crate::manifest::{DesiredVersion, Locator, Origin};
use crate::naming::{source_problem, tag_value_problem};

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
                handle: handle.value.clone(),
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
    let locator = match (&v.version, &v.source) {
        (Some(_), Some(_)) => {
            ctx.error(
                handle,
                format!(
                    "version \"{}\" has both version and source: give exactly one",
                    handle.value
                ),
            );
            return None;
        }
        (None, None) => {
            ctx.error(
                handle,
                format!(
                    "version \"{}\" has neither version nor source: give exactly one",
                    handle.value
                ),
            );
            return None;
        }
        (Some(number), None) => {
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
            Locator::Number(n)
        }
        (None, Some(source)) => {
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
            let from_source = run_id_of_source(&source.value);
            let run_id = match (&v.run_id, from_source) {
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
            Locator::Source {
                source: source.value.clone(),
                run_id,
            }
        }
    };
    Some(locator)
}

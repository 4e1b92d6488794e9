//! Checks of `spec.gates`: targets and the gate kinds (the `verifiedIn`
//! gate too); the target and duration readers `validate/verify.rs` shares.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::manifest::schema::{
    ApprovalsSpec, ApproverList, BeatsSpec, GateSpec, RequireTagSpec, SoakSpec,
};
use crate::manifest::yaml::{Located, LocatedMap};
use crate::manifest::{ApproverSet, DIGEST_UNCHANGED, Dataset, Gate, GateTarget};
use crate::state::Stage;

use super::Ctx;
use crate::naming::{alias_problem, tag_key_problem};

/// Stage names for messages.
pub const STAGES: &str = "None, Staging, Production, Archived";

/// What a model declares, for checking that every gate guards something.
pub struct Declared<'a> {
    /// The stages under `spec.stages` (parsed).
    pub stages: BTreeSet<Stage>,
    /// The aliases under `spec.aliases`.
    pub aliases: BTreeSet<&'a str>,
    /// Every key written under `spec.stages` or `spec.aliases`, also the
    /// invalid ones (already reported, so not reported again here).
    pub keys: BTreeSet<&'a str>,
}

/// Checks and converts `spec.gates`. A gate keyed by a stage or alias the
/// model does not declare is an error: it would guard nothing.
pub fn check_gates(
    ctx: &mut Ctx<'_>,
    gates: &LocatedMap<Vec<Located<GateSpec>>>,
    declared: &Declared<'_>,
) -> std::collections::BTreeMap<GateTarget, Vec<Gate>> {
    let mut out = std::collections::BTreeMap::new();
    for (key, list) in gates.iter() {
        let target = if let Some(stage) = Stage::parse(&key.value) {
            GateTarget::Stage(stage)
        } else if alias_problem(&key.value).is_none() {
            GateTarget::Alias(key.value.clone())
        } else {
            ctx.error(
                key,
                format!(
                    "invalid gate target \"{}\": expected a stage ({STAGES}) or a valid alias",
                    key.value
                ),
            );
            continue;
        };
        if out.contains_key(&target) {
            ctx.error(key, format!("gates for {target} are declared twice"));
            continue;
        }
        if let Some(problem) = undeclared(&target, declared)
            && !declared.keys.contains(key.value.as_str())
        {
            ctx.error(key, problem);
        }
        let converted: Vec<Gate> = list.iter().filter_map(|g| check_gate(ctx, g)).collect();
        out.insert(target, converted);
    }
    out
}

/// Why `target` guards nothing (the model does not declare it), or `None`.
pub(super) fn undeclared(target: &GateTarget, declared: &Declared<'_>) -> Option<String> {
    let (problem, written) = match target {
        GateTarget::Stage(stage) if !declared.stages.contains(stage) => (
            format!("gate target {stage} guards nothing: spec.stages does not declare {stage}"),
            stage.as_str(),
        ),
        GateTarget::Alias(alias) if !declared.aliases.contains(alias.as_str()) => (
            format!(
                "gate target \"{alias}\" guards nothing: no stage or alias of that name is declared"
            ),
            alias.as_str(),
        ),
        _ => return None,
    };
    let candidates = declared
        .stages
        .iter()
        .map(|s| s.as_str())
        .chain(declared.aliases.iter().copied());
    Some(match closest(written, candidates) {
        Some(near) => format!("{problem} (did you mean \"{near}\"?)"),
        None => problem,
    })
}

/// The declared target closest to `written` (case-insensitive edit
/// distance of at most a third of its length, and at least 1), if any.
fn closest<'a>(written: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let written = written.to_lowercase();
    let limit = (written.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&written, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Checks one gate: exactly one kind, then that kind's fields.
fn check_gate(ctx: &mut Ctx<'_>, gate: &Located<GateSpec>) -> Option<Gate> {
    let g = &gate.value;
    let kinds = [
        g.metric.is_some(),
        g.beats.is_some(),
        g.soak.is_some(),
        g.require_tag.is_some(),
        g.approvals.is_some(),
        g.digest.is_some(),
        g.verified_in.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if kinds != 1 {
        ctx.error(
            gate,
            "a gate needs exactly one of metric, beats, soak, requireTag, approvals, digest, verifiedIn"
                .to_string(),
        );
        return None;
    }
    if let (None, Some(f)) = (&g.verified_in, &g.for_) {
        ctx.error(
            f,
            "for belongs to a verifiedIn gate (a soak gate writes it inside soak)".to_string(),
        );
    }
    if g.metric.is_none() {
        for bound in [&g.at_least, &g.at_most].into_iter().flatten() {
            ctx.error(
                bound,
                "atLeast and atMost belong to a metric gate: add metric".to_string(),
            );
        }
        for field in [&g.dataset, &g.dataset_digest].into_iter().flatten() {
            ctx.error(
                field,
                "dataset and datasetDigest belong to a metric gate (or inside beats)".to_string(),
            );
        }
    }
    if let Some(metric) = &g.metric {
        check_metric(ctx, metric, g)
    } else if let Some(beats) = &g.beats {
        check_beats(ctx, &beats.value)
    } else if let Some(soak) = &g.soak {
        check_soak(ctx, soak)
    } else if let Some(rt) = &g.require_tag {
        check_require_tag(ctx, &rt.value)
    } else if let Some(approvals) = &g.approvals {
        check_approvals(ctx, approvals)
    } else if let Some(digest) = &g.digest {
        check_digest(ctx, digest)
    } else if let Some(target) = &g.verified_in {
        check_verified_in(ctx, target, g)
    } else {
        None
    }
}

/// `digest: unchanged`, the only value.
fn check_digest(ctx: &mut Ctx<'_>, digest: &Located<String>) -> Option<Gate> {
    if digest.value == DIGEST_UNCHANGED {
        return Some(Gate::DigestUnchanged);
    }
    ctx.error(
        digest,
        format!(
            "digest gate {:?}: the only value is \"{DIGEST_UNCHANGED}\" (the bytes must still \
             be the ones whose digest modelsync recorded)",
            digest.value
        ),
    );
    None
}

/// `metric` with `atLeast` and/or `atMost`, a range some value can pass.
fn check_metric(ctx: &mut Ctx<'_>, metric: &Located<String>, g: &GateSpec) -> Option<Gate> {
    if metric.value.is_empty() {
        ctx.error(metric, "metric name must not be empty".to_string());
    }
    let at_least = g.at_least.as_ref().map(|n| n.value.0);
    let at_most = g.at_most.as_ref().map(|n| n.value.0);
    if at_least.is_none() && at_most.is_none() {
        ctx.error(
            metric,
            format!(
                "metric gate \"{}\" needs atLeast and/or atMost",
                metric.value
            ),
        );
        return None;
    }
    if let (Some(lo), Some(hi)) = (at_least, at_most)
        && lo > hi
    {
        let at = g.at_least.as_ref().expect("checked above");
        ctx.error(
            at,
            format!("atLeast {lo} is greater than atMost {hi}: no value can pass"),
        );
        return None;
    }
    let dataset = check_dataset(ctx, g.dataset.as_ref(), g.dataset_digest.as_ref())?;
    Some(Gate::Metric {
        metric: metric.value.clone(),
        at_least,
        at_most,
        dataset,
    })
}

/// `beats: {alias, metric, by}`: a valid alias and a metric name.
fn check_beats(ctx: &mut Ctx<'_>, b: &BeatsSpec) -> Option<Gate> {
    let mut ok = true;
    if let Some(problem) = alias_problem(&b.alias.value) {
        ctx.error(&b.alias, problem);
        ok = false;
    }
    if b.metric.value.is_empty() {
        ctx.error(&b.metric, "metric name must not be empty".to_string());
        ok = false;
    }
    let dataset = check_dataset(ctx, b.dataset.as_ref(), b.dataset_digest.as_ref())?;
    ok.then(|| Gate::Beats {
        alias: b.alias.value.clone(),
        metric: b.metric.value.clone(),
        by: b.by.as_ref().map_or(0.0, |n| n.value.0),
        dataset,
    })
}

/// `dataset` (and `datasetDigest`, which needs it): non-empty names. The
/// outer `None` means a problem was reported.
fn check_dataset(
    ctx: &mut Ctx<'_>,
    name: Option<&Located<String>>,
    digest: Option<&Located<String>>,
) -> Option<Option<Dataset>> {
    let mut ok = true;
    for field in [name, digest].into_iter().flatten() {
        if field.value.trim().is_empty() {
            ctx.error(
                field,
                "dataset and datasetDigest must not be empty".to_string(),
            );
            ok = false;
        }
    }
    if let (None, Some(digest)) = (name, digest) {
        ctx.error(
            digest,
            "datasetDigest narrows a dataset: add dataset (its name)".to_string(),
        );
        ok = false;
    }
    ok.then(|| {
        name.map(|n| Dataset {
            name: n.value.clone(),
            digest: digest.map(|d| d.value.clone()),
        })
    })
}

/// `soak: {stage | alias, for}`: one target and a positive duration.
fn check_soak(ctx: &mut Ctx<'_>, soak: &Located<SoakSpec>) -> Option<Gate> {
    let target = soak_target(ctx, soak);
    let duration = soak_duration(ctx, &soak.value.duration);
    Some(Gate::Soak {
        target: target?,
        duration: duration?,
    })
}

fn soak_target(ctx: &mut Ctx<'_>, soak: &Located<SoakSpec>) -> Option<GateTarget> {
    match (&soak.value.stage, &soak.value.alias) {
        (Some(stage), None) => match Stage::parse(&stage.value) {
            Some(st) => Some(GateTarget::Stage(st)),
            None => {
                ctx.error(
                    stage,
                    format!(
                        "unknown stage \"{}\": expected one of {STAGES}",
                        stage.value
                    ),
                );
                None
            }
        },
        (None, Some(alias)) => match alias_problem(&alias.value) {
            None => Some(GateTarget::Alias(alias.value.clone())),
            Some(problem) => {
                ctx.error(alias, problem);
                None
            }
        },
        _ => {
            ctx.error(soak, "soak needs exactly one of stage or alias".to_string());
            None
        }
    }
}

fn soak_duration(ctx: &mut Ctx<'_>, duration: &Located<String>) -> Option<std::time::Duration> {
    match humantime::parse_duration(duration.value.trim()) {
        Ok(d) if d.is_zero() => {
            ctx.error(
                duration,
                "soak duration must be greater than zero".to_string(),
            );
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            ctx.error(
                duration,
                format!(
                    "invalid duration \"{}\": expected e.g. 30m, 24h, 7days",
                    duration.value
                ),
            );
            None
        }
    }
}

/// `requireTag: {key, value}`: a valid tag key.
fn check_require_tag(ctx: &mut Ctx<'_>, r: &RequireTagSpec) -> Option<Gate> {
    if let Some(problem) = tag_key_problem(&r.key.value) {
        ctx.error(&r.key, problem);
        return None;
    }
    Some(Gate::RequireTag {
        key: r.key.value.clone(),
        value: r.value.as_ref().map(|v| v.value.0.clone()),
    })
}

/// `approvals: {required, from}`: at least one approval, no more than
/// `from` can give, principals as allowed_signers writes them; and an
/// approvers file named in `modelsync.toml` to check them against.
fn check_approvals(ctx: &mut Ctx<'_>, approvals: &Located<ApprovalsSpec>) -> Option<Gate> {
    let spec = &approvals.value;
    let mut ok = true;
    if ctx.options.approvers.is_none() {
        ctx.error(
            approvals,
            "an approvals gate needs an approvers file: add approvers = \"PATH\" (git's allowed_signers format) to modelsync.toml beside the manifests".to_string(),
        );
        ok = false;
    }
    let from = match &spec.from.value {
        ApproverList::Any => ApproverSet::Any,
        ApproverList::Listed(names) => {
            let mut seen = BTreeSet::new();
            for name in names {
                if let Some(problem) = crate::manifest::approval::principal_problem(name) {
                    ctx.error(&spec.from, format!("from: {problem}"));
                    ok = false;
                } else if !seen.insert(name.as_str()) {
                    ctx.error(&spec.from, format!("from: {name} is listed twice"));
                    ok = false;
                }
            }
            if names.is_empty() {
                ctx.error(
                    &spec.from,
                    "from: list at least one principal, or write any".to_string(),
                );
                ok = false;
            }
            ApproverSet::Listed(names.clone())
        }
    };
    let required = match &spec.required {
        None => 1,
        Some(r) => match u32::try_from(r.value) {
            Ok(n) if n >= 1 => n,
            _ => {
                ctx.error(
                    r,
                    format!(
                        "required: {} is not a positive number of approvals",
                        r.value
                    ),
                );
                return None;
            }
        },
    };
    if let (ApproverSet::Listed(names), Some(r)) = (&from, &spec.required)
        && required as usize > names.len()
    {
        ctx.error(
            r,
            format!(
                "required: {required} approvals from {} principals can never be given",
                names.len()
            ),
        );
        ok = false;
    }
    ok.then_some(Gate::Approvals { required, from })
}

/// A `verifiedIn` gate (with its optional `for`).
fn check_verified_in(ctx: &mut Ctx<'_>, at: &Located<String>, g: &GateSpec) -> Option<Gate> {
    let target = target(ctx, at, "verifiedIn");
    let duration = duration(ctx, g.for_.as_ref(), "for", true);
    Some(Gate::VerifiedIn {
        target: target?,
        duration: duration?.unwrap_or_default(),
    })
}

/// A stage or an alias, as written in a key or a `verifiedIn`.
pub(super) fn target(ctx: &mut Ctx<'_>, at: &Located<String>, what: &str) -> Option<GateTarget> {
    if let Some(stage) = Stage::parse(&at.value) {
        return Some(GateTarget::Stage(stage));
    }
    if alias_problem(&at.value).is_none() {
        return Some(GateTarget::Alias(at.value.clone()));
    }
    ctx.error(
        at,
        format!(
            "invalid {what} target \"{}\": expected a stage ({STAGES}) or a valid alias",
            at.value
        ),
    );
    None
}

/// A duration field: `Some(None)` when absent, `None` when invalid.
pub(super) fn duration(
    ctx: &mut Ctx<'_>,
    at: Option<&Located<String>>,
    field: &str,
    zero_ok: bool,
) -> Option<Option<Duration>> {
    let Some(at) = at else { return Some(None) };
    match humantime::parse_duration(at.value.trim()) {
        Ok(d) if d.is_zero() && !zero_ok => {
            ctx.error(at, format!("{field} must be greater than zero"));
            None
        }
        Ok(d) => Some(Some(d)),
        Err(_) => {
            ctx.error(
                at,
                format!(
                    "{field} {:?} is not a duration (e.g. 10s, 2m, 1h 30m)",
                    at.value
                ),
            );
            None
        }
    }
}

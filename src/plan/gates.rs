//! Gate evaluation: the checks a version must pass before it moves into a
//! stage or alias (`docs/manifest-format.md`, "Gates").
//!
//! Each gate yields a [`GateCheck`] with the gate as written and the values
//! observed, so the plan can show why a move is blocked or allowed. Gates
//! read only the snapshot: metrics from the version's MLflow 3 logged model
//! ([`LiveState::logged_models`], narrowed by evaluation dataset when the
//! gate names one), falling back to its run ([`LiveState::runs`]); tags and
//! holders from the live model; signed approvals from the version's tags
//! and the approval files read with the manifests (`super::approvals`);
//! the bytes behind the version from [`LiveState::version_trees`] (read in
//! `registry/`, compared with the recorded digest by
//! `state::digest::check_pin`). Every observed value says where it came
//! from. The time comes in as [`Env::now_ms`]; no clock, no I/O.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::manifest::{Approvals, ApproverSet, Dataset, Gate, GateTarget};
use crate::plan::approvals::{self, Subject};
use crate::plan::{GateCheck, GateStatus};
use crate::state::tags;
use crate::state::{LiveLoggedModel, LiveModel, LiveState, LiveVersion, LoggedMetric};

/// What gates are evaluated at, besides the registry's state.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// The time, ms since the epoch.
    pub now_ms: i64,
    /// The registry as modelsync prints it: what an approval must name.
    pub registry: &'a str,
    /// The approvers file and approval files read with the manifests.
    pub approvals: &'a Approvals,
}

/// The move a gate guards, and the version it would put in place.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The model and the stage or alias the move sets.
    pub model: &'a str,
    pub target: &'a GateTarget,
    /// The live version; `None` for a version the same plan registers.
    pub live: Option<&'a LiveVersion>,
    /// The run the version has, or will have once registered.
    pub run_id: Option<&'a str>,
    /// The MLflow 3 logged model the version has, or will have.
    pub model_id: Option<&'a str>,
    /// For a version the same plan registers or copies: the digest its
    /// registration records (`Err`: why none could be taken).
    pub pinned: Option<&'a Result<String, String>>,
}

/// Evaluates `gates` for moving `candidate` of `model` (absent when the
/// model does not exist yet), in the order they were declared.
pub fn evaluate(
    gates: &[Gate],
    candidate: &Candidate<'_>,
    model: Option<&LiveModel>,
    live: &LiveState,
    env: &Env<'_>,
) -> Vec<GateCheck> {
    gates
        .iter()
        .map(|gate| {
            let mut approved_by = Vec::new();
            let outcome = match gate {
                Gate::Metric {
                    metric,
                    at_least,
                    at_most,
                    dataset,
                } => metric_gate(
                    candidate,
                    metric,
                    (*at_least, *at_most),
                    dataset.as_ref(),
                    live,
                ),
                Gate::Beats {
                    alias,
                    metric,
                    by,
                    dataset,
                } => beats_gate(
                    candidate,
                    alias,
                    metric,
                    (*by, dataset.as_ref()),
                    model,
                    live,
                ),
                Gate::Soak { target, duration } => {
                    soak_gate(candidate, target, *duration, model, env.now_ms)
                }
                Gate::RequireTag { key, value } => require_tag(candidate, key, value.as_deref()),
                Gate::Approvals { required, from } => {
                    approvals_gate(candidate, *required, from, env, &mut approved_by)
                }
                Gate::DigestUnchanged => digest_unchanged(candidate, model, live),
                Gate::VerifiedIn { target, duration } => {
                    verified_in(candidate.live, target, *duration, env.now_ms)
                }
            };
            let (status, detail) = match outcome {
                Ok(detail) => (GateStatus::Passed, detail),
                Err(detail) => (GateStatus::Blocked, detail),
            };
            GateCheck {
                gate: describe(gate),
                status,
                detail,
                approved_by,
            }
        })
        .collect()
}

/// The principals whose approvals `checks` counted (an audit stamp names
/// them), in order, each once.
pub fn approvers(checks: &[GateCheck]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in checks.iter().flat_map(|c| &c.approved_by) {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// The gate as written, e.g. `metric accuracy >= 0.9`.
pub fn describe(gate: &Gate) -> String {
    let on = |d: &Option<Dataset>| {
        d.as_ref()
            .map(|d| format!(" on dataset {d}"))
            .unwrap_or_default()
    };
    match gate {
        Gate::Metric {
            metric,
            at_least,
            at_most,
            dataset,
        } => {
            let bounds = match (at_least, at_most) {
                (Some(lo), Some(hi)) => format!("metric {metric} >= {lo} and <= {hi}"),
                (Some(lo), None) => format!("metric {metric} >= {lo}"),
                (None, Some(hi)) => format!("metric {metric} <= {hi}"),
                (None, None) => format!("metric {metric}"),
            };
            format!("{bounds}{}", on(dataset))
        }
        Gate::Beats {
            alias,
            metric,
            by,
            dataset,
        } if *by == 0.0 => format!("beats @{alias} on {metric}{}", on(dataset)),
        Gate::Beats {
            alias,
            metric,
            by,
            dataset,
        } => format!("beats @{alias} on {metric} by {by}{}", on(dataset)),
        Gate::Soak { target, duration } => {
            format!("soak {target} for {}", duration_text(*duration))
        }
        Gate::RequireTag {
            key,
            value: Some(v),
        } => format!("requireTag {key}={v}"),
        Gate::RequireTag { key, value: None } => format!("requireTag {key}"),
        Gate::Approvals { required, from } => format!("approvals {required} of {from}"),
        Gate::DigestUnchanged => "digest unchanged".to_string(),
        Gate::VerifiedIn { target, duration } if duration.is_zero() => {
            format!("verified in {target}")
        }
        Gate::VerifiedIn { target, duration } => {
            format!("verified in {target} for {}", duration_text(*duration))
        }
    }
}

/// Formats an observed or threshold value: two decimals when that is exact
/// (`0.90`), the shortest exact form otherwise (`0.8512`).
pub fn number(x: f64) -> String {
    let short = format!("{x:.2}");
    if short.parse::<f64>().ok() == Some(x) {
        short
    } else {
        format!("{x}")
    }
}

fn who(candidate: &Candidate<'_>) -> String {
    match candidate.live {
        Some(v) => format!("version {}", v.version),
        None => "the new version".to_string(),
    }
}

/// Where a gate reads a version's metrics: its logged model (MLflow 3),
/// falling back to its run.
#[derive(Debug, Clone, Copy)]
struct Evidence<'a> {
    owner: &'a str,
    run_id: Option<&'a str>,
    model_id: Option<&'a str>,
}

/// A metric value and where it was read.
struct Observed {
    value: f64,
    from: String,
}

/// The value of `metric` for `ev`: from its logged model when that holds
/// the key (narrowed to `dataset` when given), else the latest value in its
/// run; or why there is none.
fn metric_value(
    ev: Evidence<'_>,
    metric: &str,
    dataset: Option<&Dataset>,
    live: &LiveState,
) -> Result<Observed, String> {
    let owner = ev.owner;
    let mut model_note = String::new();
    if let Some(model_id) = ev.model_id {
        match live.logged_models.get(model_id) {
            Some(lm) => {
                if let Some(found) = logged_value(lm, owner, metric, dataset)? {
                    return Ok(found);
                }
                model_note = format!(" (nor has its logged model {model_id})");
            }
            None if dataset.is_some() => {
                return Err(format!("logged model {model_id} of {owner} not found"));
            }
            None => model_note = format!(" (its logged model {model_id} was not found)"),
        }
    }
    if let Some(ds) = dataset {
        return Err(match ev.model_id {
            Some(id) => format!("logged model {id} of {owner} has no {metric} for dataset {ds}"),
            None => format!(
                "{owner} has no logged model; dataset {ds} narrows logged-model metrics only"
            ),
        });
    }
    let run_id = ev
        .run_id
        .ok_or_else(|| format!("{owner} has no run{model_note}"))?;
    let run = live
        .runs
        .get(run_id)
        .ok_or_else(|| format!("run {run_id} of {owner} not found{model_note}"))?;
    let value = *run
        .metrics
        .get(metric)
        .ok_or_else(|| format!("run {run_id} of {owner} has no metric {metric}{model_note}"))?;
    if value.is_nan() {
        return Err(format!("{metric} is NaN (run {run_id} of {owner})"));
    }
    Ok(Observed {
        value,
        from: format!("run {run_id}"),
    })
}

/// The latest value of `metric` logged against `lm` on `dataset` (any
/// dataset when `None`, as long as it is only one), `None` when it has
/// none, or why the value cannot be used.
fn logged_value(
    lm: &LiveLoggedModel,
    owner: &str,
    metric: &str,
    dataset: Option<&Dataset>,
) -> Result<Option<Observed>, String> {
    let id = &lm.model_id;
    let entries: Vec<&LoggedMetric> = lm
        .metrics
        .iter()
        .filter(|m| m.key == metric && dataset.is_none_or(|d| on_dataset(m, d)))
        .collect();
    if dataset.is_none() {
        let names: BTreeSet<&str> = entries
            .iter()
            .map(|m| m.dataset_name.as_deref().unwrap_or("(none)"))
            .collect();
        let digests: BTreeSet<_> = entries.iter().map(|m| &m.dataset_digest).collect();
        if names.len() > 1 || digests.len() > 1 {
            let list: Vec<&str> = names.into_iter().collect();
            return Err(format!(
                "logged model {id} of {owner} has {metric} for several datasets ({}): narrow the gate with dataset",
                list.join(", ")
            ));
        }
    }
    let Some(latest) = entries.into_iter().max_by_key(|m| (m.step, m.timestamp)) else {
        return Ok(None);
    };
    let on = latest
        .dataset_name
        .as_deref()
        .map(|n| format!(", dataset {n}"))
        .unwrap_or_default();
    if latest.value.is_nan() {
        return Err(format!(
            "{metric} is NaN (logged model {id}{on} of {owner})"
        ));
    }
    Ok(Some(Observed {
        value: latest.value,
        from: format!("logged model {id}{on}"),
    }))
}

/// Whether `m` was logged on `d` (its name, and its digest when given).
fn on_dataset(m: &LoggedMetric, d: &Dataset) -> bool {
    m.dataset_name.as_deref() == Some(d.name.as_str())
        && d.digest
            .as_ref()
            .is_none_or(|want| m.dataset_digest.as_ref() == Some(want))
}

fn candidate_evidence<'a>(candidate: &Candidate<'a>, owner: &'a str) -> Evidence<'a> {
    Evidence {
        owner,
        run_id: candidate.run_id,
        model_id: candidate.model_id,
    }
}

fn metric_gate(
    candidate: &Candidate<'_>,
    metric: &str,
    bounds: (Option<f64>, Option<f64>),
    dataset: Option<&Dataset>,
    live: &LiveState,
) -> Result<String, String> {
    let (at_least, at_most) = bounds;
    let owner = who(candidate);
    let seen = metric_value(candidate_evidence(candidate, &owner), metric, dataset, live)?;
    let shown = number(seen.value);
    let from = &seen.from;
    if let Some(lo) = at_least.filter(|lo| seen.value < *lo) {
        return Err(format!("{metric} {shown} < {}, from {from}", number(lo)));
    }
    if let Some(hi) = at_most.filter(|hi| seen.value > *hi) {
        return Err(format!("{metric} {shown} > {}, from {from}", number(hi)));
    }
    let check = match (at_least, at_most) {
        (Some(lo), Some(hi)) => format!("{metric} {shown} >= {} and <= {}", number(lo), number(hi)),
        (Some(lo), None) => format!("{metric} {shown} >= {}", number(lo)),
        (None, Some(hi)) => format!("{metric} {shown} <= {}", number(hi)),
        (None, None) => format!("{metric} {shown}"),
    };
    Ok(format!("{check}, from {from}"))
}

fn beats_gate(
    candidate: &Candidate<'_>,
    alias: &str,
    metric: &str,
    (by, dataset): (f64, Option<&Dataset>),
    model: Option<&LiveModel>,
    live: &LiveState,
) -> Result<String, String> {
    let Some(holder) = model.and_then(|m| m.aliases.get(alias)) else {
        return Ok(format!("no current holder of @{alias}"));
    };
    if candidate.live.is_some_and(|v| v.version == *holder) {
        return Ok(format!("version {holder} already holds @{alias}"));
    }
    let holder_version = model
        .and_then(|m| m.versions.get(holder))
        .ok_or_else(|| format!("@{alias} points at version {holder}, which does not exist"))?;
    let owner = who(candidate);
    let ours = metric_value(candidate_evidence(candidate, &owner), metric, dataset, live)?;
    let holder_owner = format!("version {holder}");
    let holder_ev = Evidence {
        owner: &holder_owner,
        run_id: non_empty(&holder_version.run_id),
        model_id: non_empty(&holder_version.model_id),
    };
    let theirs = metric_value(holder_ev, metric, dataset, live)?;
    let need = if by == 0.0 {
        number(theirs.value)
    } else {
        format!("{} + {}", number(theirs.value), number(by))
    };
    let context = format!(
        "@{alias} is version {holder}; ours from {}; theirs from {}",
        ours.from, theirs.from
    );
    if ours.value >= theirs.value + by {
        Ok(format!(
            "{metric} {} >= {need} ({context})",
            number(ours.value)
        ))
    } else {
        Err(format!(
            "{metric} {} < {need} ({context})",
            number(ours.value)
        ))
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn soak_gate(
    candidate: &Candidate<'_>,
    target: &GateTarget,
    duration: Duration,
    model: Option<&LiveModel>,
    now_ms: i64,
) -> Result<String, String> {
    let Some(v) = candidate.live else {
        return Err(format!("the new version has not held {target} yet"));
    };
    let holds = match target {
        GateTarget::Stage(stage) => v.stage == *stage,
        GateTarget::Alias(alias) => model.and_then(|m| m.aliases.get(alias)) == Some(&v.version),
    };
    if !holds {
        return Err(format!("version {} does not hold {target}", v.version));
    }
    let key = format!("{}{}", tags::PROMOTED_AT_PREFIX, target.key());
    let Some(stamp) = v.tags.get(&key) else {
        return Err(format!(
            "held {target} but not moved there by modelsync (no {key} tag)"
        ));
    };
    let at = tags::Stamp::parse(stamp).at;
    let since_ms =
        parse_time_ms(&at).ok_or_else(|| format!("{key} is not an RFC 3339 time: {stamp:?}"))?;
    let held_ms = u64::try_from(now_ms.saturating_sub(since_ms)).unwrap_or(0);
    let held = duration_text(round_duration(Duration::from_millis(held_ms)));
    let want = duration_text(duration);
    if Duration::from_millis(held_ms) >= duration {
        Ok(format!("held {target} for {held} >= {want}"))
    } else {
        Err(format!("held {target} for {held} < {want}"))
    }
}

fn require_tag(candidate: &Candidate<'_>, key: &str, want: Option<&str>) -> Result<String, String> {
    let Some(v) = candidate.live else {
        return Err(format!("the new version has no tag {key}"));
    };
    match (v.tags.get(key), want) {
        (None, _) => Err(format!("version {} has no tag {key}", v.version)),
        (Some(got), Some(want)) if got != want => {
            Err(format!("{key} = {got:?}, expected {want:?}"))
        }
        (Some(got), _) => Ok(format!("{key} = {got:?}")),
    }
}

/// Signed approvals of the candidate for this move ([`approvals::tally`]);
/// the principals counted go to `approved_by`.
fn approvals_gate(
    candidate: &Candidate<'_>,
    required: u32,
    from: &ApproverSet,
    env: &Env<'_>,
    approved_by: &mut Vec<String>,
) -> Result<String, String> {
    let Some(version) = candidate.live else {
        return Err("the new version is not registered yet, so nobody has approved it".into());
    };
    let Some(signers) = env.approvals.signers() else {
        return Err("no approvers file was read (approvers in modelsync.toml)".into());
    };
    let subject = Subject {
        registry: env.registry,
        model: candidate.model,
        target: candidate.target,
        version,
    };
    let tally = approvals::tally(&subject, from, env.approvals, signers, env.now_ms);
    let outcome = tally.outcome(required);
    if outcome.is_ok() {
        *approved_by = tally.approved_by;
    }
    outcome
}

/// The bytes behind the candidate are the ones whose digest was recorded
/// on it; a version registered by this plan records them now.
fn digest_unchanged(
    candidate: &Candidate<'_>,
    model: Option<&LiveModel>,
    live: &LiveState,
) -> Result<String, String> {
    let Some(v) = candidate.live else {
        return match candidate.pinned {
            Some(Ok(digest)) => Ok(format!("the new version is registered with {digest}")),
            Some(Err(why)) => Err(format!("the new version's bytes cannot be read: {why}")),
            None => Err("the new version's bytes were not read".to_string()),
        };
    };
    let n = v.version;
    let read = model.and_then(|m| live.version_tree(&m.name, n));
    let now = match read {
        Some(Ok(tree)) => tree,
        Some(Err(why)) => return Err(format!("the bytes of version {n} cannot be read: {why}")),
        None => return Err(format!("the bytes of version {n} were not read")),
    };
    match crate::state::digest::check_pin(&v.tags, now) {
        crate::state::digest::Pin::Matches => Ok(format!(
            "the bytes of version {n} match {} ({} file(s))",
            now.digest,
            now.files.len()
        )),
        crate::state::digest::Pin::Unrecorded => Err(format!(
            "version {n} has no recorded digest ({}): modelsync records it when it registers \
             or first moves a version; record it with a move into a target without this gate, \
             or set the tag to what `modelsync resolve` prints",
            tags::DIGEST
        )),
        crate::state::digest::Pin::Differs(why) => Err(format!("version {n}: {why}")),
    }
}

/// The `verifiedIn` gate: `version` passed its verification in `target`
/// at least `duration` before `now_ms` (the evaluation clock).
pub fn verified_in(
    version: Option<&LiveVersion>,
    target: &GateTarget,
    duration: Duration,
    now_ms: i64,
) -> Result<String, String> {
    let Some(v) = version else {
        return Err(format!("the new version has not been verified in {target}"));
    };
    let n = v.version;
    let Some(record) = crate::state::verification::of(v, &target.key()) else {
        return Err(format!("version {n} has no verification in {target}"));
    };
    let Some(at) = record.verified_at() else {
        return Err(format!("version {n} in {target}: {}", record.describe()));
    };
    let Some(at_ms) = crate::clock::parse_rfc3339(at) else {
        return Err(format!("version {n} in {target}: unreadable time {at:?}"));
    };
    let ago = Duration::from_secs(u64::try_from(now_ms.saturating_sub(at_ms) / 1000).unwrap_or(0));
    let shown = humantime::format_duration(ago);
    if ago >= duration {
        Ok(format!("verified in {target} at {at} ({shown} ago)"))
    } else {
        Err(format!(
            "verified in {target} at {at}, {shown} ago < {}",
            humantime::format_duration(duration)
        ))
    }
}

/// Milliseconds since the epoch of an RFC 3339 time (`Z` or no offset).
fn parse_time_ms(s: &str) -> Option<i64> {
    crate::clock::parse_rfc3339(s)
}

/// A duration the way people write them in manifests: `24h`, `90m`,
/// `30h 5m`, falling back to humantime's form for odd values.
fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return humantime::format_duration(d).to_string();
    }
    match (secs / 3600, secs % 3600) {
        (h, 0) => format!("{h}h"),
        (0, rest) if rest % 60 == 0 => format!("{}m", rest / 60),
        (h, rest) if rest % 60 == 0 => format!("{h}h {}m", rest / 60),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// Drops sub-second parts, and seconds once the duration reaches an hour,
/// so that `held ... for` reads well.
fn round_duration(d: Duration) -> Duration {
    let secs = d.as_secs();
    if secs >= 3600 {
        Duration::from_secs(secs - secs % 60)
    } else {
        Duration::from_secs(secs)
    }
}

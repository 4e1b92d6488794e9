//! Gate evaluation: the checks a version must pass before it moves into a
//! stage or alias (`docs/manifest-format.md`, "Gates").
//!
//! Each gate yields a [`GateCheck`] with the gate as written and the values
//! observed, so the plan can show why a move is blocked or allowed. Gates
//! read only the snapshot: run metrics from [`LiveState::runs`], tags and
//! holders from the live model. The time comes in as `now_ms`; no clock, no
//! I/O.

use std::time::Duration;

use crate::manifest::{Gate, GateTarget};
use crate::plan::{GateCheck, GateStatus};
use crate::state::tags;
use crate::state::{LiveModel, LiveState, LiveVersion};

/// The version a gated move would put in place.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The live version; `None` for a version the same plan registers.
    pub live: Option<&'a LiveVersion>,
    /// The run the version has, or will have once registered.
    pub run_id: Option<&'a str>,
}

/// Evaluates `gates` for moving `candidate` of `model` (absent when the
/// model does not exist yet), in the order they were declared.
pub fn evaluate(
    gates: &[Gate],
    candidate: &Candidate<'_>,
    model: Option<&LiveModel>,
    live: &LiveState,
    now_ms: i64,
) -> Vec<GateCheck> {
    gates
        .iter()
        .map(|gate| {
            let outcome = match gate {
                Gate::Metric {
                    metric,
                    at_least,
                    at_most,
                } => metric_gate(candidate, metric, *at_least, *at_most, live),
                Gate::Beats { alias, metric, by } => {
                    beats_gate(candidate, alias, metric, *by, model, live)
                }
                Gate::Soak { target, duration } => {
                    soak_gate(candidate, target, *duration, model, now_ms)
                }
                Gate::RequireTag { key, value } => require_tag(candidate, key, value.as_deref()),
            };
            let (status, detail) = match outcome {
                Ok(detail) => (GateStatus::Passed, detail),
                Err(detail) => (GateStatus::Blocked, detail),
            };
            GateCheck {
                gate: describe(gate),
                status,
                detail,
            }
        })
        .collect()
}

/// The gate as written, e.g. `metric accuracy >= 0.9`.
pub fn describe(gate: &Gate) -> String {
    match gate {
        Gate::Metric {
            metric,
            at_least,
            at_most,
        } => match (at_least, at_most) {
            (Some(lo), Some(hi)) => format!("metric {metric} >= {lo} and <= {hi}"),
            (Some(lo), None) => format!("metric {metric} >= {lo}"),
            (None, Some(hi)) => format!("metric {metric} <= {hi}"),
            (None, None) => format!("metric {metric}"),
        },
        Gate::Beats { alias, metric, by } if *by == 0.0 => {
            format!("beats @{alias} on {metric}")
        }
        Gate::Beats { alias, metric, by } => format!("beats @{alias} on {metric} by {by}"),
        Gate::Soak { target, duration } => {
            format!("soak {target} for {}", duration_text(*duration))
        }
        Gate::RequireTag {
            key,
            value: Some(v),
        } => format!("requireTag {key}={v}"),
        Gate::RequireTag { key, value: None } => format!("requireTag {key}"),
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

/// The latest value of `metric` in `run_id`, or why there is none.
fn metric_value(
    run_id: Option<&str>,
    owner: &str,
    metric: &str,
    live: &LiveState,
) -> Result<f64, String> {
    let run_id = run_id.ok_or_else(|| format!("{owner} has no run"))?;
    let run = live
        .runs
        .get(run_id)
        .ok_or_else(|| format!("run {run_id} of {owner} not found"))?;
    let value = *run
        .metrics
        .get(metric)
        .ok_or_else(|| format!("run {run_id} of {owner} has no metric {metric}"))?;
    if value.is_nan() {
        return Err(format!("{metric} is NaN (run {run_id} of {owner})"));
    }
    Ok(value)
}

fn metric_gate(
    candidate: &Candidate<'_>,
    metric: &str,
    at_least: Option<f64>,
    at_most: Option<f64>,
    live: &LiveState,
) -> Result<String, String> {
    let value = metric_value(candidate.run_id, &who(candidate), metric, live)?;
    let shown = number(value);
    if let Some(lo) = at_least.filter(|lo| value < *lo) {
        return Err(format!("{metric} {shown} < {}", number(lo)));
    }
    if let Some(hi) = at_most.filter(|hi| value > *hi) {
        return Err(format!("{metric} {shown} > {}", number(hi)));
    }
    Ok(match (at_least, at_most) {
        (Some(lo), Some(hi)) => format!("{metric} {shown} >= {} and <= {}", number(lo), number(hi)),
        (Some(lo), None) => format!("{metric} {shown} >= {}", number(lo)),
        (None, Some(hi)) => format!("{metric} {shown} <= {}", number(hi)),
        (None, None) => format!("{metric} {shown}"),
    })
}

fn beats_gate(
    candidate: &Candidate<'_>,
    alias: &str,
    metric: &str,
    by: f64,
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
    let ours = metric_value(candidate.run_id, &who(candidate), metric, live)?;
    let holder_run = (!holder_version.run_id.is_empty()).then_some(holder_version.run_id.as_str());
    let theirs = metric_value(holder_run, &format!("version {holder}"), metric, live)?;
    let need = if by == 0.0 {
        number(theirs)
    } else {
        format!("{} + {}", number(theirs), number(by))
    };
    let context = format!("@{alias} is version {holder}");
    if ours >= theirs + by {
        Ok(format!("{metric} {} >= {need} ({context})", number(ours)))
    } else {
        Err(format!("{metric} {} < {need} ({context})", number(ours)))
    }
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

/// Milliseconds since the epoch of an RFC 3339 time (`Z` or no offset).
fn parse_time_ms(s: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(s)
        .or_else(|_| humantime::parse_rfc3339_weak(s))
        .ok()?;
    let since = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
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

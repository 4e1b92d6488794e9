//! Verification after a move, the pure half (issue 19): which moves start
//! a verification ([`started`]) and which verifications are left running
//! ([`resumable`]), what one round of checks observed ([`judge_http`],
//! [`judge_metric`]), the `every`/`for`/`timeout` state machine over those
//! observations and times ([`step`]); the `verifiedIn` gate that reads
//! the records is `plan::gates::verified_in`. Times come in as arguments (the wall clock, by the
//! executor; the evaluation clock, for the gate); no I/O.

use std::time::Duration;

use crate::clock;
use crate::condition::{self, Answer};
use crate::manifest::verify::{Check, HttpCheck, Verification};
use crate::manifest::{DesiredState, GateTarget};
use crate::state::verification::{self, CheckRecord, Record, State};
use crate::state::{LiveLoggedModel, LiveModel, LiveState, LiveVersion};

/// One verification to run: a version that moved into a verified target.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub model: String,
    pub version: u64,
    pub target: GateTarget,
    pub spec: Verification,
    /// The version's MLflow 3 logged model (metric checks read it) and
    /// its run.
    pub model_id: Option<String>,
    pub run_id: Option<String>,
}

impl Job {
    /// The version tag holding this verification.
    pub fn tag_key(&self) -> String {
        verification::tag_key(&self.target.key())
    }

    /// `churn version 3 in Staging`.
    pub fn describe(&self) -> String {
        format!("{} version {} in {}", self.model, self.version, self.target)
    }
}

/// The version holding `target` in `model` (a stage: its highest holder).
pub fn holder<'a>(model: &'a LiveModel, target: &GateTarget) -> Option<&'a LiveVersion> {
    match target {
        GateTarget::Stage(stage) => model.holders(*stage).last(),
        GateTarget::Alias(alias) => model.aliases.get(alias).and_then(|n| model.versions.get(n)),
    }
}

/// The verifications a pass's moves started: every declared target with
/// `verify:` whose holder in `after` (the read-back) is another version
/// than in `before` (what the pass planned from).
pub fn started(desired: &DesiredState, before: &LiveState, after: &LiveState) -> Vec<Job> {
    jobs(desired, after, |name, target, now| {
        let was = before
            .models
            .get(name)
            .and_then(|m| holder(m, target))
            .map(|v| v.version);
        was != Some(now.version)
    })
}

/// Verifications recorded as `verifying` on a declared target's holder
/// (after a restart, or a leader change: the caller knows which it runs
/// already), with their records.
pub fn resumable(desired: &DesiredState, live: &LiveState) -> Vec<(Job, Record)> {
    let found = jobs(desired, live, |_, target, now| {
        verification::of(now, &target.key()).is_some_and(|r| r.state == State::Verifying)
    });
    found
        .into_iter()
        .filter_map(|job| {
            let model = live.models.get(&job.model)?;
            let record = verification::of(model.versions.get(&job.version)?, &job.target.key())?;
            Some((job, record))
        })
        .collect()
}

fn jobs(
    desired: &DesiredState,
    live: &LiveState,
    keep: impl Fn(&str, &GateTarget, &LiveVersion) -> bool,
) -> Vec<Job> {
    let mut out = Vec::new();
    for (name, model) in &desired.models {
        let Some(live_model) = live.models.get(name) else {
            continue;
        };
        for (target, spec) in &model.verify {
            let Some(now) = holder(live_model, target) else {
                continue;
            };
            if keep(name, target, now) {
                out.push(Job {
                    model: name.clone(),
                    version: now.version,
                    target: target.clone(),
                    spec: spec.clone(),
                    model_id: (!now.model_id.is_empty()).then(|| now.model_id.clone()),
                    run_id: (!now.run_id.is_empty()).then(|| now.run_id.clone()),
                });
            }
        }
    }
    out
}

/// The URL of an HTTP check for `job`: `{model}`, `{version}` and
/// `{target}` substituted, percent-encoded (nothing else is expanded).
pub fn url_for(check: &HttpCheck, job: &Job) -> String {
    let target = match &job.target {
        GateTarget::Stage(s) => s.as_str().to_string(),
        GateTarget::Alias(a) => a.clone(),
    };
    check
        .url
        .replace("{model}", &encode(&job.model))
        .replace("{version}", &job.version.to_string())
        .replace("{target}", &encode(&target))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What an HTTP check's answer (or the error instead of one) means.
pub fn judge_http(check: &HttpCheck, job: &Job, answer: Result<&Answer<'_>, &str>) -> CheckRecord {
    let name = format!("http {} {}", check.method, url_for(check, job));
    let (ok, observed) = match answer {
        Err(why) => (false, format!("no answer: {why}")),
        Ok(a) if a.status != check.status => (
            false,
            format!("status {}, expected {}", a.status, check.status),
        ),
        Ok(a) => match check.condition.as_deref() {
            None => (true, format!("status {}", a.status)),
            Some(cond) => match condition::evaluate(cond, a) {
                Ok(true) => (true, format!("status {}, condition true", a.status)),
                Ok(false) => (false, format!("status {}, condition false", a.status)),
                Err(why) => (false, format!("status {}, {why}", a.status)),
            },
        },
    };
    CheckRecord {
        check: name,
        ok,
        observed,
    }
}

/// A metric check over the version's logged model: the latest value of
/// the metric (on the dataset, when named) logged at or after `since_ms`
/// (the move); older values are the evidence the move was made on, not
/// what happened after it.
pub fn judge_metric(check: &Check, lm: Option<&LiveLoggedModel>, since_ms: i64) -> CheckRecord {
    let Check::Metric {
        metric,
        at_least,
        at_most,
        dataset,
    } = check
    else {
        unreachable!("judge_metric is given metric checks");
    };
    let record = |ok, observed: String| CheckRecord {
        check: check.describe(),
        ok,
        observed,
    };
    let Some(lm) = lm else {
        return record(false, "the version has no logged model to read".into());
    };
    let latest = lm
        .metrics
        .iter()
        .filter(|m| &m.key == metric && m.timestamp >= since_ms)
        .filter(|m| {
            dataset
                .as_ref()
                .is_none_or(|d| m.dataset_name.as_deref() == Some(d.name.as_str()))
        })
        .max_by_key(|m| (m.timestamp, m.step));
    let Some(m) = latest else {
        return record(
            false,
            format!(
                "no {metric} logged on logged model {} since the move",
                lm.model_id
            ),
        );
    };
    let shown = crate::plan::gates::number(m.value);
    let low = at_least.filter(|lo| m.value.is_nan() || m.value < *lo);
    let high = at_most.filter(|hi| m.value.is_nan() || m.value > *hi);
    match (low, high) {
        (Some(lo), _) => record(false, format!("{metric} {shown} < {lo}")),
        (_, Some(hi)) => record(false, format!("{metric} {shown} > {hi}")),
        _ => record(
            true,
            format!("{metric} {shown}, from logged model {}", lm.model_id),
        ),
    }
}

/// The record after a round that observed `round` at `now_ms` (wall
/// clock): passing since the first of an unbroken run of passing rounds,
/// verified once that run lasted `for`, failed once `timeout` passed since
/// the move without that. A final record does not change.
pub fn step(record: &Record, spec: &Verification, round: Vec<CheckRecord>, now_ms: i64) -> Record {
    if record.state.is_final() {
        return record.clone();
    }
    let mut next = record.clone();
    let now = clock::rfc3339_seconds(now_ms);
    next.rounds += 1;
    next.at = now.clone();
    let passing = !round.is_empty() && round.iter().all(|c| c.ok);
    next.passing_since = if passing {
        next.passing_since.or_else(|| Some(now.clone()))
    } else {
        None
    };
    let failing = round.iter().find(|c| !c.ok).cloned();
    next.checks = round;
    let since_ms = clock::parse_rfc3339(&record.since).unwrap_or(now_ms);
    let passed_for = next
        .passing_since
        .as_deref()
        .and_then(clock::parse_rfc3339)
        .map(|p| elapsed(p, now_ms));
    if passed_for.is_some_and(|d| d >= spec.for_) {
        next.state = State::Verified;
        next.finished = Some(now);
        next.reason = None;
    } else if elapsed(since_ms, now_ms) >= spec.timeout {
        next.state = State::Failed;
        next.finished = Some(now);
        next.reason = Some(match failing {
            Some(c) => format!("{}: {}", c.check, c.observed),
            None => format!(
                "the checks did not keep passing for {} within {}",
                humantime::format_duration(spec.for_),
                humantime::format_duration(spec.timeout)
            ),
        });
    }
    next
}

/// When the next round of `record` is due (ms, wall clock): `every` after
/// its last round, at once when it has had none.
pub fn next_round_ms(record: &Record, spec: &Verification) -> i64 {
    if record.rounds == 0 {
        return i64::MIN;
    }
    let last = clock::parse_rfc3339(&record.at).unwrap_or(i64::MIN);
    last.saturating_add(i64::try_from(spec.every.as_millis()).unwrap_or(i64::MAX))
}

fn elapsed(from_ms: i64, to_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(to_ms.saturating_sub(from_ms)).unwrap_or(0))
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;

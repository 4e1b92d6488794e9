use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::manifest::verify::OnFailure;
use crate::plan::gates::verified_in;
use crate::state::{LoggedMetric, Stage};

const T0: i64 = 1_780_000_000_000;

fn spec(every: u64, for_: u64, timeout: u64) -> Verification {
    Verification {
        checks: Vec::new(),
        every: Duration::from_secs(every),
        for_: Duration::from_secs(for_),
        timeout: Duration::from_secs(timeout),
        on_failure: OnFailure::Hold,
    }
}

fn round(ok: bool) -> Vec<CheckRecord> {
    vec![CheckRecord {
        check: "http GET http://s/ping".into(),
        ok,
        observed: if ok {
            "status 200"
        } else {
            "status 500, expected 200"
        }
        .into(),
    }]
}

fn at(secs: i64) -> i64 {
    T0 + secs * 1000
}

#[test]
fn checks_must_keep_passing_for_the_declared_time() {
    let spec = spec(5, 10, 60);
    let r = Record::start(clock::rfc3339_seconds(T0), Some("abc".into()));
    assert_eq!(
        next_round_ms(&r, &spec),
        i64::MIN,
        "the first round is due at once"
    );
    let r = step(&r, &spec, round(true), at(0));
    assert_eq!(r.state, State::Verifying);
    assert_eq!(next_round_ms(&r, &spec), at(5));
    let r = step(&r, &spec, round(true), at(5));
    assert_eq!(r.state, State::Verifying, "passing for 5s < 10s");
    // A failing round resets the run of passing rounds.
    let r = step(&r, &spec, round(false), at(10));
    assert_eq!((r.state, r.passing_since.clone()), (State::Verifying, None));
    let r = step(&r, &spec, round(true), at(15));
    let r = step(&r, &spec, round(true), at(20));
    assert_eq!(r.state, State::Verifying);
    let r = step(&r, &spec, round(true), at(25));
    assert_eq!(r.state, State::Verified);
    assert_eq!(
        r.verified_at(),
        Some(clock::rfc3339_seconds(at(25)).as_str())
    );
    assert_eq!(r.rounds, 6);
    // Final: a later round changes nothing.
    assert_eq!(step(&r, &spec, round(false), at(30)), r);
}

#[test]
fn a_verification_that_never_passes_long_enough_fails_at_its_timeout_saying_why() {
    let spec = spec(5, 0, 20);
    let mut r = Record::start(clock::rfc3339_seconds(T0), None);
    for s in [0, 5, 10, 15] {
        r = step(&r, &spec, round(false), at(s));
        assert_eq!(r.state, State::Verifying, "at {s}s");
    }
    r = step(&r, &spec, round(false), at(20));
    assert_eq!(r.state, State::Failed);
    assert_eq!(
        r.reason.as_deref(),
        Some("http GET http://s/ping: status 500, expected 200")
    );
    // With `for: 0`, one passing round verifies.
    let r = step(
        &Record::start(clock::rfc3339_seconds(T0), None),
        &spec,
        round(true),
        at(1),
    );
    assert_eq!(r.state, State::Verified);
}

fn job() -> Job {
    Job {
        model: "churn model".into(),
        version: 3,
        target: GateTarget::Stage(Stage::Staging),
        spec: spec(5, 0, 20),
        model_id: Some("m-1".into()),
        run_id: None,
    }
}

fn http(status: u16, condition: Option<&str>) -> HttpCheck {
    HttpCheck {
        url: "http://scoring/{model}/{version}/invocations?t={target}".into(),
        method: "POST".into(),
        body: None,
        headers: Vec::new(),
        status,
        condition: condition.map(str::to_string),
    }
}

#[test]
fn an_http_answer_is_judged_by_status_then_condition() {
    let check = http(200, Some("size(body.predictions) == 1"));
    assert_eq!(
        url_for(&check, &job()),
        "http://scoring/churn%20model/3/invocations?t=Staging"
    );
    let headers = BTreeMap::new();
    let answer = |status, body: &'static str| Answer {
        status,
        headers: &headers,
        body: body.as_bytes(),
    };
    let ok = judge_http(&check, &job(), Ok(&answer(200, r#"{"predictions": [1]}"#)));
    assert!(ok.ok, "{ok:?}");
    assert_eq!(ok.observed, "status 200, condition true");
    let two = judge_http(
        &check,
        &job(),
        Ok(&answer(200, r#"{"predictions": [1, 0]}"#)),
    );
    assert_eq!(
        (two.ok, two.observed.as_str()),
        (false, "status 200, condition false")
    );
    let err = judge_http(&check, &job(), Ok(&answer(500, "boom")));
    assert_eq!(
        (err.ok, err.observed.as_str()),
        (false, "status 500, expected 200")
    );
    let down = judge_http(&check, &job(), Err("connection refused"));
    assert_eq!(down.observed, "no answer: connection refused");
}

fn logged(values: &[(f64, i64)]) -> LiveLoggedModel {
    LiveLoggedModel {
        model_id: "m-1".into(),
        metrics: values
            .iter()
            .map(|(value, timestamp)| LoggedMetric {
                key: "online_auc".into(),
                value: *value,
                timestamp: *timestamp,
                dataset_name: Some("traffic".into()),
                ..LoggedMetric::default()
            })
            .collect(),
        ..LiveLoggedModel::default()
    }
}

#[test]
fn a_metric_check_reads_only_what_was_logged_after_the_move() {
    let check = Check::Metric {
        metric: "online_auc".into(),
        at_least: Some(0.8),
        at_most: None,
        dataset: None,
    };
    let before = logged(&[(0.95, at(-10))]);
    let r = judge_metric(&check, Some(&before), T0);
    assert!(!r.ok);
    assert_eq!(
        r.observed,
        "no online_auc logged on logged model m-1 since the move"
    );
    let after = logged(&[(0.95, at(-10)), (0.91, at(3)), (0.7, at(6))]);
    let r = judge_metric(&check, Some(&after), T0);
    assert_eq!(
        (r.ok, r.observed.as_str()),
        (false, "online_auc 0.70 < 0.8")
    );
    let good = logged(&[(0.7, at(3)), (0.91, at(6))]);
    assert!(judge_metric(&check, Some(&good), T0).ok);
    assert!(!judge_metric(&check, None, T0).ok);
}

fn version_with(tag: Option<&str>) -> LiveVersion {
    let mut v = LiveVersion {
        version: 3,
        ..LiveVersion::default()
    };
    if let Some(t) = tag {
        v.tags.insert("modelsync.verified.Staging".into(), t.into());
    }
    v
}

#[test]
fn verified_in_passes_only_for_a_verification_that_passed_long_enough_ago() {
    let staging = GateTarget::Stage(Stage::Staging);
    let day = Duration::from_secs(86_400);
    let mut r = Record::start(clock::rfc3339_seconds(T0), None);
    let verifying = version_with(Some(&r.render()));
    assert!(verified_in(Some(&verifying), &staging, day, at(0)).is_err());
    assert_eq!(
        verified_in(Some(&version_with(None)), &staging, day, at(0)),
        Err("version 3 has no verification in Staging".into())
    );
    r.state = State::Verified;
    r.finished = Some(clock::rfc3339_seconds(at(60)));
    let verified = version_with(Some(&r.render()));
    let e = verified_in(Some(&verified), &staging, day, at(3660)).unwrap_err();
    assert!(e.contains("1h ago < 1day"), "{e}");
    let ok = verified_in(Some(&verified), &staging, day, at(60 + 86_400)).unwrap();
    assert!(ok.starts_with("verified in Staging at "), "{ok}");
    assert!(verified_in(Some(&verified), &staging, Duration::ZERO, at(61)).is_ok());
    r.state = State::Failed;
    assert!(
        verified_in(
            Some(&version_with(Some(&r.render()))),
            &staging,
            Duration::ZERO,
            at(61)
        )
        .is_err()
    );
}

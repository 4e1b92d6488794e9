//! Checks of `spec.verify` (keyed like `spec.gates`: a declared stage or
//! alias) and of the `verifiedIn` gate. Every problem is a diagnostic with
//! file, line and column; a CEL condition is compiled here, so a bad one
//! never reaches a run.

use std::collections::BTreeMap;

use crate::manifest::schema::{CheckSpec, HttpCheckSpec, VerifyMap, VerifySpec};
use crate::manifest::verify::{
    Check, DEFAULT_EVERY, DEFAULT_TIMEOUT, HttpCheck, OnFailure, Verification,
};
use crate::manifest::yaml::Located;
use crate::manifest::{Dataset, GateTarget};

use super::Ctx;
use super::gates::{Declared, duration, target, undeclared};

/// The methods an HTTP check may use.
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "HEAD"];

/// Checks and converts `spec.verify`.
pub fn check_verify(
    ctx: &mut Ctx<'_>,
    verify: &VerifyMap,
    declared: &Declared<'_>,
) -> BTreeMap<GateTarget, Verification> {
    let mut out = BTreeMap::new();
    for (key, spec) in verify.iter() {
        let Some(target) = target(ctx, key, "verify") else {
            continue;
        };
        if out.contains_key(&target) {
            ctx.error(key, format!("verify for {target} is declared twice"));
            continue;
        }
        if let Some(problem) = undeclared(&target, declared)
            && !declared.keys.contains(key.value.as_str())
        {
            ctx.error(key, problem.replacen("gate target", "verify target", 1));
        }
        if let Some(v) = check_one(ctx, spec) {
            out.insert(target, v);
        }
    }
    out
}

fn check_one(ctx: &mut Ctx<'_>, spec: &Located<VerifySpec>) -> Option<Verification> {
    let s = &spec.value;
    if s.checks.is_empty() {
        ctx.error(spec, "verify needs at least one check".to_string());
    }
    let checks: Vec<Option<Check>> = s.checks.iter().map(|c| check_check(ctx, c)).collect();
    let every = duration(ctx, s.every.as_ref(), "every", false).map(|d| d.unwrap_or(DEFAULT_EVERY));
    let for_ = duration(ctx, s.for_.as_ref(), "for", true).map(Option::unwrap_or_default);
    let timeout =
        duration(ctx, s.timeout.as_ref(), "timeout", false).map(|d| d.unwrap_or(DEFAULT_TIMEOUT));
    let on_failure = match s.on_failure.as_ref() {
        None => Some(OnFailure::Hold),
        Some(v) if v.value == "hold" => Some(OnFailure::Hold),
        Some(v) if v.value == "rollback" => Some(OnFailure::Rollback),
        Some(v) => {
            ctx.error(
                v,
                format!("onFailure {:?}: expected hold or rollback", v.value),
            );
            None
        }
    };
    let (every, for_, timeout) = (every?, for_?, timeout?);
    if timeout <= for_ {
        let why = format!(
            "timeout {} must be longer than for {}: the checks could never pass for long enough",
            humantime::format_duration(timeout),
            humantime::format_duration(for_)
        );
        match &s.timeout {
            Some(t) => ctx.error(t, why),
            None => ctx.error(spec, why),
        }
        return None;
    }
    let checks: Option<Vec<Check>> = checks.into_iter().collect();
    Some(Verification {
        checks: checks.filter(|c| !c.is_empty())?,
        every,
        for_,
        timeout,
        on_failure: on_failure?,
    })
}

/// One check: exactly one of `http` or `metric`.
fn check_check(ctx: &mut Ctx<'_>, check: &Located<CheckSpec>) -> Option<Check> {
    let c = &check.value;
    match (&c.http, &c.metric) {
        (Some(http), None) => {
            let extra = [
                c.at_least.is_some(),
                c.at_most.is_some(),
                c.dataset.is_some(),
            ];
            if extra.contains(&true) {
                ctx.error(
                    check,
                    "atLeast, atMost and dataset belong to a metric check".to_string(),
                );
                return None;
            }
            check_http(ctx, http)
        }
        (None, Some(metric)) => check_metric(ctx, metric, c),
        _ => {
            ctx.error(
                check,
                "a check needs exactly one of http or metric".to_string(),
            );
            None
        }
    }
}

fn check_metric(ctx: &mut Ctx<'_>, metric: &Located<String>, c: &CheckSpec) -> Option<Check> {
    let at_least = c.at_least.as_ref().map(|n| n.value.0);
    let at_most = c.at_most.as_ref().map(|n| n.value.0);
    if metric.value.trim().is_empty() {
        ctx.error(metric, "metric name must not be empty".to_string());
        return None;
    }
    if at_least.is_none() && at_most.is_none() {
        ctx.error(
            metric,
            format!(
                "metric check \"{}\" needs atLeast and/or atMost",
                metric.value
            ),
        );
        return None;
    }
    if let (Some(lo), Some(hi)) = (at_least, at_most)
        && lo > hi
    {
        ctx.error(
            metric,
            format!("atLeast {lo} is greater than atMost {hi}: no value can pass"),
        );
        return None;
    }
    let dataset = match &c.dataset {
        Some(d) if d.value.trim().is_empty() => {
            ctx.error(d, "dataset must not be empty".to_string());
            return None;
        }
        d => d.as_ref().map(|d| Dataset {
            name: d.value.clone(),
            digest: None,
        }),
    };
    Some(Check::Metric {
        metric: metric.value.clone(),
        at_least,
        at_most,
        dataset,
    })
}

fn check_http(ctx: &mut Ctx<'_>, http: &Located<HttpCheckSpec>) -> Option<Check> {
    let h = &http.value;
    let mut ok = true;
    let url = match &h.url {
        None => {
            ctx.error(http, "an http check needs url".to_string());
            None
        }
        Some(url) => match url_problem(&url.value) {
            Some(problem) => {
                ctx.error(url, problem);
                None
            }
            None => Some(url.value.clone()),
        },
    };
    let method = match &h.method {
        None => "GET".to_string(),
        Some(m) if METHODS.contains(&m.value.as_str()) => m.value.clone(),
        Some(m) => {
            ctx.error(
                m,
                format!(
                    "method {:?}: expected one of {}",
                    m.value,
                    METHODS.join(", ")
                ),
            );
            ok = false;
            String::new()
        }
    };
    let expect = h.expect.as_ref().map(|e| &e.value);
    let status = match expect.and_then(|e| e.status.as_ref()) {
        None => 200,
        Some(s) => match u16::try_from(s.value)
            .ok()
            .filter(|s| (100..=599).contains(s))
        {
            Some(s) => s,
            None => {
                ctx.error(s, format!("status {} is not an HTTP status", s.value));
                ok = false;
                0
            }
        },
    };
    let condition = expect.and_then(|e| e.condition.as_ref());
    if let Some(c) = condition
        && let Err(why) = crate::condition::check(&c.value)
    {
        ctx.error(c, why);
        ok = false;
    }
    for name in h.headers.keys() {
        if name.trim().is_empty() || name.contains([':', '\n', '\r']) {
            ctx.error(http, format!("header name {name:?} is not valid"));
            ok = false;
        }
    }
    let url = url?;
    ok.then(|| {
        Check::Http(HttpCheck {
            url,
            method,
            body: h.body.as_ref().map(|b| b.value.clone()),
            headers: h.headers.clone().into_iter().collect(),
            status,
            condition: condition.map(|c| c.value.clone()),
        })
    })
}

/// Why `url` cannot be probed: only `http://` and `https://` with a host;
/// placeholders other than `{model}`, `{version}`, `{target}` are refused
/// (nothing else is expanded, no environment variable in particular).
fn url_problem(url: &str) -> Option<String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    let Some(rest) = rest else {
        return Some(format!(
            "url {url:?}: only http:// and https:// URLs can be checked"
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Some(format!("url {url:?} has no host"));
    }
    if url.contains("${") || url.contains('$') && url.contains('{') {
        return Some(format!(
            "url {url:?}: environment variables are not expanded in URLs"
        ));
    }
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name = after.split('}').next().unwrap_or("");
        if !["model", "version", "target"].contains(&name) || !after.contains('}') {
            return Some(format!(
                "url {url:?}: {{{name}}} is not a placeholder (only {{model}}, {{version}}, {{target}})"
            ));
        }
        rest = &after[name.len() + 1..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::url_problem;

    #[test]
    fn only_http_urls_with_known_placeholders_are_checked() {
        assert_eq!(url_problem("http://scoring:5000/invocations"), None);
        assert_eq!(url_problem("HTTPS://h/{model}/{version}?t={target}"), None);
        for bad in [
            "file:///etc/passwd",
            "ftp://h/x",
            "http://",
            "http:///x",
            "http://h/${HOME}",
            "http://h/{secret}",
            "http://h/{model",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
    }
}

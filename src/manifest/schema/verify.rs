//! `spec.verify` of a `RegisteredModel`: the checks a version must keep
//! passing after it moved into a stage or alias (issue 19), keyed like
//! `spec.gates`. Loosely typed here (durations and expressions as
//! strings); `validate/verify.rs` checks them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::super::yaml::{Located, LocatedMap};
use super::{Number, rules};

/// `verify.<target>`: checks, how often, how long, and what a failure does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifySpec {
    /// The checks; every one must pass in a round.
    #[schemars(length(min = 1))]
    pub checks: Vec<Located<CheckSpec>>,
    /// How often the checks run (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::duration)]
    pub every: Option<Located<String>>,
    /// How long the checks must keep passing (default: one passing round).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::duration)]
    pub for_: Option<Located<String>>,
    /// Give up and fail when not verified this long after the move
    /// (default `15m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::duration)]
    pub timeout: Option<Located<String>>,
    /// `hold` (the default) or `rollback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::on_failure)]
    pub on_failure: Option<Located<String>>,
}

/// One check: exactly one of `http` or `metric` (with `atLeast`/`atMost`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::check_exactly_one)]
pub struct CheckSpec {
    /// An HTTP request and what its answer must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Located<HttpCheckSpec>>,
    /// A metric logged against the version after the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub metric: Option<Located<String>>,
    /// Lower bound (inclusive) for `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<Located<Number>>,
    /// Upper bound (inclusive) for `metric`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_most: Option<Located<Number>>,
    /// Only values logged on this dataset count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub dataset: Option<Located<String>>,
}

/// `http: {url, method, body, headers, expect}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(transform = rules::http_check)]
pub struct HttpCheckSpec {
    /// `http://` or `https://`; `{model}`, `{version}` and `{target}` are
    /// substituted. Nothing else is expanded (no environment variables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::check_url)]
    pub url: Option<Located<String>>,
    /// `GET` (the default), `POST`, `PUT` or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::check_method)]
    pub method: Option<Located<String>>,
    /// The request body, sent as `application/json` unless a
    /// `Content-Type` header says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Located<String>>,
    /// Request headers, as written (no environment expansion).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// What the answer must be (default: status 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Located<ExpectSpec>>,
}

/// `expect: {status, condition}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// The HTTP status (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<Located<i64>>,
    /// A CEL expression over `status`, `headers` and `body` (the answer's
    /// JSON) that must be true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = rules::not_empty)]
    pub condition: Option<Located<String>>,
}

/// `spec.verify`: stage or alias -> its verification.
pub type VerifyMap = LocatedMap<Located<VerifySpec>>;

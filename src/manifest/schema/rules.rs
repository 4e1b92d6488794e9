//! What `validate` checks of single values, as JSON Schema keywords, so
//! that the schema rejects what `validate` rejects wherever a schema can.
//!
//! The rules themselves live in [`crate::naming`] (MLflow's) and in
//! `manifest/validate` (modelsync's); these are the same rules written as
//! patterns. `tests/integration/schema.rs` checks both against the same
//! corpus. Patterns avoid `\w` and `\d` (ASCII-only in ECMA-262, the
//! dialect editors use) and inline flags; letters and digits are
//! `\p{Alphabetic}\p{N}`, which is what Rust's `char::is_alphanumeric` is.

use schemars::Schema;
use serde_json::{Value, json};

use crate::manifest::DIGEST_UNCHANGED;
use crate::naming::{
    MAX_ALIAS_LEN, MAX_DESCRIPTION_LEN, MAX_EXPERIMENT_NAME_LEN, MAX_EXPERIMENT_TAG_VALUE_LEN,
    MAX_SOURCE_LEN, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN,
};
use crate::state::Stage;

/// At least one character that is not white space.
const NOT_BLANK: &str = r"\S";
/// Version numbers written as strings (a leading zero is not one).
const NUMBER_STRING: &str = "^[1-9][0-9]*$";
/// Strings that count as bare version numbers in `stages` and `aliases`.
const NUMBER_REF: &str = "^0*[1-9][0-9]*$";

/// A stage name in any case (JSON Schema patterns have no `(?i)`).
fn stage_pattern() -> String {
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
            .collect()
    };
    let names: Vec<String> = Stage::ALL.iter().map(|s| any_case(s.as_str())).collect();
    format!("^({})$", names.join("|"))
}

/// An alias MLflow lets you set: `^[\w-]+$`, at most 255 characters, not
/// `latest` (any case) nor `v<digits>`.
fn alias() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ALIAS_LEN,
        "pattern": r"^[\p{Alphabetic}\p{N}_-]+$",
        "not": {"pattern": "^([Ll][Aa][Tt][Ee][Ss][Tt]|[Vv][0-9]+)$"}
    })
}

/// A tag key: letters, digits, `_ - . / :` and spaces, at most 250
/// characters, and a normalised relative path (no empty, `.` or `..`
/// segment, not starting with `..` or `/`).
fn tag_key() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_KEY_LEN,
        "pattern": r"^[\p{Alphabetic}\p{N}_.: /-]+$",
        "not": {"pattern": r"^/|^\.\.|//|/$|(^|/)\.\.?(/|$)"}
    })
}

/// A version handle: letters, digits, `_ - .`, not all digits.
fn handle() -> Value {
    json!({
        "type": "string",
        "pattern": r"^[\p{Alphabetic}\p{N}_.-]+$",
        "not": {"pattern": "^[0-9]+$"}
    })
}

fn insert(s: &mut Schema, key: &str, value: Value) {
    s.insert(key.to_string(), value);
}

/// `spec.tags` and version tags: keys are tag keys, string values at most
/// 100,000 characters.
pub fn registry_tags(s: &mut Schema) {
    insert(s, "propertyNames", tag_key());
    insert(
        s,
        "additionalProperties",
        json!({"$ref": "#/$defs/TagValue", "maxLength": MAX_TAG_VALUE_LEN}),
    );
}

/// Experiment tags: keys are tag keys, string values at most 5000
/// characters.
pub fn experiment_tags(s: &mut Schema) {
    insert(s, "propertyNames", tag_key());
    insert(
        s,
        "additionalProperties",
        json!({"$ref": "#/$defs/TagValue", "maxLength": MAX_EXPERIMENT_TAG_VALUE_LEN}),
    );
}

/// `spec.versions`: keys are handles.
pub fn handle_keys(s: &mut Schema) {
    insert(s, "propertyNames", handle());
}

/// `spec.stages`: keys are stage names in any case.
pub fn stage_keys(s: &mut Schema) {
    insert(s, "propertyNames", json!({"pattern": stage_pattern()}));
}

/// `spec.aliases`: keys are aliases MLflow lets you set.
pub fn alias_keys(s: &mut Schema) {
    insert(s, "propertyNames", alias());
}

/// `spec.gates`: keys are stage names (any case) or aliases.
pub fn gate_keys(s: &mut Schema) {
    insert(
        s,
        "propertyNames",
        json!({"anyOf": [{"pattern": stage_pattern()}, alias()]}),
    );
}

/// `beats.alias` and `soak.alias`.
pub fn alias_value(s: &mut Schema) {
    for (key, value) in alias().as_object().expect("an object") {
        if key != "type" {
            insert(s, key, value.clone());
        }
    }
}

/// `soak.stage`.
pub fn stage_value(s: &mut Schema) {
    insert(s, "pattern", json!(stage_pattern()));
}

/// `requireTag.key`.
pub fn tag_key_value(s: &mut Schema) {
    for (key, value) in tag_key().as_object().expect("an object") {
        insert(s, key, value.clone());
    }
}

/// Names, runIds, artifact locations: not blank.
pub fn not_blank(s: &mut Schema) {
    insert(s, "pattern", json!(NOT_BLANK));
}

/// Metric names: not empty.
pub fn not_empty(s: &mut Schema) {
    insert(s, "minLength", json!(1));
}

/// Model and version descriptions.
pub fn description(s: &mut Schema) {
    insert(s, "maxLength", json!(MAX_DESCRIPTION_LEN));
}

/// A version source: not blank, at most 500 characters.
pub fn source(s: &mut Schema) {
    not_blank(s);
    insert(s, "maxLength", json!(MAX_SOURCE_LEN));
}

/// `version:` in `spec.versions`: a number from 1, also written as a string.
pub fn version_number(s: &mut Schema) {
    *s = schemars::json_schema!({
        "description": "An existing version, by number (also written as a string, \"3\").",
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": NUMBER_STRING},
            {"type": "null"}
        ]
    });
}

/// A stage or alias target: a handle, or a bare version number (also
/// written as a string).
pub fn version_ref() -> Schema {
    schemars::json_schema!({
        "description": "A handle defined under spec.versions, or a bare version number.",
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "string", "pattern": NUMBER_REF},
            handle()
        ]
    })
}

/// A duration humantime reads (`30m`, `24h`, `1h 30m`, `7days`), not zero.
pub fn duration(s: &mut Schema) {
    const UNITS: &str = "nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|\
                         minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|\
                         weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y";
    insert(
        s,
        "pattern",
        json!(format!(r"^\s*([0-9]+(\.[0-9]+)?\s*({UNITS})\s*)+$")),
    );
    insert(s, "not", json!({"pattern": "^[^1-9]*$"}));
}

/// `metadata` of a model: the name is not blank, has no `/` or `:`, and is
/// neither `.` nor starts with `..`.
pub fn model_metadata(s: &mut Schema) {
    insert(
        s,
        "properties",
        json!({"name": {
            "pattern": NOT_BLANK,
            "not": {"pattern": r"[/:]|^\.\.|^\.$"}
        }}),
    );
}

/// `metadata` of an experiment: the name is not blank, at most 500
/// characters.
pub fn experiment_metadata(s: &mut Schema) {
    insert(
        s,
        "properties",
        json!({"name": {"pattern": NOT_BLANK, "maxLength": MAX_EXPERIMENT_NAME_LEN}}),
    );
}

/// A version: exactly one of `version` and `source` (null counts as
/// absent); `runId` only with `source`.
pub fn version_exactly_one(s: &mut Schema) {
    insert(
        s,
        "oneOf",
        json!([
            {
                "required": ["version"],
                "properties": {"version": {"not": {"type": "null"}}, "runId": {"type": "null"}}
            },
            {"required": ["source"], "properties": {"source": {"type": "string"}}},
            {"required": ["from"], "properties": {"from": {"type": "object"}, "runId": {"type": "null"}}}
        ]),
    );
}

/// A prompt version: exactly one of `template` and `templateFile`.
pub fn template_exactly_one(s: &mut Schema) {
    let one = |k: &str| json!({"required": [k], "properties": {k: {"type": "string"}}});
    insert(s, "oneOf", json!([one("template"), one("templateFile")]));
}

/// `from:`: exactly one of `alias`, `version`, `stage`.
pub fn from_exactly_one(s: &mut Schema) {
    let one = |k: &str| json!({"required": [k]});
    insert(
        s,
        "oneOf",
        json!([one("alias"), one("version"), one("stage")]),
    );
}

/// A gate: exactly one of `metric` (with `atLeast` and/or `atMost`),
/// `beats`, `soak`, `requireTag`, `approvals`, `digest`; bounds only with `metric`.
pub fn gate_exactly_one(s: &mut Schema) {
    let other = |kind: &str| {
        json!({
            "required": [kind],
            "properties": {
                kind: {"type": "object"},
                "atLeast": {"type": "null"},
                "atMost": {"type": "null"}
            }
        })
    };
    insert(
        s,
        "oneOf",
        json!([
            {
                "required": ["metric"],
                "properties": {"metric": {"type": "string"}},
                "anyOf": [
                    {"required": ["atLeast"], "properties": {"atLeast": {"type": "number"}}},
                    {"required": ["atMost"], "properties": {"atMost": {"type": "number"}}}
                ]
            },
            other("beats"),
            other("soak"),
            other("requireTag"),
            other("approvals"),
            {
                "required": ["verifiedIn"],
                "properties": {"atLeast": {"type": "null"}, "atMost": {"type": "null"}}
            },
            {
                "required": ["digest"],
                "properties": {"atLeast": {"type": "null"}, "atMost": {"type": "null"}}
            }
        ]),
    );
}

/// `digest`: only `unchanged`.
pub fn digest_value(s: &mut Schema) {
    insert(s, "enum", json!([DIGEST_UNCHANGED]));
}

/// A soak gate: exactly one of `stage` and `alias`.
pub fn soak_exactly_one(s: &mut Schema) {
    insert(
        s,
        "oneOf",
        json!([
            {"required": ["stage"], "properties": {"stage": {"type": "string"}}},
            {"required": ["alias"], "properties": {"alias": {"type": "string"}}}
        ]),
    );
}

/// `onFailure` of a verification.
pub fn on_failure(s: &mut Schema) {
    insert(s, "enum", json!(["hold", "rollback"]));
}

/// An HTTP check's URL: `http://` or `https://`.
pub fn check_url(s: &mut Schema) {
    insert(s, "pattern", json!("^[Hh][Tt][Tt][Pp][Ss]?://"));
}

/// An HTTP check's method.
pub fn check_method(s: &mut Schema) {
    insert(s, "enum", json!(["GET", "POST", "PUT", "HEAD"]));
}

/// A verification check: `http`, or `metric` with `atLeast` and/or `atMost`.
pub fn check_exactly_one(s: &mut Schema) {
    insert(
        s,
        "oneOf",
        json!([
            {
                "required": ["http"],
                "properties": {"metric": {"type": "null"}, "atLeast": {"type": "null"},
                               "atMost": {"type": "null"}, "dataset": {"type": "null"}}
            },
            {
                "required": ["metric"],
                "properties": {"http": {"type": "null"}},
                "anyOf": [
                    {"required": ["atLeast"], "properties": {"atLeast": {"type": "number"}}},
                    {"required": ["atMost"], "properties": {"atMost": {"type": "number"}}}
                ]
            }
        ]),
    );
}

/// A `verifiedIn` gate: a stage or an alias.
pub fn verified_in(s: &mut Schema) {
    insert(s, "anyOf", json!([{"pattern": stage_pattern()}, alias()]));
}

/// An HTTP check needs its URL (`validate` says so with the position).
pub fn http_check(s: &mut Schema) {
    insert(s, "required", json!(["url"]));
}

/// An access policy's model: a registered model's name (no `/` or `:`,
/// not `.` nor starting with `..`) in which `*` and `?` match.
pub fn model_pattern(s: &mut Schema) {
    not_blank(s);
    insert(s, "not", json!({"pattern": r"[/:]|^\.\.|^\.$"}));
}

/// A user or role name: not blank, no white space or control characters.
pub fn principal_name(s: &mut Schema) {
    insert(s, "pattern", json!(r"^[^\s\p{Cc}]+$"));
}

/// A grant's permission.
pub fn permission(s: &mut Schema) {
    insert(s, "enum", json!(["READ", "USE", "EDIT", "MANAGE", "DENY"]));
}

/// A grant names exactly one of `user` and `role`.
pub fn user_or_role(s: &mut Schema) {
    let one = |k: &str| json!({"required": [k], "properties": {k: {"type": "string"}}});
    insert(s, "oneOf", json!([one("user"), one("role")]));
}

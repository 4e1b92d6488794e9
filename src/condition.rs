//! The condition language of `verify:` HTTP checks: CEL, the Common
//! Expression Language Kubernetes uses (the maintained `cel` crate, not a
//! language of our own).
//!
//! A condition is compiled when the manifests are validated ([`check`]:
//! a bad expression is a diagnostic with file, line and column) and
//! evaluated over each answer of the checked endpoint ([`evaluate`]) with
//! three variables: `status` (the HTTP status, an int), `headers` (names
//! in lower case -> value) and `body` (the answer parsed as JSON; its text
//! when it is not JSON). It must give a boolean. CEL has no I/O, no loops
//! beyond comprehensions over the data, and always terminates; the body
//! it sees is size-capped by the caller. Pure: no I/O, no clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// An answer a condition is evaluated over.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    /// Header names in lower case -> value (the last one of a repeated name).
    pub headers: &'a BTreeMap<String, String>,
    /// The body as received (capped by the caller).
    pub body: &'a [u8],
}

/// Why `source` is not a condition, or `Ok` when it compiles.
pub fn check(source: &str) -> Result<(), String> {
    if source.trim().is_empty() {
        return Err("the condition is empty".into());
    }
    compile(source).map(drop)
}

/// Evaluates `source` over `answer`: `Ok(true)` or `Ok(false)`, or why it
/// could not give a boolean (an error of the expression over this answer,
/// e.g. a missing field, or a value that is not a boolean).
pub fn evaluate(source: &str, answer: &Answer<'_>) -> Result<bool, String> {
    let program = compile(source)?;
    let mut ctx = cel::Context::default();
    ctx.add_variable_from_value("status", cel::Value::Int(i64::from(answer.status)));
    let headers: HashMap<String, cel::Value> = answer
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), cel::Value::from(v.clone())))
        .collect();
    ctx.add_variable_from_value("headers", headers);
    ctx.add_variable_from_value("body", body_value(answer.body));
    match program.execute(&ctx) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!(
            "the condition gave {}, not a boolean",
            kind(&other)
        )),
        Err(e) => Err(format!("the condition could not be evaluated: {e}")),
    }
}

fn compile(source: &str) -> Result<cel::Program, String> {
    // The parser is generated code; a panic on odd input is an invalid
    // condition, not a crash of the daemon.
    std::panic::catch_unwind(|| cel::Program::compile(source))
        .map_err(|_| "the condition cannot be parsed".to_string())?
        .map_err(|e| format!("invalid CEL condition: {}", one_line(&e.to_string())))
}

/// The body as CEL sees it: its JSON, else its text.
fn body_value(body: &[u8]) -> cel::Value {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => from_json(json),
        Err(_) => cel::Value::from(String::from_utf8_lossy(body).into_owned()),
    }
}

/// JSON as CEL values: integers as `int` when they fit (so `== 1` holds
/// for a JSON `1`), other numbers as `double`.
fn from_json(v: serde_json::Value) -> cel::Value {
    use serde_json::Value as J;
    match v {
        J::Null => cel::Value::Null,
        J::Bool(b) => cel::Value::Bool(b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            _ => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => cel::Value::String(Arc::new(s)),
        J::Array(items) => cel::Value::List(Arc::new(items.into_iter().map(from_json).collect())),
        J::Object(map) => {
            let map: HashMap<String, cel::Value> =
                map.into_iter().map(|(k, v)| (k, from_json(v))).collect();
            cel::Value::from(map)
        }
    }
}

fn kind(v: &cel::Value) -> &'static str {
    match v {
        cel::Value::List(_) => "a list",
        cel::Value::Map(_) => "a map",
        cel::Value::Int(_) | cel::Value::UInt(_) => "an int",
        cel::Value::Float(_) => "a double",
        cel::Value::String(_) => "a string",
        cel::Value::Bytes(_) => "bytes",
        cel::Value::Null => "null",
        _ => "a value",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str, status: u16, body: &str) -> Result<bool, String> {
        let headers = BTreeMap::from([("content-type".to_string(), "application/json".into())]);
        evaluate(
            source,
            &Answer {
                status,
                headers: &headers,
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn conditions_see_the_status_the_headers_and_the_json_body() {
        let body = r#"{"predictions": [1, 0], "score": 0.93}"#;
        assert_eq!(eval("size(body.predictions) == 2", 200, body), Ok(true));
        assert_eq!(eval("size(body.predictions) == 1", 200, body), Ok(false));
        assert_eq!(eval("body.predictions[0] == 1", 200, body), Ok(true));
        assert_eq!(
            eval("body.score >= 0.9 && status == 200", 200, body),
            Ok(true)
        );
        assert_eq!(
            eval("body.predictions.all(p, p == 0 || p == 1)", 200, body),
            Ok(true)
        );
        assert_eq!(
            eval(
                "headers['content-type'].startsWith('application/json')",
                200,
                body
            ),
            Ok(true)
        );
        assert_eq!(eval("status == 500", 500, "oops"), Ok(true));
        assert_eq!(eval("body == 'oops'", 500, "oops"), Ok(true), "text body");
    }

    #[test]
    fn a_condition_that_gives_no_boolean_says_why() {
        let e = eval("body.missing == 1", 200, "{}").unwrap_err();
        assert!(e.starts_with("the condition could not be evaluated"), "{e}");
        let e = eval("size(body)", 200, "[1]").unwrap_err();
        assert_eq!(e, "the condition gave an int, not a boolean");
    }

    #[test]
    fn bad_conditions_are_found_before_anything_runs() {
        assert_eq!(check("size(body.predictions) == 1"), Ok(()));
        let e = check("size(body.predictions == ").unwrap_err();
        assert!(e.starts_with("invalid CEL condition"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(check("  "), Err("the condition is empty".into()));
    }
}

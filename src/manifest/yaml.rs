//! The only code that knows YAML.
//!
//! Parsing goes through serde-saphyr with hard limits (file size, nesting
//! depth, node count, alias expansion), so a hostile file fails fast with a
//! clear message instead of exhausting memory or the stack. Every error
//! carries a 1-based line and column. [`Located`] and [`LocatedMap`] let the
//! document types keep the position of individual values, so that semantic
//! errors found later (an unknown stage, a missing handle) can point at the
//! exact key or value.
//!
//! Emitting (for `export`) is [`to_yaml`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_saphyr::Spanned;

/// Files larger than this are rejected before parsing.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Most YAML nodes (scalars, mappings, sequences) accepted in one file,
/// counting the ones produced by expanding aliases.
pub const MAX_NODES: usize = 100_000;

/// A value together with where it was written (1-based; 0 when unknown,
/// e.g. for values built in code rather than parsed).
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
    pub column: usize,
}

impl<T> Located<T> {
    /// A value without a position (for documents built in code).
    pub fn new(value: T) -> Self {
        Located {
            value,
            line: 0,
            column: 0,
        }
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    /// Positions do not take part in equality.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(d)?;
        Ok(Located {
            line: spanned.referenced.line() as usize,
            column: spanned.referenced.column() as usize,
            value: spanned.value,
        })
    }
}

impl<T: Serialize> Serialize for Located<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: JsonSchema> JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A mapping with string keys, in document order, remembering where each
/// key was written. Duplicate keys are rejected by the parser.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedMap<V>(pub Vec<(Located<String>, V)>);

impl<V> Default for LocatedMap<V> {
    fn default() -> Self {
        LocatedMap(Vec::new())
    }
}

impl<V> LocatedMap<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &(Located<String>, V)> {
        self.0.iter()
    }
    /// Appends an entry without a position (for documents built in code).
    pub fn push(&mut self, key: impl Into<String>, value: V) {
        self.0.push((Located::new(key.into()), value));
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for LocatedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = LocatedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Located<String>>()? {
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(LocatedMap(entries))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<V: Serialize> Serialize for LocatedMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&k.value, v)?;
        }
        map.end()
    }
}

impl<V: JsonSchema> JsonSchema for LocatedMap<V> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let values = generator.subschema_for::<V>();
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": values,
        })
    }
}

/// A YAML problem at a position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    fn at_start(message: String) -> Self {
        YamlError {
            line: 1,
            column: 1,
            message,
        }
    }
}

/// Parses every document of a YAML stream into `T`.
///
/// Returns one entry per non-empty document. A document that does not match
/// `T` yields an error and parsing continues with the next document; a
/// syntax error or an exceeded limit ends the stream (the parser cannot
/// recover), so it is the last entry. Oversized files and invalid UTF-8 are
/// rejected before parsing.
pub fn parse_documents<T: DeserializeOwned>(contents: &[u8]) -> Vec<Result<T, YamlError>> {
    if contents.len() > MAX_FILE_BYTES {
        return vec![Err(YamlError::at_start(format!(
            "file is too large: {} bytes, at most {} (4 MiB) allowed",
            contents.len(),
            MAX_FILE_BYTES
        )))];
    }
    let text = match std::str::from_utf8(contents) {
        Ok(text) => text,
        Err(e) => {
            let (line, column) = position_of(&contents[..e.valid_up_to()]);
            return vec![Err(YamlError {
                line,
                column,
                message: "file is not valid UTF-8".to_string(),
            })];
        }
    };
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: Some(MAX_FILE_BYTES),
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_nodes: MAX_NODES,
            max_events: 4 * MAX_NODES,
            max_documents: 1_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_NODES,
            max_replay_stack_depth: MAX_DEPTH,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
    };
    // A file that parses is parsed once, from the string (the fast path).
    // Only when it fails is it read again document by document (each
    // document's own error, parsing going on after a type error), and then
    // for well-formedness and limits alone, so that a syntax error is
    // reported as such (not as a type error at an earlier node).
    if let Ok(docs) = serde_saphyr::from_multiple_with_options::<T>(text, options.clone()) {
        return docs.into_iter().map(Ok).collect();
    }
    let mut reader = contents;
    let typed: Vec<Result<T, serde_saphyr::Error>> =
        serde_saphyr::read_with_options::<_, T>(&mut reader, options.clone()).collect();
    if typed.iter().any(Result::is_err) {
        let mut reader = contents;
        let syntax: Vec<YamlError> =
            serde_saphyr::read_with_options::<_, IgnoredAny>(&mut reader, options)
                .filter_map(|r| r.err())
                .map(|e| convert_error(e, true))
                .collect();
        if !syntax.is_empty() {
            return syntax.into_iter().map(Err).collect();
        }
    }
    typed
        .into_iter()
        .map(|r| r.map_err(|e| convert_error(e, false)))
        .collect()
}

/// 1-based line and column just after `prefix`.
fn position_of(prefix: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn convert_error(err: serde_saphyr::Error, syntax: bool) -> YamlError {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let err = unwrap_error(err);
    let (line, column) = err
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .filter(|(l, _)| *l > 0)
        .unwrap_or((1, 1));
    let message = match &err {
        E::DuplicateMappingKey { key, .. } => match key {
            Some(k) => format!("duplicate key \"{k}\": each key may appear only once"),
            None => "duplicate key: each key may appear only once".to_string(),
        },
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            if expected.is_empty() {
                format!("unknown field \"{field}\": no fields are allowed here")
            } else {
                format!(
                    "unknown field \"{field}\": expected one of {}",
                    expected.join(", ")
                )
            }
        }
        E::SerdeMissingField { field, .. } => format!("missing required field \"{field}\""),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => format!("wrong type: expected {expected}, found {unexpected}"),
        E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => format!("invalid value: expected {expected}, found {unexpected}"),
        E::Unexpected { expected, .. } => format!("wrong type: expected {}", describe(expected)),
        E::NullIntoString { .. } => "wrong type: expected a string, found null".to_string(),
        E::Budget { breach, .. } => match breach {
            B::Depth { .. } => {
                format!("nesting too deep: at most {MAX_DEPTH} levels of mappings and lists")
            }
            B::Nodes { .. } | B::Events { .. } => format!(
                "document too large: more than {MAX_NODES} YAML nodes (after expanding aliases)"
            ),
            B::Aliases { .. } | B::Anchors { .. } => {
                "too many anchors or aliases in this file".to_string()
            }
            B::Documents { .. } => "too many documents in this file".to_string(),
            other => format!("file too complex: limit exceeded ({other:?})"),
        },
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => format!(
            "alias expansion too large: aliases would expand to more than {MAX_NODES} nodes"
        ),
        E::InvalidUtf8Input => "file is not valid UTF-8".to_string(),
        E::NonFiniteFloat { value, .. } => {
            format!("wrong type: expected a finite number, found {value}")
        }
        other => {
            let text = strip_location(&other.to_string());
            if text == "recursion limit exceeded" {
                format!("nesting too deep: at most {MAX_DEPTH} levels of mappings and lists")
            } else if syntax {
                format!("YAML syntax error: {text}")
            } else {
                text
            }
        }
    };
    YamlError {
        line,
        column,
        message,
    }
}

/// Errors that wrap another error (snippets, alias context) are unwrapped
/// to the original, which carries the precise variant.
fn unwrap_error(err: serde_saphyr::Error) -> serde_saphyr::Error {
    match err {
        serde_saphyr::Error::WithSnippet { error, .. } => unwrap_error(*error),
        serde_saphyr::Error::AliasError { error, .. } => unwrap_error(*error),
        other => other,
    }
}

/// serde-saphyr appends ` at line L, column C` (and alias context) to its
/// messages; diagnostics carry the position separately.
fn strip_location(message: &str) -> String {
    let base = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    base.trim().to_string()
}

/// serde-saphyr's names for node kinds, in words users know.
fn describe(expected: &str) -> &str {
    match expected {
        "mapping start" => "a mapping",
        "sequence start" => "a list",
        "string scalar" => "a string",
        other => other,
    }
}

/// Serializes `value` as one YAML document (block style, ending in a newline).
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value).expect("manifest documents always serialize to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        a: Option<Located<String>>,
        #[serde(default)]
        m: LocatedMap<serde::de::IgnoredAny>,
    }

    fn errors(input: &str) -> Vec<String> {
        parse_documents::<Doc>(input.as_bytes())
            .into_iter()
            .filter_map(|r| r.err())
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect()
    }

    #[test]
    fn keeps_positions() {
        let docs = parse_documents::<Doc>(b"a: x\nm:\n  k: 1\n---\na: y\n");
        let first = docs[0].as_ref().expect("first parses");
        let a = first.a.as_ref().expect("a set");
        assert_eq!((a.value.as_str(), a.line, a.column), ("x", 1, 4));
        let (k, _) = &first.m.0[0];
        assert_eq!((k.value.as_str(), k.line, k.column), ("k", 3, 3));
        assert!(docs[1].is_ok());
    }

    #[test]
    fn duplicate_keys_and_tabs() {
        insta::assert_debug_snapshot!(errors("a: x\na: y\n"), @r#"
        [
            "2:1: duplicate key \"a\": each key may appear only once",
        ]
        "#);
        insta::assert_debug_snapshot!(errors("m:\n\tk: 1\n"), @r#"
        [
            "2:2: YAML syntax error: tabs disallowed within this context (block indentation)",
        ]
        "#);
    }

    #[test]
    fn continues_after_a_bad_document() {
        insta::assert_debug_snapshot!(errors("b: 1\n---\na: ok\n---\na: [1]\n"), @r#"
        [
            "1:1: unknown field \"b\": expected one of a, m",
            "5:4: wrong type: expected a string",
        ]
        "#);
    }
}

//! `approvals: {required, from}` in `spec.gates`: signed approvals by
//! principals of the approvers file `modelsync.toml` names.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::super::yaml::Located;

/// `approvals: {required: N, from: [alice, bob] | any}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSpec {
    /// How many distinct principals must approve (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub required: Option<Located<i64>>,
    /// The principals whose approvals count, or `any` principal the
    /// approvers file lists.
    pub from: Located<ApproverList>,
}

/// `from:` of an approvals gate: a list of principals, or `any`.
#[derive(Debug, Clone, PartialEq)]
pub enum ApproverList {
    Any,
    Listed(Vec<String>),
}

impl<'de> Deserialize<'de> for ApproverList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ApproverList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of principals, or any")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ApproverList, E> {
                match v {
                    "any" => Ok(ApproverList::Any),
                    other => Err(E::custom(format!(
                        "from: {other:?}: write a list of principals ([alice, bob]) or any"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ApproverList, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(ApproverList::Listed(names))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ApproverList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ApproverList::Any => s.serialize_str("any"),
            ApproverList::Listed(names) => names.serialize(s),
        }
    }
}

impl JsonSchema for ApproverList {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ApproverList".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "Principals of the approvers file whose approvals count, or any of them.",
            "oneOf": [
                {"const": "any"},
                {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": true,
                    "items": {"type": "string", "pattern": "^[^\\s,\"]+$"}
                }
            ]
        })
    }
}

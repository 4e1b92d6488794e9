//! The manifest documents as serde/schemars types (the JSON Schema source).
//! STUB: to be implemented.

/// The JSON Schema of a manifest document, pretty-printed, ending in a newline.
pub fn json_schema() -> String {
    todo!()
}

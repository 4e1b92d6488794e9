//! MLflow's input rules for registry objects, as the embedded registry
//! enforces them (`docs/mlflow-rest.md`, "Input rules"). Pure checks; every
//! failure is a [`RegistryError::Invalid`] whose message names the
//! offending value.

use crate::registry::{RegistryError, Result};

/// Longest alias MLflow accepts.
pub const MAX_ALIAS_LEN: usize = 255;
/// Longest registry tag key.
pub const MAX_TAG_KEY_LEN: usize = 250;
/// Longest registry tag value (SQL store).
pub const MAX_TAG_VALUE_LEN: usize = 100_000;
/// Longest experiment tag value.
pub const MAX_EXPERIMENT_TAG_VALUE_LEN: usize = 5000;
/// Longest model or version description (SQL column).
pub const MAX_DESCRIPTION_LEN: usize = 5000;
/// Longest version source (SQL column).
pub const MAX_SOURCE_LEN: usize = 500;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LEN: usize = 500;

fn invalid(msg: String) -> RegistryError {
    RegistryError::Invalid(msg)
}

/// Registered-model names: non-empty, no `/` or `:`, not `.` or `..`.
pub fn model_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("registered model name must not be empty".into()));
    }
    if name.contains('/') || name.contains(':') {
        return Err(invalid(format!(
            "invalid model name {name:?}: it must not contain '/' or ':'"
        )));
    }
    if name == "." || name == ".." {
        return Err(invalid(format!("invalid model name {name:?}")));
    }
    Ok(())
}

/// The format part of MLflow's alias rules (`^[\w-]+$`, at most 255
/// characters); delete checks only this.
pub fn alias_format(alias: &str) -> Result<()> {
    let len = alias.chars().count();
    if len == 0 || len > MAX_ALIAS_LEN {
        return Err(invalid(format!(
            "invalid alias {alias:?}: it must be 1 to {MAX_ALIAS_LEN} characters long"
        )));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(format!(
            "invalid alias {alias:?}: only letters, digits, '_' and '-' are allowed"
        )));
    }
    Ok(())
}

/// All of MLflow's alias rules for setting one: the format, and neither
/// `latest` (any case) nor `v<digits>`.
pub fn alias_for_set(alias: &str) -> Result<()> {
    alias_format(alias)?;
    if alias.eq_ignore_ascii_case("latest") {
        return Err(invalid(format!("alias {alias:?} is reserved")));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V')) && {
        let rest = chars.as_str();
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
    } {
        return Err(invalid(format!(
            "alias {alias:?} is reserved: v<digits> names a version"
        )));
    }
    Ok(())
}

/// Tag keys: at most 250 characters of letters, digits, `_ - . / :` or
/// space, and unchanged by path normalisation (no leading `/`, no empty,
/// `.` or `..` segments).
pub fn tag_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(invalid("tag key must not be empty".into()));
    }
    if key.chars().count() > MAX_TAG_KEY_LEN {
        return Err(invalid(format!(
            "tag key {key:?} is longer than {MAX_TAG_KEY_LEN} characters"
        )));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | ' ');
    if !key.chars().all(allowed) {
        return Err(invalid(format!(
            "invalid tag key {key:?}: only letters, digits, '_', '-', '.', '/', ':' and spaces are allowed"
        )));
    }
    let bad_segment = key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..");
    if key.starts_with('/') || key.starts_with("..") || bad_segment {
        return Err(invalid(format!(
            "invalid tag key {key:?}: it must not be an absolute or non-normalised path"
        )));
    }
    Ok(())
}

/// A registry tag (model or version).
pub fn tag(key: &str, value: &str) -> Result<()> {
    tag_key(key)?;
    max_len("tag value", value, MAX_TAG_VALUE_LEN)
}

/// An experiment tag.
pub fn experiment_tag(key: &str, value: &str) -> Result<()> {
    tag_key(key)?;
    max_len("experiment tag value", value, MAX_EXPERIMENT_TAG_VALUE_LEN)
}

/// A model or version description.
pub fn description(text: &str) -> Result<()> {
    max_len("description", text, MAX_DESCRIPTION_LEN)
}

/// A version source: non-empty, at most 500 characters.
pub fn source(source: &str) -> Result<()> {
    if source.is_empty() {
        return Err(invalid("model version source must not be empty".into()));
    }
    max_len("source", source, MAX_SOURCE_LEN)
}

/// An experiment name: non-empty, at most 500 characters.
pub fn experiment_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid("experiment name must not be empty".into()));
    }
    max_len("experiment name", name, MAX_EXPERIMENT_NAME_LEN)
}

fn max_len(what: &str, value: &str, max: usize) -> Result<()> {
    let len = value.chars().count();
    if len > max {
        return Err(invalid(format!(
            "{what} is {len} characters long, more than the limit of {max}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(r: Result<()>) -> bool {
        r.is_ok()
    }

    #[test]
    fn model_names() {
        assert!(ok(model_name("fraud-detector")));
        assert!(ok(model_name("a.b c")));
        for bad in ["", "a/b", "a:b", ".", ".."] {
            assert!(
                matches!(model_name(bad), Err(RegistryError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn alias_rules() {
        for good in [
            "champion",
            "chal-lenger_2",
            "v1a",
            "va",
            "latest2",
            "été",
            "V",
            "v",
        ] {
            assert!(ok(alias_for_set(good)), "{good:?}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "latest",
            "LATEST",
            "Latest",
            "v1",
            "V42",
            "a b",
            "a.b",
            "a/b",
            long.as_str(),
        ] {
            assert!(
                matches!(alias_for_set(bad), Err(RegistryError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(ok(alias_for_set(&"a".repeat(255))));
        // Delete accepts reserved names (they can never exist) but not bad formats.
        assert!(ok(alias_format("latest")));
        assert!(alias_format("a b").is_err());
    }

    #[test]
    fn tag_keys() {
        for good in [
            "team",
            "modelsync.source",
            "a/b",
            "a:b",
            "with space",
            "x-y_z",
            "a..b",
        ] {
            assert!(ok(tag_key(good)), "{good:?}");
        }
        let long = "k".repeat(251);
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "a/./b",
            "a/../b",
            "..",
            "..x",
            ".",
            "a$b",
            "é\n",
            long.as_str(),
        ] {
            assert!(
                matches!(tag_key(bad), Err(RegistryError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(ok(tag_key(&"k".repeat(250))));
    }

    #[test]
    fn lengths() {
        assert!(ok(description(&"d".repeat(5000))));
        assert!(description(&"d".repeat(5001)).is_err());
        assert!(ok(source(&"s".repeat(500))));
        assert!(source(&"s".repeat(501)).is_err());
        assert!(source("").is_err());
        assert!(ok(tag("k", &"v".repeat(MAX_TAG_VALUE_LEN))));
        assert!(tag("k", &"v".repeat(MAX_TAG_VALUE_LEN + 1)).is_err());
        assert!(experiment_tag("k", &"v".repeat(5001)).is_err());
        assert!(experiment_name("").is_err());
        assert!(experiment_name(&"e".repeat(501)).is_err());
    }
}

//! MLflow's input rules for registry objects, as the embedded registry
//! enforces them: the checks of [`crate::naming`] (shared with manifest
//! validation; `docs/mlflow-rest.md`, "Input rules"), each failure a
//! [`RegistryError::Invalid`] whose message names the offending value.

use crate::naming;
use crate::registry::{RegistryError, Result};

fn check(problem: Option<String>) -> Result<()> {
    problem.map_or(Ok(()), |msg| Err(RegistryError::Invalid(msg)))
}

/// Registered-model names: not blank, no `/` or `:`, path-safe.
pub fn model_name(name: &str) -> Result<()> {
    check(naming::model_name_problem(name))
}

/// The format part of MLflow's alias rules; delete checks only this.
pub fn alias_format(alias: &str) -> Result<()> {
    check(naming::alias_format_problem(alias))
}

/// All of MLflow's alias rules for setting one: the format, and neither
/// `latest` (any case) nor `v<digits>`.
pub fn alias_for_set(alias: &str) -> Result<()> {
    check(naming::alias_problem(alias))
}

/// Tag keys (see [`naming::tag_key_problem`]).
pub fn tag_key(key: &str) -> Result<()> {
    check(naming::tag_key_problem(key))
}

/// A registry tag (model or version).
pub fn tag(key: &str, value: &str) -> Result<()> {
    tag_key(key)?;
    check(naming::tag_value_problem(value))
}

/// An experiment tag.
pub fn experiment_tag(key: &str, value: &str) -> Result<()> {
    tag_key(key)?;
    check(naming::experiment_tag_value_problem(value))
}

/// A model or version description.
pub fn description(text: &str) -> Result<()> {
    check(naming::description_problem(text))
}

/// A version source: non-empty, at most 500 characters.
pub fn source(source: &str) -> Result<()> {
    check(naming::source_problem(source))
}

/// An experiment name: non-empty, at most 500 characters.
pub fn experiment_name(name: &str) -> Result<()> {
    check(naming::experiment_name_problem(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::MAX_TAG_VALUE_LEN;

    fn ok(r: Result<()>) -> bool {
        r.is_ok()
    }

    #[test]
    fn model_names() {
        assert!(ok(model_name("fraud-detector")));
        assert!(ok(model_name("a.b c")));
        for bad in ["", " ", "a/b", "a:b", ".", "..", "..x"] {
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

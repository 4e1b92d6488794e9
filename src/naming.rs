//! MLflow's naming rules and length limits, once.
//!
//! `manifest/` validates manifests with these rules and the embedded
//! registry enforces them on every write, so `validate` passes exactly what
//! the embedded `apply` accepts. Each check returns why a value is invalid
//! (a message naming the value), or `None` when it is valid. Pure; imports
//! nothing from the crate, so every layer may use it.
//!
//! The rules follow `mlflow/utils/validation.py` (MLflow 3.x):
//! - tag keys (`_validate_tag_name`): letters, digits, `_ - . / :` and
//!   spaces, at most 250 characters, and unchanged by `posixpath.normpath`
//!   (`path_not_unique`: not `.`, not starting with `..` or `/`);
//! - model names (`_validate_model_name`): not blank, no `/` or `:`, and
//!   path-safe as above (so not `.`, `..` or `..x`);
//! - aliases (`_validate_model_alias_name` and `..._reserved`): letters,
//!   digits, `_` and `-`, 1 to 255 characters, and neither `latest` (any
//!   case) nor `v<digits>`.
//!
//! Python's `$` also matches before a final newline, so MLflow accepts a
//! tag key or alias ending in `\n`; these rules do not (such a name is
//! always a mistake in a manifest).

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

/// Why `name` is not a valid registered-model name, or `None`.
pub fn model_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("model name must not be empty".to_string());
    }
    if name.contains('/') || name.contains(':') {
        return Some(format!(
            "invalid model name \"{name}\": \"/\" and \":\" are not allowed (MLflow rejects them)"
        ));
    }
    path_problem(name).map(|why| format!("invalid model name \"{name}\": {why}"))
}

/// Why `alias` does not have the form of an MLflow alias, or `None`. This
/// is all MLflow checks when an alias is deleted.
pub fn alias_format_problem(alias: &str) -> Option<String> {
    if alias.is_empty() {
        return Some("alias must not be empty".to_string());
    }
    if alias.chars().count() > MAX_ALIAS_LEN {
        return Some(format!(
            "alias \"{}...\" is too long: at most {MAX_ALIAS_LEN} characters",
            prefix(alias)
        ));
    }
    if !alias
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Some(format!(
            "invalid alias \"{alias}\": only letters, digits, \"_\" and \"-\" are allowed"
        ));
    }
    None
}

/// Why `alias` cannot be set, or `None`: its form, and the names MLflow
/// reserves (`latest` in any case, `v<digits>`).
pub fn alias_problem(alias: &str) -> Option<String> {
    if let Some(problem) = alias_format_problem(alias) {
        return Some(problem);
    }
    if alias.eq_ignore_ascii_case("latest") {
        return Some(format!(
            "invalid alias \"{alias}\": \"latest\" is reserved by MLflow"
        ));
    }
    if is_version_alias(alias) {
        return Some(format!(
            "invalid alias \"{alias}\": aliases of the form v<number> are reserved by MLflow"
        ));
    }
    None
}

/// `^[vV]\d+$`: the alias form MLflow reserves for version numbers.
pub fn is_version_alias(alias: &str) -> bool {
    let mut chars = alias.chars();
    matches!(chars.next(), Some('v' | 'V')) && {
        let rest = chars.as_str();
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
    }
}

/// Why `key` is not a valid MLflow tag key (registry or experiment), or
/// `None`.
pub fn tag_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("tag key must not be empty".to_string());
    }
    if key.chars().count() > MAX_TAG_KEY_LEN {
        return Some(format!(
            "tag key \"{}...\" is too long: at most {MAX_TAG_KEY_LEN} characters",
            prefix(key)
        ));
    }
    if !key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | ' '))
    {
        return Some(format!(
            "invalid tag key \"{key}\": only letters, digits, spaces and \"_ - . / :\" are allowed"
        ));
    }
    path_problem(key).map(|why| format!("invalid tag key \"{key}\": {why}"))
}

/// Why a registry (model or version) tag value is too long, or `None`.
pub fn tag_value_problem(value: &str) -> Option<String> {
    length_problem("tag value", value, MAX_TAG_VALUE_LEN)
}

/// Why an experiment tag value is too long, or `None`.
pub fn experiment_tag_value_problem(value: &str) -> Option<String> {
    length_problem("experiment tag value", value, MAX_EXPERIMENT_TAG_VALUE_LEN)
}

/// Why a model or version description is too long, or `None`.
pub fn description_problem(text: &str) -> Option<String> {
    length_problem("description", text, MAX_DESCRIPTION_LEN)
}

/// Why a version source is not acceptable (empty or too long), or `None`.
pub fn source_problem(source: &str) -> Option<String> {
    if source.trim().is_empty() {
        return Some("source must not be empty".to_string());
    }
    length_problem("source", source, MAX_SOURCE_LEN)
}

/// Why an experiment name is not acceptable (blank or too long), or `None`.
pub fn experiment_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("experiment name must not be empty".to_string());
    }
    length_problem("experiment name", name, MAX_EXPERIMENT_NAME_LEN)
}

/// Why a name only a deleted experiment holds cannot be used, and what to
/// do: MLflow keeps a deleted experiment's name (creating it again fails)
/// until it is restored or purged. `id` is the deleted experiment's id.
pub fn deleted_experiment_problem(name: &str, id: &str) -> String {
    format!(
        "experiment {name:?} is deleted (id {id}); MLflow keeps its name until it is restored \
         (mlflow experiments restore --experiment-id {id}) or purged (mlflow gc)"
    )
}

fn length_problem(what: &str, value: &str, max: usize) -> Option<String> {
    let len = value.chars().count();
    (len > max).then(|| format!("{what} is {len} characters long, more than the limit of {max}"))
}

/// The first characters of a long value, for messages.
fn prefix(value: &str) -> String {
    value.chars().take(20).collect()
}

/// MLflow's `path_not_unique`: names may be used as file paths, so a name
/// must be its own normal form, must not be `.`, and must not lead out of
/// its folder (`..`) or start at the root (`/`).
fn path_problem(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return Some("it must not start with \"/\"".to_string());
    }
    let norm = normpath(name);
    if norm != name {
        return Some(format!(
            "MLflow reads names as paths, and this one would resolve to \"{norm}\""
        ));
    }
    if norm == "." {
        return Some("\".\" is not allowed".to_string());
    }
    if norm.starts_with("..") {
        return Some("it must not start with \"..\"".to_string());
    }
    None
}

/// Python's `posixpath.normpath`: drops empty and `.` segments, folds
/// `x/..`, keeps leading `..` of relative paths; `""` becomes `"."`.
fn normpath(path: &str) -> String {
    let leading = if path.starts_with("//") && !path.starts_with("///") {
        "//"
    } else if path.starts_with('/') {
        "/"
    } else {
        ""
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if leading.is_empty() && parts.last().is_none_or(|p| *p == "..") => {
                parts.push(part)
            }
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = format!("{leading}{}", parts.join("/"));
    if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normpath_matches_python() {
        // Pairs checked with `python -c 'import posixpath; print(posixpath.normpath(p))'`.
        for (path, norm) in [
            ("", "."),
            ("a", "a"),
            ("a//b", "a/b"),
            ("a/", "a"),
            ("./a", "a"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("a/../../b", "../b"),
            ("a..b", "a..b"),
            ("/a/../..", "/"),
            ("//a", "//a"),
            ("///a", "/a"),
        ] {
            assert_eq!(normpath(path), norm, "{path:?}");
        }
    }

    /// The cases `validate` and the embedded registry used to disagree on,
    /// and the rest of MLflow's `_validate_tag_name` as run on MLflow 3.
    #[test]
    fn tag_keys_as_mlflow() {
        for good in [
            "team",
            "a.b/c:d e-f_g",
            "a..b",
            "x..",
            ".a",
            "a.",
            "  ",
            "été",
        ] {
            assert_eq!(tag_key_problem(good), None, "{good:?}");
        }
        let long = "k".repeat(251);
        for bad in [
            "", "a//b", "/abs", "a/", "./a", "a/.", "a/./b", "a/../b", ".", "..", "...", "..x",
            "../etc", "a$b", "a=b", "é\n", &long,
        ] {
            assert!(tag_key_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(tag_key_problem(&"k".repeat(250)), None);
    }

    #[test]
    fn model_names_as_mlflow() {
        for good in ["fraud-detector", "a.b c", "a..b", ".a", "x.."] {
            assert_eq!(model_name_problem(good), None, "{good:?}");
        }
        for bad in ["", "  ", "a/b", "a:b", ".", "..", "..x", "..."] {
            assert!(model_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn aliases_as_mlflow() {
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
            assert_eq!(alias_problem(good), None, "{good:?}");
        }
        let long = "a".repeat(256);
        for bad in [
            "", "latest", "LATEST", "LaTeSt", "v1", "V42", "a b", "a.b", "a/b", "a\n", &long,
        ] {
            assert!(alias_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(alias_problem(&"a".repeat(255)), None);
        // Deleting accepts reserved names (they can never exist), not bad forms.
        assert_eq!(alias_format_problem("latest"), None);
        assert!(alias_format_problem("a b").is_some());
    }

    #[test]
    fn lengths() {
        assert_eq!(description_problem(&"d".repeat(5000)), None);
        assert!(description_problem(&"d".repeat(5001)).is_some());
        assert_eq!(source_problem(&"s".repeat(500)), None);
        assert!(source_problem(&"s".repeat(501)).is_some());
        assert!(source_problem("").is_some());
        assert_eq!(tag_value_problem(&"v".repeat(MAX_TAG_VALUE_LEN)), None);
        assert!(tag_value_problem(&"v".repeat(MAX_TAG_VALUE_LEN + 1)).is_some());
        assert!(experiment_tag_value_problem(&"v".repeat(5001)).is_some());
        assert!(experiment_name_problem("").is_some());
        assert!(experiment_name_problem(&"e".repeat(501)).is_some());
    }
}

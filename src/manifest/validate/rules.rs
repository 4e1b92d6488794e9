//! Name rules shared by the checks: MLflow's rules for aliases, tag keys
//! and model names, and modelsync's for handles.

/// Why `alias` is not a valid MLflow alias, or `None` when it is.
pub fn alias_problem(alias: &str) -> Option<String> {
    if alias.is_empty() {
        return Some("alias must not be empty".to_string());
    }
    if alias.chars().count() > 255 {
        return Some(format!(
            "alias \"{}...\" is too long: at most 255 characters",
            alias.chars().take(20).collect::<String>()
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
    if alias.eq_ignore_ascii_case("latest") {
        return Some(format!(
            "invalid alias \"{alias}\": \"latest\" is reserved by MLflow"
        ));
    }
    let mut chars = alias.chars();
    if matches!(chars.next(), Some('v' | 'V'))
        && alias.len() > 1
        && chars.all(|c| c.is_ascii_digit())
    {
        return Some(format!(
            "invalid alias \"{alias}\": aliases of the form v<number> are reserved by MLflow"
        ));
    }
    None
}

/// Why `key` is not a valid MLflow tag key, or `None` when it is.
pub fn tag_key_problem(key: &str) -> Option<String> {
    if key.is_empty() {
        return Some("tag key must not be empty".to_string());
    }
    if key.chars().count() > 250 {
        return Some(format!(
            "tag key \"{}...\" is too long: at most 250 characters",
            key.chars().take(20).collect::<String>()
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
    if key.contains("..") {
        return Some(format!("invalid tag key \"{key}\": \"..\" is not allowed"));
    }
    if key.starts_with('/') {
        return Some(format!(
            "invalid tag key \"{key}\": it must not start with \"/\""
        ));
    }
    None
}

/// Why `name` is not a valid registered-model name, or `None`.
pub fn model_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("empty name: metadata.name must not be empty".to_string());
    }
    if name.contains('/') || name.contains(':') {
        return Some(format!(
            "invalid model name \"{name}\": \"/\" and \":\" are not allowed (MLflow rejects them)"
        ));
    }
    None
}

/// Why `handle` is not a valid version handle, or `None`.
pub fn handle_problem(handle: &str) -> Option<String> {
    if handle.is_empty() {
        return Some("version handle must not be empty".to_string());
    }
    if handle.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "invalid handle \"{handle}\": all-digit names are reserved for bare version numbers; \
             use e.g. \"v{handle}\""
        ));
    }
    if !handle
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Some(format!(
            "invalid handle \"{handle}\": only letters, digits, \"_\", \"-\" and \".\" are allowed"
        ));
    }
    None
}

/// The run id of a `runs:/<id>/...` source.
pub fn run_id_of_source(source: &str) -> Option<&str> {
    let rest = source.strip_prefix("runs:/")?;
    let id = rest.split('/').next().unwrap_or_default();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert_eq!(alias_problem("champion"), None);
        assert_eq!(alias_problem("a_b-1"), None);
        assert_eq!(alias_problem("v"), None);
        assert_eq!(alias_problem("v1x"), None);
        assert!(alias_problem("v12").is_some());
        assert!(alias_problem("V3").is_some());
        assert!(alias_problem("LaTeSt").is_some());
        assert!(alias_problem("a.b").is_some());
        assert!(alias_problem("").is_some());
        assert!(alias_problem(&"a".repeat(256)).is_some());
        assert_eq!(alias_problem(&"a".repeat(255)), None);
    }

    #[test]
    fn tag_keys() {
        assert_eq!(tag_key_problem("team"), None);
        assert_eq!(tag_key_problem("a.b/c:d e-f_g"), None);
        assert!(tag_key_problem("a..b").is_some());
        assert!(tag_key_problem("/a").is_some());
        assert!(tag_key_problem("a=b").is_some());
        assert!(tag_key_problem(&"k".repeat(251)).is_some());
    }

    #[test]
    fn run_ids() {
        assert_eq!(run_id_of_source("runs:/abc/model"), Some("abc"));
        assert_eq!(run_id_of_source("runs:/abc"), Some("abc"));
        assert_eq!(run_id_of_source("runs://model"), None);
        assert_eq!(run_id_of_source("s3://x"), None);
    }
}

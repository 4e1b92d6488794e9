//! modelsync's own name rules (version handles, run ids of sources).
//! MLflow's rules (aliases, tag keys, model names, lengths) are in
//! [`crate::naming`], shared with the embedded registry.

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
    fn run_ids() {
        assert_eq!(run_id_of_source("runs:/abc/model"), Some("abc"));
        assert_eq!(run_id_of_source("runs:/abc"), Some("abc"));
        assert_eq!(run_id_of_source("runs://model"), None);
        assert_eq!(run_id_of_source("s3://x"), None);
    }
}

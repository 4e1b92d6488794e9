//! Where a version's bytes are: the storage location a registry answers
//! for it, the digest of the files there, and the URI a model server
//! outside the registry (KServe's storage initializer, Seldon's rclone)
//! can fetch them by — or why it cannot ([`serving_uri`]).
//!
//! Pure: the registries (`registry/`) locate and read; this module decides.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::TreeDigest;

/// Storage locations of versions, by model and version (`Err`: why one
/// could not be located).
pub type Locations = BTreeMap<String, BTreeMap<u64, Result<String, String>>>;

/// The bytes behind a version (or a source about to be registered): where
/// they are, as the registry answers it, and their files and digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactTree {
    /// `s3://…`, `file:…`, a bare path, `mlflow-artifacts:/…`.
    pub location: String,
    pub tree: TreeDigest,
}

/// True when `location` names a path on this machine (`file:…`, or no
/// scheme at all): such a path is read during a pass only where MLflow
/// handed it out, never because a manifest wrote it.
pub fn is_host_path(location: &str) -> bool {
    location.starts_with("file:") || scheme(location).is_none()
}

/// The URI a model server can fetch `location` by: `s3://…` and `gs://…`
/// as they are, a local path as `file:///<absolute path>`. Refused, with
/// why and what to configure: MLflow's proxied `mlflow-artifacts:`
/// locations and `models:/` or `runs:/` URIs (only MLflow can follow
/// them), relative paths, and stores model servers do not fetch from.
pub fn serving_uri(location: &str) -> Result<String, String> {
    let proxied = "only MLflow can follow it (the server proxies its artifacts: \
         `mlflow server --serve-artifacts`, the default). For serving, give versions \
         a location a model server can read: start MLflow with \
         `--no-serve-artifacts --default-artifact-root s3://BUCKET/PATH`, or with \
         `--artifacts-destination s3://BUCKET/PATH` and give the model server direct \
         access to that store";
    match scheme(location) {
        Some("s3" | "gs") if location.contains("://") => Ok(location.to_string()),
        Some("mlflow-artifacts") => Err(format!("{location} is proxied: {proxied}")),
        Some("models" | "runs") => Err(format!(
            "{location} is a registry URI that only MLflow's client can follow; \
             the registry answered no storage location for it"
        )),
        Some("file") => local(location, location.trim_start_matches("file:")),
        None => local(location, location),
        Some(other) => Err(format!(
            "{location} is in a {other}: store, which modelsync does not hand to model \
             servers (s3://, gs:// and local paths are)"
        )),
    }
}

/// A local path as `file:///…`, or why not.
fn local(location: &str, path: &str) -> Result<String, String> {
    // `file:/p`, `file:///p` and `file://localhost/p` all name `/p`.
    let path = match path.strip_prefix("//") {
        Some(rest) => rest.strip_prefix("localhost").unwrap_or(rest),
        None => path,
    };
    if path.starts_with('/') {
        Ok(format!("file://{path}"))
    } else {
        Err(format!(
            "{location} is a relative path, meaningful only where MLflow runs; \
             start the server with an absolute --default-artifact-root"
        ))
    }
}

/// The URI scheme (`s3`, `file`, `mlflow-artifacts`), when there is one.
fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_model_servers_fetch_from_are_handed_out() {
        for (location, uri) in [
            ("s3://models/fraud/7", "s3://models/fraud/7"),
            ("gs://b/m", "gs://b/m"),
            (
                "/srv/mlflow/1/m-1/artifacts",
                "file:///srv/mlflow/1/m-1/artifacts",
            ),
            ("file:/srv/a", "file:///srv/a"),
            ("file:///srv/a", "file:///srv/a"),
            ("file://localhost/srv/a", "file:///srv/a"),
        ] {
            assert_eq!(serving_uri(location).as_deref(), Ok(uri), "{location}");
        }
    }

    #[test]
    fn locations_only_mlflow_can_follow_are_refused_with_what_to_configure() {
        let why = serving_uri("mlflow-artifacts:/1/models/m-1/artifacts").unwrap_err();
        assert!(why.contains("only MLflow can follow it"), "{why}");
        assert!(
            why.contains("--no-serve-artifacts --default-artifact-root"),
            "{why}"
        );
        assert!(why.contains("--artifacts-destination"), "{why}");
        for refused in ["models:/m-1", "runs:/abc/model", "mlruns/1/a", "hdfs://n/p"] {
            assert!(serving_uri(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn host_paths_are_told_apart_from_stores() {
        assert!(is_host_path("/etc"));
        assert!(is_host_path("file:/etc"));
        assert!(is_host_path("relative/dir"));
        assert!(!is_host_path("s3://b/k"));
        assert!(!is_host_path("mlflow-artifacts:/1/x"));
    }
}

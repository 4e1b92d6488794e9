//! The registry URI as the operator gives it (`--registry`,
//! `MODELSYNC_REGISTRY`, `MLFLOW_TRACKING_URI`): which registry it names,
//! the MLflow workspace its fragment carries (`#workspace=NAME`), and how
//! it is shown (without credentials). The one reading of a registry URI;
//! opening it is [`super::open`].

use crate::uri::{percent_decode, percent_encode, without_userinfo};

/// The fragment that names an MLflow workspace.
const WORKSPACE: &str = "#workspace=";

/// A registry URI, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUri(String);

/// Which registry a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind<'a> {
    /// `http(s)://…`: an MLflow tracking server.
    Mlflow,
    /// `file:PATH` (or `file://PATH`): the embedded registry's file.
    Embedded { path: &'a str },
    /// Anything else.
    Unsupported,
}

impl RegistryUri {
    pub fn new(uri: &str) -> RegistryUri {
        RegistryUri(uri.to_string())
    }

    /// The URI as given (credentials included: never shown).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which registry it names.
    pub fn kind(&self) -> Kind<'_> {
        if let Some(path) = self.0.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let path = path.split(WORKSPACE).next().unwrap_or(path);
            Kind::Embedded { path }
        } else if crate::uri::is_http(&self.0) {
            Kind::Mlflow
        } else {
            Kind::Unsupported
        }
    }

    /// The workspace its fragment names (`#workspace=NAME`,
    /// percent-decoded, trimmed), if any.
    pub fn workspace(&self) -> Option<String> {
        let (_, fragment) = self.0.split_once('#')?;
        let name = fragment.strip_prefix("workspace=")?;
        let name = percent_decode(name).trim().to_string();
        (!name.is_empty()).then_some(name)
    }

    /// The URI without its fragment.
    pub fn base(&self) -> &str {
        self.0.split('#').next().unwrap_or(&self.0)
    }

    /// The same registry with `#workspace=NAME` as its fragment (replacing
    /// any workspace it named).
    pub fn with_workspace(&self, name: &str) -> RegistryUri {
        RegistryUri(format!(
            "{}{WORKSPACE}{}",
            self.base(),
            percent_encode(name)
        ))
    }

    /// The URI as it may be shown: without userinfo.
    pub fn redacted(&self) -> String {
        without_userinfo(&self.0)
    }
}

impl std::fmt::Display for RegistryUri {
    /// Without userinfo.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(RegistryUri::new("https://mlflow:5000").kind(), Kind::Mlflow);
        assert_eq!(
            RegistryUri::new("file:a/b.json").kind(),
            Kind::Embedded { path: "a/b.json" }
        );
        assert_eq!(
            RegistryUri::new("file:///tmp/r.json#workspace=x").kind(),
            Kind::Embedded {
                path: "/tmp/r.json"
            }
        );
        assert_eq!(RegistryUri::new("s3://bucket").kind(), Kind::Unsupported);
    }

    #[test]
    fn workspace_fragments() {
        let ws = |u: &str| RegistryUri::new(u).workspace();
        assert_eq!(ws("http://h#workspace=team-a").as_deref(), Some("team-a"));
        assert_eq!(ws("http://h#workspace=team%20b").as_deref(), Some("team b"));
        assert_eq!(ws("http://h#workspace="), None);
        assert_eq!(ws("http://h#other"), None);
        assert_eq!(ws("http://h"), None);
        let named = RegistryUri::new("http://u:pw@h/p#workspace=old").with_workspace("team b");
        assert_eq!(named.as_str(), "http://u:pw@h/p#workspace=team%20b");
        assert_eq!(named.workspace().as_deref(), Some("team b"));
        assert_eq!(named.redacted(), "http://h/p#workspace=team%20b");
        assert_eq!(named.to_string(), named.redacted());
    }
}

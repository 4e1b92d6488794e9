//! `modelsync.toml`: optional settings kept beside the manifests.
//!
//! ```toml
//! # Moves into these stages/aliases must declare gates.
//! protect = ["Production", "champion"]
//!
//! # Who may sign approvals (git's allowed_signers format), relative to
//! # the manifests: what `approvals` gates check signatures against.
//! approvers = "approvers.allowed_signers"
//!
//! # Other registries that `from:` in a version may name.
//! [registries.dev]
//! uri = "https://mlflow-dev.example.com"
//!
//! # Promotion windows (`manifest::windows`): no moves on Friday evenings.
//! [[windows]]
//! name = "weekend"
//! kind = "deny"
//! schedule = "0 17 * * FRI"
//! duration = "64h"
//! timezone = "Europe/Berlin"
//! targets = ["Production", "champion"]
//! models = ["*"]
//! ```
//!
//! Where promoted versions are written (`[outputs]`, `[[outputs]]`) is
//! read by `config/outputs.rs`.
//!
//! A registry's credentials come from `MODELSYNC_REGISTRY_<NAME>_TOKEN` or
//! `MODELSYNC_REGISTRY_<NAME>_USERNAME`/`_PASSWORD`, never from this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod outputs;

pub use outputs::same_branch;

use super::SourceError;
use crate::manifest::Origin;
pub use crate::manifest::validate::ApproversSetting;
use crate::manifest::windows::{Located, WindowSetting};

/// The config file's name, looked up in each manifest folder.
pub const FILE_NAME: &str = "modelsync.toml";

/// Settings from `modelsync.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Protected stages and aliases.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Other registries, by name.
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryEntry>,
    /// The approvers file, as written, with its place in this file (set
    /// by [`Config::parse`]).
    #[serde(skip)]
    pub approvers: Option<ApproversSetting>,
    #[serde(default, rename = "approvers")]
    approvers_written: Option<toml::Spanned<String>>,
    /// Where promoted versions are written (`[outputs]`, `[[outputs]]`;
    /// set by [`Config::parse`]).
    #[serde(skip)]
    pub outputs: Vec<crate::outputs::Settings>,
    #[serde(default, rename = "outputs")]
    outputs_written: Option<Ignored>,
    /// Promotion windows, as written, with where (set by [`Config::parse`]).
    #[serde(skip)]
    pub windows: Vec<WindowSetting>,
    #[serde(default, rename = "windows")]
    windows_written: Vec<toml::Spanned<WrittenWindow>>,
}

/// A value read again by [`outputs::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ignored;

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Ignored)
    }
}

/// One `[[windows]]` table as TOML holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenWindow {
    #[serde(default)]
    name: Option<String>,
    kind: toml::Spanned<String>,
    schedule: toml::Spanned<String>,
    duration: toml::Spanned<String>,
    #[serde(default)]
    timezone: Option<toml::Spanned<String>>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
}

/// One `[registries.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// `http(s)://…` of an MLflow tracking server.
    pub uri: String,
}

impl Config {
    /// The registries as name -> URI.
    pub fn registry_uris(&self) -> BTreeMap<String, String> {
        self.registries
            .iter()
            .map(|(k, v)| (k.clone(), v.uri.clone()))
            .collect()
    }
}

impl Config {
    /// Parses a config file's text; errors name the file, line and column.
    pub fn parse(path: &str, text: &str) -> Result<Config, SourceError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        if cfg.outputs_written.take().is_some() {
            cfg.outputs = outputs::parse(path, text)?;
        }
        for (name, entry) in &cfg.registries {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(SourceError::Config(format!(
                    "{path}: registry name {name:?}: use letters, digits, - and _ (it names MODELSYNC_REGISTRY_<NAME>_TOKEN)"
                )));
            }
            if !crate::uri::is_http(&entry.uri) {
                return Err(SourceError::Config(format!(
                    "{path}: [registries.{name}] uri must be http(s):// of an MLflow server, not {:?}",
                    entry.uri
                )));
            }
        }
        let at = |start: usize| {
            let (line, column) = line_col(text, start);
            Origin {
                file: path.into(),
                line,
                column,
            }
        };
        let located = |v: toml::Spanned<String>| Located {
            origin: at(v.span().start),
            value: v.into_inner(),
        };
        cfg.windows = std::mem::take(&mut cfg.windows_written)
            .into_iter()
            .map(|w| {
                let origin = at(w.span().start);
                let w = w.into_inner();
                WindowSetting {
                    origin,
                    name: w.name,
                    kind: located(w.kind),
                    schedule: located(w.schedule),
                    duration: located(w.duration),
                    timezone: w.timezone.map(located),
                    targets: w.targets,
                    models: w.models,
                }
            })
            .collect();
        cfg.approvers = cfg.approvers_written.take().map(|written| {
            let (line, column) = line_col(text, written.span().start);
            ApproversSetting {
                origin: Origin {
                    file: path.into(),
                    line,
                    column,
                },
                path: written.into_inner(),
            }
        });
        Ok(cfg)
    }

    /// Merges the config files beside `paths` (a folder's own file, or the
    /// file beside a manifest file given directly).
    pub fn for_paths(paths: &[PathBuf]) -> Result<Config, SourceError> {
        let mut merged = Config::default();
        let mut seen = Vec::new();
        for p in paths {
            let dir = if p.is_dir() {
                p.as_path()
            } else {
                p.parent().unwrap_or(Path::new("."))
            };
            let file = dir.join(FILE_NAME);
            if seen.contains(&file) || std::fs::symlink_metadata(&file).is_err() {
                continue;
            }
            // Read as any path in the manifests is: a link must stay inside.
            let (root, path) = (dir.display().to_string(), file.display().to_string());
            let text = super::tree::read_host(&root, &path)
                .map_err(|e| SourceError::Config(format!("{path}: {e}")))?;
            let cfg = Config::parse(&file.display().to_string(), &text)?;
            for (name, entry) in cfg.registries {
                match merged.registries.get(&name) {
                    Some(e) if *e != entry => {
                        return Err(SourceError::Config(format!(
                            "{}: [registries.{name}] differs from another modelsync.toml's",
                            file.display()
                        )));
                    }
                    _ => {
                        merged.registries.insert(name, entry);
                    }
                }
            }
            for t in cfg.protect {
                if !merged.protect.contains(&t) {
                    merged.protect.push(t);
                }
            }
            for o in cfg.outputs {
                if let Some(first) = merged.outputs.iter().find(|f| same_branch(f, &o)) {
                    return Err(SourceError::Config(format!(
                        "{}: another output writes {} branch {} (at {}): one output per branch",
                        o.origin, o.repo, o.branch, first.origin
                    )));
                }
                merged.outputs.push(o);
            }
            merged.windows.extend(cfg.windows);
            if let Some(a) = cfg.approvers {
                if let Some(first) = &merged.approvers {
                    return Err(SourceError::Config(format!(
                        "{}: approvers is named again (first at {}): name one approvers file",
                        a.origin, first.origin
                    )));
                }
                merged.approvers = Some(a);
            }
            seen.push(file);
        }
        Ok(merged)
    }
}

/// A TOML error as `path:line:column: message`.
fn toml_error(path: &str, text: &str, e: &toml::de::Error) -> SourceError {
    let at = e
        .span()
        .map(|s| line_col(text, s.start))
        .map(|(l, c)| format!(":{l}:{c}"))
        .unwrap_or_default();
    SourceError::Config(format!("{path}{at}: {}", e.message()))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protect_and_rejects_unknown_keys_with_location() {
        let cfg = Config::parse(
            "m/modelsync.toml",
            "protect = [\"Production\", \"champion\"]\n",
        )
        .expect("valid");
        assert_eq!(cfg.protect, vec!["Production", "champion"]);
        let err = Config::parse("m/modelsync.toml", "protect = []\nprotekt = 1\n").unwrap_err();
        assert!(
            err.to_string().starts_with("m/modelsync.toml:2:1: "),
            "{err}"
        );
    }

    #[test]
    fn windows_keep_where_each_value_is_written() {
        let text = "[[windows]]\nkind = \"deny\"\nschedule = \"0 17 * * FRI\"\nduration = \"64h\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"Production\"]\n";
        let cfg = Config::parse("m/modelsync.toml", text).expect("valid");
        let w = &cfg.windows[0];
        assert_eq!(w.kind.value, "deny");
        assert_eq!(w.schedule.origin.to_string(), "m/modelsync.toml:3:12");
        assert_eq!(w.timezone.as_ref().expect("tz").value, "Europe/Berlin");
        assert_eq!(w.targets, ["Production"]);
        let err = Config::parse("m/modelsync.toml", "[[windows]]\nkind = \"deny\"\n")
            .expect_err("no schedule");
        assert!(err.to_string().contains("schedule"), "{err}");
    }

    #[test]
    fn approvers_keeps_where_it_is_written() {
        let cfg = Config::parse(
            "m/modelsync.toml",
            "protect = []\napprovers = \"keys/approvers\"\n",
        )
        .expect("valid");
        let a = cfg.approvers.expect("named");
        assert_eq!(a.path, "keys/approvers");
        assert_eq!(a.origin.to_string(), "m/modelsync.toml:2:13");
        assert!(Config::parse("m/modelsync.toml", "approvers = 1\n").is_err());
    }
}

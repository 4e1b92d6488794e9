//! Outputs (issue 20): the promoted version written where serving reads
//! it. `modelsync.toml`'s `[outputs]` (or `[[outputs]]`, several) names a
//! git repository, branch and path; the YAML files there carry marker
//! comments, as Flux image automation's setters do:
//!
//! ```yaml
//! storageUri: s3://models/fraud/7   # {"$modelsync": "fraud-detector@champion:uri"}
//! ```
//!
//! This module is the pure part: the settings as data ([`Settings`]), the
//! markers and the line-based rewriter ([`markers`]: only the marked
//! scalar of a line changes, every other byte stays), and what a marker
//! asks for ([`Reference`], [`Field`]). It reads nothing: the git work is
//! `source/outputs.rs`, the values come from the pass (`reconcile/outputs.rs`).

pub mod markers;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The key of a marker comment's JSON object.
pub const MARKER_KEY: &str = "$modelsync";

/// The environment variable naming the SSH private key file output
/// commits are signed with (as git's `user.signingkey`).
pub const SIGNING_KEY_VAR: &str = "MODELSYNC_OUTPUTS_SIGNING_KEY";

/// The author of output commits when `author` is not set.
pub const DEFAULT_AUTHOR: &str = "modelsync <modelsync@localhost>";

/// One `[outputs]` table of `modelsync.toml`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The git URL (`https://…`, `file://…`); never with credentials.
    pub repo: String,
    /// The branch the marked files are read from and written to (in
    /// pull-request mode: the pull request's base).
    pub branch: String,
    /// A file or a folder of the repository, relative to its top, where
    /// the marked files live (normalized; `""` for the whole repository).
    pub path: String,
    pub mode: Mode,
    pub author: Author,
    /// `file:line:column` of the table in `modelsync.toml`.
    pub origin: String,
}

/// How an output change reaches its branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One commit pushed to the branch.
    Commit,
    /// One commit pushed to `modelsync/outputs/<branch>`, and a pull
    /// request into the branch opened (or the open one updated).
    PullRequest,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "commit" => Some(Mode::Commit),
            "pull-request" => Some(Mode::PullRequest),
            _ => None,
        }
    }
}

/// `NAME <EMAIL>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub name: String,
    pub email: String,
}

impl Author {
    /// Parses `NAME <EMAIL>`; why not, when it does not have that form.
    pub fn parse(s: &str) -> Result<Author, String> {
        let bad = || format!("author {s:?}: write it as \"NAME <EMAIL>\"");
        let (name, rest) = s.split_once('<').ok_or_else(bad)?;
        let email = rest.strip_suffix('>').ok_or_else(bad)?;
        let name = name.trim();
        let forbidden = |t: &str| t.contains(['<', '>', '\n', '\r', '\0']);
        if name.is_empty() || email.is_empty() || forbidden(name) || forbidden(email) {
            return Err(bad());
        }
        Ok(Author {
            name: name.to_string(),
            email: email.to_string(),
        })
    }
}

impl fmt::Display for Author {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// What a marker can name of a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Field {
    /// A URI a model server can fetch the version's files by.
    #[serde(rename = "uri")]
    Uri,
    /// `sha256:<hex>` of the canonical listing of the files.
    #[serde(rename = "digest")]
    Digest,
    /// The version number.
    #[serde(rename = "version")]
    Version,
    /// The MLflow 3 logged model id (`m-…`).
    #[serde(rename = "modelId")]
    ModelId,
    /// The run id.
    #[serde(rename = "run")]
    Run,
}

impl Field {
    pub const ALL: [Field; 5] = [
        Field::Uri,
        Field::Digest,
        Field::Version,
        Field::ModelId,
        Field::Run,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Uri => "uri",
            Field::Digest => "digest",
            Field::Version => "version",
            Field::ModelId => "modelId",
            Field::Run => "run",
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// True when the value needs the version's files located or read.
    pub fn needs_bytes(self) -> bool {
        matches!(self, Field::Uri | Field::Digest)
    }
}

/// Where a marker points: an alias, or the highest version in a stage
/// (`Staging`, `Production`, spelled as MLflow shows them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    Alias(String),
    Stage(crate::state::Stage),
}

/// `MODEL@ALIAS` or `MODEL@STAGE`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference {
    pub model: String,
    pub target: Target,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Alias(a) => write!(f, "{}@{a}", self.model),
            Target::Stage(s) => write!(f, "{}@{s}", self.model),
        }
    }
}

/// The values of one version, by field (a field absent: the version has
/// none, e.g. no logged model).
pub type Values = BTreeMap<Field, String>;

/// One marked field that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The file, relative to the top of the outputs repository.
    pub file: String,
    pub line: usize,
    /// `MODEL@TARGET:FIELD`, as the marker says.
    pub marker: String,
    /// The value the file holds (unquoted).
    pub old: String,
    /// The value the file will hold.
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &str| {
            if s.is_empty() {
                "(empty)".to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}:{} {}: {} -> {}",
            self.file,
            self.line,
            self.marker,
            shown(&self.old),
            shown(&self.new)
        )
    }
}

/// What a pass did (or, planning, would do) with one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `REPO@BRANCH:PATH`, without credentials.
    pub output: String,
    /// The marked fields that change (planned, or written).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    pub result: Written,
}

/// How an output ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Written {
    /// Every marked field already holds its value: nothing to write.
    Unchanged,
    /// Planned only (`plan`): the changes a pass would write.
    Planned,
    /// One commit pushed to the branch (`attempts` > 1: the branch moved
    /// meanwhile and the markers were applied again on its new head).
    Committed { commit: String, attempts: u32 },
    /// One commit pushed to the pull request's branch, and the pull
    /// request opened (`opened`) or the open one updated.
    PullRequest {
        commit: String,
        number: u64,
        url: String,
        opened: bool,
    },
    /// Nothing was written, and why (each problem on its own line, with
    /// file and line where there is one). Registry moves stay.
    Failed { error: String },
}

impl Report {
    pub fn failed(&self) -> Option<&str> {
        match &self.result {
            Written::Failed { error } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.changes.len();
        match &self.result {
            Written::Unchanged => write!(f, "{}: up to date", self.output),
            Written::Planned => write!(f, "{}: {n} marked field(s) to change", self.output),
            Written::Committed { commit, attempts } => {
                write!(f, "{}: committed {commit} ({n} field(s))", self.output)?;
                if *attempts > 1 {
                    write!(f, " after {attempts} attempts (the branch moved meanwhile)")?;
                }
                Ok(())
            }
            Written::PullRequest {
                number,
                url,
                opened,
                commit,
            } => write!(
                f,
                "{}: pull request #{number} {} ({url}, commit {commit}, {n} field(s))",
                self.output,
                if *opened { "opened" } else { "updated" }
            ),
            Written::Failed { error } => write!(
                f,
                "{}: not written: {}",
                self.output,
                error.lines().collect::<Vec<_>>().join("; ")
            ),
        }
    }
}

/// The values of `version` a marker can name without reading its files:
/// `version`, and `run` and `modelId` where it has them.
pub fn plain_values(version: &crate::state::LiveVersion) -> Values {
    let mut v = Values::new();
    v.insert(Field::Version, version.version.to_string());
    if !version.run_id.is_empty() {
        v.insert(Field::Run, version.run_id.clone());
    }
    if !version.model_id.is_empty() {
        v.insert(Field::ModelId, version.model_id.clone());
    }
    v
}

/// The commit message of a pass's output changes (the references moved,
/// then every change).
pub fn commit_message(changes: &[Change]) -> String {
    let mut moved: Vec<&str> = changes
        .iter()
        .map(|c| {
            c.marker
                .rsplit_once(':')
                .map_or(c.marker.as_str(), |(r, _)| r)
        })
        .collect();
    moved.sort_unstable();
    moved.dedup();
    let mut m = format!("modelsync: update {}\n\n", moved.join(", "));
    for c in changes {
        m.push_str(&format!("{c}\n"));
    }
    m
}

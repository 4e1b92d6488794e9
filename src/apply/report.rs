//! Per-action results of an apply and their summary.

use std::fmt;

use serde::Serialize;

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Applied,
    /// The registry refused or failed; the message says why.
    Failed(String),
    /// A gate blocked the move.
    Blocked(String),
    /// Not attempted (an earlier action of the model failed or was blocked).
    Skipped(String),
    /// The live value changed since the plan was made (concurrent writer).
    Conflict(String),
}

/// The result of one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionResult {
    /// The model or experiment.
    pub object: String,
    /// The action, described for people.
    pub action: String,
    /// The action kind (`register_version`, `set_alias`, ...).
    pub kind: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// All results of one apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    pub results: Vec<ActionResult>,
}

impl ApplyReport {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    pub fn applied(&self) -> usize {
        self.count(|o| *o == Outcome::Applied)
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_) | Outcome::Conflict(_)))
    }
    pub fn blocked(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Blocked(_)))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped(_)))
    }

    /// One line per result, then a summary line.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for r in &self.results {
            out.push_str(&format!("{r}\n"));
        }
        out.push_str(&format!("{}\n", self.summary()));
        out
    }

    /// `Apply complete: 3 applied, 0 failed, 1 blocked, 0 skipped.`
    pub fn summary(&self) -> String {
        format!(
            "Apply complete: {} applied, {} failed, {} blocked, {} skipped.",
            self.applied(),
            self.failed(),
            self.blocked(),
            self.skipped()
        )
    }
}

impl fmt::Display for ActionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (word, reason) = match &self.outcome {
            Outcome::Applied => ("ok", None),
            Outcome::Failed(r) => ("FAILED", Some(r)),
            Outcome::Blocked(r) => ("BLOCKED", Some(r)),
            Outcome::Skipped(r) => ("skipped", Some(r)),
            Outcome::Conflict(r) => ("CONFLICT", Some(r)),
        };
        write!(f, "{}: {} ... {word}", self.object, self.action)?;
        if let Some(r) = reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

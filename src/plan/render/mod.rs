//! Plan renderings: text (terminal), JSON (machines), Markdown (PR comments).
//!
//! - `text.rs`: Terraform-like lines grouped per model, optional ANSI colour.
//! - `json.rs`: the serde form of [`Plan`], the saved-plan payload.
//! - `markdown.rs`: a pull-request comment, kept under GitHub's size limit.
//! - `outputs.rs`: the outputs' marked fields a plan would change.
//!
//! All renderings are pure functions of the plan: same plan, same bytes.
//! Text and Markdown word each action through [`super::describe`].

mod json;
mod markdown;
mod outputs;
mod text;

pub use json::json;
pub use markdown::{MARKDOWN_LIMIT, markdown};
pub use text::text;

use super::access::AccessAction;
use super::prompts::PromptAction;
use super::{Action, Plan};

/// Counts for the one-line summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub register: usize,
    /// Moves that will happen (blocked ones are counted in `blocked`).
    pub moves: usize,
    pub archive: usize,
    pub delete: usize,
    pub other: usize,
    pub blocked: usize,
    /// Models that could not be planned.
    pub errors: usize,
    /// Experiments that could not be planned.
    pub experiment_errors: usize,
    /// Prompts that could not be planned.
    pub prompt_errors: usize,
    /// Moves holds keep from happening (no change).
    pub held: usize,
    /// Permissions to grant, change or take back (`kind: AccessPolicy`).
    pub permissions: usize,
    /// Models whose permissions could not be planned.
    pub access_errors: usize,
}

impl Summary {
    pub fn of(plan: &Plan) -> Summary {
        let mut s = Summary::default();
        for action in plan.models.iter().flat_map(|m| &m.actions) {
            match action {
                _ if action.is_blocked() => s.blocked += 1,
                Action::RegisterVersion { .. } => s.register += 1,
                Action::TransitionStage { .. } | Action::SetAlias { .. } => s.moves += 1,
                Action::ArchiveVersion { .. } => s.archive += 1,
                Action::DeleteAlias { .. } => s.delete += 1,
                _ => s.other += 1,
            }
        }
        s.other += plan
            .experiments
            .iter()
            .map(|e| e.actions.len())
            .sum::<usize>();
        for action in plan.prompts.iter().flat_map(|p| &p.actions) {
            match action {
                PromptAction::RegisterVersion { .. } => s.register += 1,
                PromptAction::SetAlias { .. } => s.moves += 1,
                PromptAction::CreatePrompt => s.other += 1,
            }
        }
        for action in plan.access.iter().flat_map(|a| &a.actions) {
            match action {
                AccessAction::Record { .. } => s.other += 1,
                _ => s.permissions += 1,
            }
        }
        s.access_errors = plan.access.iter().filter(|a| !a.errors.is_empty()).count();
        s.prompt_errors = plan.prompts.iter().filter(|p| !p.errors.is_empty()).count();
        s.held = plan.held().count();
        s.errors = plan.models.iter().filter(|m| !m.errors.is_empty()).count();
        s.experiment_errors = plan
            .experiments
            .iter()
            .filter(|e| !e.errors.is_empty())
            .count();
        s
    }

    /// `Plan: 2 to register, 3 to move, 1 to archive, 0 to delete, 4 other
    /// changes; 1 blocked by gates.`, or the no-change sentence.
    pub fn line(&self) -> String {
        if *self == Summary::default() {
            return "No changes. The registry matches the manifests.".to_string();
        }
        if *self
            == (Summary {
                held: self.held,
                ..Summary::default()
            })
        {
            let n = self.held;
            return format!(
                "No changes. {n} {} held (see above).",
                plural(n, "target is", "targets are")
            );
        }
        let mut line = format!(
            "Plan: {} to register, {} to move, {} to archive, {} to delete, {} other {}",
            self.register,
            self.moves,
            self.archive,
            self.delete,
            self.other,
            plural(self.other, "change", "changes"),
        );
        if self.permissions > 0 {
            line.push_str(&format!(
                ", {} permission {}",
                self.permissions,
                plural(self.permissions, "change", "changes")
            ));
        }
        let mut extra = Vec::new();
        if self.blocked > 0 {
            extra.push(format!("{} blocked by gates", self.blocked));
        }
        if self.errors > 0 {
            let models = plural(self.errors, "model", "models");
            extra.push(format!("{} {models} with errors", self.errors));
        }
        if self.experiment_errors > 0 {
            let n = self.experiment_errors;
            let experiments = plural(n, "experiment", "experiments");
            extra.push(format!("{n} {experiments} with errors"));
        }
        if self.held > 0 {
            extra.push(format!("{} held", self.held));
        }
        if self.prompt_errors > 0 {
            let n = self.prompt_errors;
            extra.push(format!(
                "{n} {} with errors",
                plural(n, "prompt", "prompts")
            ));
        }
        if self.access_errors > 0 {
            let n = self.access_errors;
            extra.push(format!(
                "{n} {} with refused permissions",
                plural(n, "model", "models")
            ));
        }
        if !extra.is_empty() {
            line.push_str("; ");
            line.push_str(&extra.join(", "));
        }
        line.push('.');
        line
    }
}

/// The line a targeted plan starts with: what it covers, and that
/// nothing else was read or planned.
pub(crate) fn targeted_line(
    targets: &crate::manifest::targets::Targets,
    code: fn(&str) -> String,
) -> String {
    let models = targets.models.iter().map(|n| code(n));
    let experiments = (targets.experiments.iter()).map(|e| format!("experiment {}", code(e)));
    let mut names: Vec<String> = models.chain(experiments).collect();
    const SHOWN: usize = 20;
    let more = names.len().saturating_sub(SHOWN);
    names.truncate(SHOWN);
    if more > 0 {
        names.push(format!("and {more} more"));
    }
    let only = if names.is_empty() {
        "nothing (no declared model was selected)".to_string()
    } else {
        names.join(", ")
    };
    format!(
        "Targeted plan: only {only}; the other manifests were validated, not read from the registry or planned."
    )
}

pub(crate) fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Number of blocked moves in a list of actions.
pub(crate) fn blocked_count(actions: &[Action]) -> usize {
    actions.iter().filter(|a| a.is_blocked()).count()
}

//! Text rendering: Terraform-like, grouped per model.
//!
//! `+` adds, `~` changes, `-` removes, `!` marks a move a gate blocks, `=`
//! a move a hold keeps from happening (no change). Each
//! gate of a move is listed under it with the values observed. The last
//! line is the summary. Colour is optional and the text reads the same
//! without it.

use std::fmt::Write as _;

use super::Summary;
use crate::plan::access::{AccessAction, AccessPlan};
use crate::plan::prompts::{PromptAction, PromptPlan};
use crate::plan::{Action, GateCheck, GateStatus, Plan, describe};
use crate::state::tags;

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const BOLD_RED: &str = "\x1b[1;31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// Terraform-like text, grouped per model, with a one-line summary.
/// `color` adds ANSI colours (only on a terminal, never with NO_COLOR).
pub fn text(plan: &Plan, color: bool) -> String {
    let mut out = Out {
        buf: String::new(),
        color,
    };
    if let Some(targets) = &plan.targets {
        out.line(YELLOW, &super::targeted_line(targets, str::to_string));
        out.buf.push('\n');
    }
    for mp in &plan.models {
        out.line(BOLD, &format!("model {}", mp.model));
        for action in &mp.actions {
            render_action(&mut out, action);
        }
        for h in &mp.held {
            out.line(YELLOW, &format!("  = held: {}", describe::held(h)));
        }
        for e in &mp.errors {
            out.line(BOLD_RED, &format!("  error: {e}"));
        }
        out.buf.push('\n');
    }
    for ep in &plan.experiments {
        out.line(BOLD, &format!("experiment {}", ep.experiment));
        for action in &ep.actions {
            let desc = describe::experiment_action(action);
            let (sign, colour) = match action {
                crate::plan::ExperimentAction::SetExperimentTag {
                    before: Some(_), ..
                } => ("~", YELLOW),
                _ => ("+", GREEN),
            };
            out.line(colour, &format!("  {sign} {desc}"));
            if let crate::plan::ExperimentAction::CreateExperiment { tags, .. } = action {
                for (k, v) in tags {
                    out.line("", &format!("      tag {k} = {v:?}"));
                }
            }
        }
        for w in &ep.warnings {
            out.line(YELLOW, &format!("  warning: {w}"));
        }
        for e in &ep.errors {
            out.line(BOLD_RED, &format!("  error: {e}"));
        }
        out.buf.push('\n');
    }
    for pp in &plan.prompts {
        render_prompt(&mut out, pp);
    }
    for ap in &plan.access {
        render_access(&mut out, ap);
    }
    for report in &plan.outputs {
        for (sign, line) in super::outputs::text_lines(report) {
            let colour = match sign {
                "~" => YELLOW,
                "error" => BOLD_RED,
                _ => BOLD,
            };
            out.line(colour, &line);
        }
        out.buf.push('\n');
    }
    let summary = Summary::of(plan);
    out.line(BOLD, &summary.line());
    out.buf
}

/// A prompt's actions; an alias move shows the template diff under it.
fn render_prompt(out: &mut Out, pp: &PromptPlan) {
    out.line(BOLD, &format!("prompt {}", pp.prompt));
    for action in &pp.actions {
        let (sign, colour) = match action {
            PromptAction::SetAlias { from: Some(_), .. } => ("~", YELLOW),
            PromptAction::SetAlias { .. } => ("+", YELLOW),
            _ => ("+", GREEN),
        };
        out.line(
            colour,
            &format!("  {sign} {}", describe::prompt_action(action)),
        );
        if let PromptAction::SetAlias { diff, .. } = action {
            for line in diff.lines() {
                let colour = match line.as_bytes().first() {
                    Some(b'+') if !line.starts_with("+++") => GREEN,
                    Some(b'-') if !line.starts_with("---") => RED,
                    _ => "",
                };
                out.line(colour, &format!("      {line}"));
            }
        }
    }
    for w in &pp.warnings {
        out.line(YELLOW, &format!("  warning: {w}"));
    }
    for e in &pp.errors {
        out.line(BOLD_RED, &format!("  error: {e}"));
    }
    out.buf.push('\n');
}

/// A model's permission changes (`kind: AccessPolicy`).
fn render_access(out: &mut Out, ap: &AccessPlan) {
    out.line(BOLD, &format!("access {}", ap.model));
    for action in &ap.actions {
        let (sign, colour) = match action {
            AccessAction::Grant { before: None, .. } => ("+", GREEN),
            AccessAction::Revoke { .. } => ("-", RED),
            _ => ("~", YELLOW),
        };
        out.line(
            colour,
            &format!("  {sign} {}", describe::access_action(action)),
        );
    }
    for w in &ap.warnings {
        out.line(YELLOW, &format!("  warning: {w}"));
    }
    for e in &ap.errors {
        out.line(BOLD_RED, &format!("  error: {e}"));
    }
    out.buf.push('\n');
}

struct Out {
    buf: String,
    color: bool,
}

impl Out {
    fn line(&mut self, colour: &str, text: &str) {
        if self.color && !colour.is_empty() {
            let _ = writeln!(self.buf, "{colour}{text}{RESET}");
        } else {
            let _ = writeln!(self.buf, "{text}");
        }
    }
}

fn render_action(out: &mut Out, action: &Action) {
    let blocked = action.is_blocked();
    let (sign, colour) = sign(action);
    let text = describe::action(action);
    if blocked {
        out.line(BOLD_RED, &format!("  ! blocked: {text}"));
    } else {
        out.line(colour, &format!("  {sign} {text}"));
    }
    for detail in describe::details(action) {
        out.line("", &format!("      {detail}"));
    }
    for g in action.gates() {
        let (word, colour) = gate_word(g);
        out.line(colour, &format!("      {word}: {} ({})", g.gate, g.detail));
    }
}

fn gate_word(g: &GateCheck) -> (&'static str, &'static str) {
    match g.status {
        GateStatus::Passed => ("passed", GREEN),
        GateStatus::Blocked => ("blocked", RED),
        GateStatus::Overridden => ("overridden", YELLOW),
    }
}

/// The sign and colour of an action's line: `+` adds, `~` changes, `-`
/// removes.
fn sign(action: &Action) -> (&'static str, &'static str) {
    match action {
        Action::CreateModel { .. } | Action::RegisterVersion { .. } => ("+", GREEN),
        Action::SetModelTag { key, before, .. } if key != tags::MANAGED && before.is_none() => {
            ("+", GREEN)
        }
        Action::SetVersionTag { before: None, .. } => ("+", GREEN),
        Action::SetAlias { before: None, .. } => ("+", YELLOW),
        Action::ArchiveVersion { .. } | Action::DeleteAlias { .. } | Action::ReleaseHold { .. } => {
            ("-", RED)
        }
        _ => ("~", YELLOW),
    }
}

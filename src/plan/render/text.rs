//! Text rendering: Terraform-like, grouped per model.
//!
//! `+` adds, `~` changes, `-` removes, `!` marks a move a gate blocks. Each
//! gate of a move is listed under it with the values observed. The last
//! line is the summary. Colour is optional and the text reads the same
//! without it.

use std::fmt::Write as _;

use super::{Summary, experiment_action, holders_text, ownership_text, short_target};
use crate::plan::{Action, GateCheck, GateStatus, Plan, tags};
use crate::state::Stage;

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
    for mp in &plan.models {
        out.line(BOLD, &format!("model {}", mp.model));
        for action in &mp.actions {
            render_action(&mut out, action);
        }
        for e in &mp.errors {
            out.line(BOLD_RED, &format!("  error: {e}"));
        }
        out.buf.push('\n');
    }
    for ep in &plan.experiments {
        out.line(BOLD, &format!("experiment {}", ep.experiment));
        for action in &ep.actions {
            let desc = experiment_action(action);
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
    let summary = Summary::of(plan);
    out.line(BOLD, &summary.line());
    out.buf
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
    let (sign, colour, text) = describe(action);
    if blocked {
        out.line(BOLD_RED, &format!("  ! blocked: {text}"));
    } else {
        out.line(colour, &format!("  {sign} {text}"));
    }
    for detail in details(action) {
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
    }
}

/// Sign, colour and one-line description of an action.
fn describe(action: &Action) -> (&'static str, &'static str, String) {
    match action {
        Action::CreateModel { .. } => ("+", GREEN, "create model".to_string()),
        Action::UpdateModelDescription { before, after } => {
            ("~", YELLOW, format!("description: {before:?} -> {after:?}"))
        }
        Action::SetModelTag { key, before, after } if key == tags::MANAGED => {
            let before = before
                .as_deref()
                .map_or_else(|| "none".to_string(), ownership_text);
            let after = ownership_text(after);
            (
                "~",
                YELLOW,
                format!("ownership record: {before} -> {after}"),
            )
        }
        Action::SetModelTag {
            key,
            before: None,
            after,
        } => ("+", GREEN, format!("tag {key} = {after:?}")),
        Action::SetModelTag {
            key,
            before: Some(before),
            after,
        } => ("~", YELLOW, format!("tag {key}: {before:?} -> {after:?}")),
        Action::RegisterVersion {
            handle,
            declared_source,
            source,
            ..
        } => {
            let mut text = format!("register version ({handle}) from {declared_source}");
            if source != declared_source {
                let _ = write!(text, " as {source}");
            }
            ("+", GREEN, text)
        }
        Action::UpdateVersionDescription {
            version,
            before,
            after,
        } => (
            "~",
            YELLOW,
            format!("version {version} description: {before:?} -> {after:?}"),
        ),
        Action::SetVersionTag {
            version,
            key,
            before: None,
            after,
        } => (
            "+",
            GREEN,
            format!("version {version} tag {key} = {after:?}"),
        ),
        Action::SetVersionTag {
            version,
            key,
            before: Some(before),
            after,
        } => (
            "~",
            YELLOW,
            format!("version {version} tag {key}: {before:?} -> {after:?}"),
        ),
        Action::TransitionStage {
            version,
            from,
            to,
            holders,
            ..
        } => {
            let mut text = format!("stage {to}: {} -> {version}", holders_text(holders));
            if *from != Stage::None {
                let _ = write!(text, " (from {from})");
            }
            ("~", YELLOW, text)
        }
        Action::SetAlias {
            alias,
            version,
            before,
            ..
        } => {
            let before = before.map_or_else(|| "none".to_string(), |b| b.to_string());
            let sign = if before == "none" { "+" } else { "~" };
            (
                sign,
                YELLOW,
                format!("alias {alias}: {before} -> {}", short_target(version)),
            )
        }
        Action::ArchiveVersion {
            version,
            from,
            replaced_by: Some(_),
        } => ("-", RED, format!("archive version {version} (was {from})")),
        Action::ArchiveVersion {
            version,
            from,
            replaced_by: None,
        } => (
            "-",
            RED,
            format!("archive version {version} (was {from}, no longer declared)"),
        ),
        Action::DeleteAlias { alias, before } => {
            ("-", RED, format!("delete alias {alias} (was {before})"))
        }
    }
}

/// Extra lines: what a created model or registered version starts with.
fn details(action: &Action) -> Vec<String> {
    let (description, tag_map) = match action {
        Action::CreateModel { description, tags } => (description, tags),
        Action::RegisterVersion {
            description, tags, ..
        } => (description, tags),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    if let Some(d) = description {
        out.push(format!("description {d:?}"));
    }
    for (k, v) in tag_map {
        // The source tag is implied by `from ...`.
        if k == tags::MANAGED {
            out.push(format!("ownership record: {}", ownership_text(v)));
        } else if k != tags::SOURCE {
            out.push(format!("tag {k} = {v:?}"));
        }
    }
    out
}

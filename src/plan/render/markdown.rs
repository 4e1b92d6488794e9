//! Markdown rendering for a pull-request comment: a summary line, a summary
//! table, then a section per model with a table of its changes and the gate
//! results. Models with many changes are collapsed in `<details>`, and the
//! whole comment stays under [`MARKDOWN_LIMIT`] characters, truncated with a
//! note saying what was left out.

use std::fmt::Write as _;

use super::{Summary, blocked_count, experiment_action, holders_text, ownership_text, plural};
use crate::plan::{Action, ExperimentPlan, GateStatus, ModelPlan, Plan, tags};

/// The most characters a comment may have (GitHub allows 65,536).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Models with more actions than this are collapsed.
const COLLAPSE_OVER: usize = 10;

/// Room kept for the truncation note.
const RESERVE: usize = 600;

/// Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let summary = Summary::of(plan);
    let mut out = String::from("## modelsync plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary.line());
    if plan.models.is_empty() && plan.experiments.is_empty() {
        return out;
    }
    let mut sections = Vec::new();
    let mut rows = Vec::new();
    for mp in &plan.models {
        let blocked = blocked_count(&mp.actions);
        let changes = if mp.errors.is_empty() {
            mp.actions.len().to_string()
        } else {
            "error".to_string()
        };
        rows.push(format!("| {} | {changes} | {blocked} |\n", code(&mp.model)));
        sections.push((true, model_section(mp)));
    }
    for ep in &plan.experiments {
        let changes = if ep.errors.is_empty() {
            ep.actions.len().to_string()
        } else {
            "error".to_string()
        };
        rows.push(format!(
            "| experiment {} | {changes} | 0 |\n",
            code(&ep.experiment),
        ));
        sections.push((false, experiment_section(ep)));
    }
    out.push_str("| model | changes | blocked |\n| --- | ---: | ---: |\n");
    let mut shown_rows = 0;
    for row in &rows {
        if out.len() + row.len() + RESERVE > MARKDOWN_LIMIT / 2 {
            break;
        }
        out.push_str(row);
        shown_rows += 1;
    }
    if shown_rows < rows.len() {
        let _ = writeln!(out, "| … and {} more | | |", rows.len() - shown_rows);
    }
    out.push('\n');
    let mut omitted = (0, 0);
    for (is_model, section) in &sections {
        let fits = out.len() + section.len() + RESERVE <= MARKDOWN_LIMIT;
        if omitted == (0, 0) && fits {
            out.push_str(section);
            continue;
        }
        if *is_model {
            omitted.0 += 1;
        } else {
            omitted.1 += 1;
        }
    }
    if omitted != (0, 0) {
        out.push_str(&truncation_note(omitted.0, omitted.1));
    }
    out
}

fn truncation_note(models: usize, experiments: usize) -> String {
    let mut what = Vec::new();
    if models > 0 {
        what.push(format!("{models} {}", plural(models, "model", "models")));
    }
    if experiments > 0 {
        what.push(format!(
            "{experiments} {}",
            plural(experiments, "experiment", "experiments")
        ));
    }
    format!(
        "> [!NOTE]\n> This comment was truncated to stay under 65,000 characters: \
         {} not shown. Run `modelsync plan` for the full plan.\n",
        what.join(" and ")
    )
}

fn model_section(mp: &ModelPlan) -> String {
    let mut s = format!("### {}\n\n", code(&mp.model));
    for e in &mp.errors {
        let _ = writeln!(s, "- :x: **error:** {}", cell(e));
    }
    if !mp.errors.is_empty() {
        s.push('\n');
    }
    if mp.actions.is_empty() {
        return s;
    }
    let mut table = String::from("| what | from | to | gates |\n| --- | --- | --- | --- |\n");
    for action in &mp.actions {
        let (what, from, to) = row(action);
        let what = if action.is_blocked() {
            format!(":no_entry: **blocked:** {what}")
        } else {
            what
        };
        let _ = writeln!(table, "| {what} | {from} | {to} | {} |", gates(action));
    }
    if mp.actions.len() > COLLAPSE_OVER {
        let _ = write!(
            s,
            "<details><summary>{} changes</summary>\n\n{table}\n</details>\n\n",
            mp.actions.len()
        );
    } else {
        s.push_str(&table);
        s.push('\n');
    }
    s
}

fn experiment_section(ep: &ExperimentPlan) -> String {
    let mut s = format!("### experiment {}\n\n", code(&ep.experiment));
    for e in &ep.errors {
        let _ = writeln!(s, "- :x: **error:** {}", cell(e));
    }
    for w in &ep.warnings {
        let _ = writeln!(s, "- :warning: **warning:** {}", cell(w));
    }
    for a in &ep.actions {
        let _ = writeln!(s, "- {}", cell(&experiment_action(a)));
    }
    s.push('\n');
    s
}

/// The `what`, `from` and `to` cells of an action.
fn row(action: &Action) -> (String, String, String) {
    let quoted = |s: &str| cell(&format!("{s:?}"));
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "—".to_string(), quoted);
    match action {
        Action::CreateModel { description, .. } => {
            ("create model".into(), "—".into(), opt(description))
        }
        Action::UpdateModelDescription { before, after } => {
            ("description".into(), quoted(before), quoted(after))
        }
        Action::SetModelTag { key, before, after } if key == tags::MANAGED => (
            "ownership record".into(),
            before
                .as_deref()
                .map_or_else(|| "—".to_string(), |b| cell(&ownership_text(b))),
            cell(&ownership_text(after)),
        ),
        Action::SetModelTag { key, before, after } => {
            (format!("tag {}", code(key)), opt(before), quoted(after))
        }
        Action::RegisterVersion {
            handle,
            declared_source,
            ..
        } => (
            format!("register version {}", code(handle)),
            "—".into(),
            code(declared_source),
        ),
        Action::UpdateVersionDescription {
            version,
            before,
            after,
        } => (
            format!("version {version} description"),
            quoted(before),
            quoted(after),
        ),
        Action::SetVersionTag {
            version,
            key,
            before,
            after,
        } => (
            format!("version {version} tag {}", code(key)),
            opt(before),
            quoted(after),
        ),
        Action::TransitionStage {
            version,
            to,
            holders,
            ..
        } => (
            format!("stage **{to}**"),
            holders_text(holders),
            cell(&version.to_string()),
        ),
        Action::SetAlias {
            alias,
            version,
            before,
            ..
        } => (
            format!("alias **@{}**", cell(alias)),
            before.map_or_else(|| "—".to_string(), |b| format!("version {b}")),
            cell(&version.to_string()),
        ),
        Action::ArchiveVersion {
            version,
            from,
            replaced_by,
        } => (
            if replaced_by.is_some() {
                format!("archive version {version}")
            } else {
                format!("archive version {version} (pruned)")
            },
            from.to_string(),
            "Archived".into(),
        ),
        Action::DeleteAlias { alias, before } => (
            format!("delete alias **@{}** (pruned)", cell(alias)),
            format!("version {before}"),
            "—".into(),
        ),
    }
}

/// The gate results of a move, one per line.
fn gates(action: &Action) -> String {
    let lines: Vec<String> = action
        .gates()
        .iter()
        .map(|g| {
            let mark = match g.status {
                GateStatus::Passed => ":white_check_mark:",
                GateStatus::Blocked => ":x:",
            };
            format!("{mark} {}: {}", code(&g.gate), cell(&g.detail))
        })
        .collect();
    lines.join("<br>")
}

/// Text safe inside a table cell: no pipes, no line breaks, no HTML.
fn cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\r', "")
        .replace('\n', "<br>")
}

/// An inline code span (plain escaped text when it holds a backtick).
fn code(s: &str) -> String {
    if s.contains('`') || s.contains('\n') || s.contains('|') {
        cell(s)
    } else {
        format!("`{s}`")
    }
}

//! Markdown rendering for a pull-request comment: a summary line, a summary
//! table, then a section per model with a table of its changes (worded by
//! [`describe`]) and the gate results. Models with many changes are
//! collapsed in `<details>`, and the whole comment stays under
//! [`MARKDOWN_LIMIT`] characters, truncated with a note saying what was
//! left out.

use std::fmt::Write as _;

use super::{Summary, blocked_count, plural};
use crate::plan::access::AccessPlan;
use crate::plan::prompts::{PromptAction, PromptPlan};
use crate::plan::{Action, ExperimentPlan, GateStatus, ModelPlan, Plan, describe};

/// The most characters a comment may have (GitHub allows 65,536).
pub const MARKDOWN_LIMIT: usize = 65_000;

/// Models with more actions than this are collapsed.
const COLLAPSE_OVER: usize = 10;

/// Room kept for the truncation note.
const RESERVE: usize = 600;

/// Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = registry_part(plan);
    out.push_str(&super::outputs::markdown(&plan.outputs));
    out
}

/// The registry's changes, within GitHub's limit.
fn registry_part(plan: &Plan) -> String {
    let summary = Summary::of(plan);
    let mut out = String::from("## modelsync plan\n\n");
    let _ = writeln!(out, "**{}**\n", summary.line());
    if let Some(targets) = &plan.targets {
        let _ = writeln!(out, "_{}_\n", super::targeted_line(targets, code));
    }
    if plan.models.is_empty()
        && plan.experiments.is_empty()
        && plan.prompts.is_empty()
        && plan.access.is_empty()
    {
        return out;
    }
    let (rows, sections) = rows_and_sections(plan);
    push_table(&mut out, &rows);
    push_sections(&mut out, &sections);
    out
}

/// The summary table's row and the section of each model, experiment,
/// prompt and access policy, in that order.
fn rows_and_sections(plan: &Plan) -> (Vec<String>, Vec<(Kind, String)>) {
    let changes = |errors: &[String], actions: usize| match errors.is_empty() {
        true => actions.to_string(),
        false => "error".to_string(),
    };
    let mut sections = Vec::new();
    let mut rows = Vec::new();
    for mp in &plan.models {
        let blocked = blocked_count(&mp.actions);
        let changes = changes(&mp.errors, mp.actions.len());
        rows.push(format!("| {} | {changes} | {blocked} |\n", code(&mp.model)));
        sections.push((Kind::Model, model_section(mp)));
    }
    for ep in &plan.experiments {
        let changes = changes(&ep.errors, ep.actions.len());
        rows.push(format!(
            "| experiment {} | {changes} | 0 |\n",
            code(&ep.experiment),
        ));
        sections.push((Kind::Experiment, experiment_section(ep)));
    }
    for pp in &plan.prompts {
        let changes = changes(&pp.errors, pp.actions.len());
        rows.push(format!("| prompt {} | {changes} | 0 |\n", code(&pp.prompt)));
        sections.push((Kind::Prompt, prompt_section(pp)));
    }
    for ap in &plan.access {
        let changes = changes(&ap.errors, ap.actions.len());
        rows.push(format!("| access {} | {changes} | 0 |\n", code(&ap.model)));
        sections.push((Kind::Access, access_section(ap)));
    }
    (rows, sections)
}

/// The summary table: as many rows as fit in half the limit, then how
/// many more there are.
fn push_table(out: &mut String, rows: &[String]) {
    out.push_str("| model | changes | blocked |\n| --- | ---: | ---: |\n");
    let mut shown_rows = 0;
    for row in rows {
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
}

/// The sections, in order, up to the first that does not fit; a note
/// counts the ones left out by kind.
fn push_sections(out: &mut String, sections: &[(Kind, String)]) {
    let mut omitted = [0usize; 4];
    for (kind, section) in sections {
        let fits = out.len() + section.len() + RESERVE <= MARKDOWN_LIMIT;
        if omitted == [0; 4] && fits {
            out.push_str(section);
            continue;
        }
        omitted[*kind as usize] += 1;
    }
    if omitted != [0; 4] {
        out.push_str(&truncation_note(omitted));
    }
}

/// What a section is about.
#[derive(Clone, Copy)]
enum Kind {
    Model = 0,
    Experiment = 1,
    Prompt = 2,
    Access = 3,
}

fn truncation_note(omitted: [usize; 4]) -> String {
    let names = [
        ("model", "models"),
        ("experiment", "experiments"),
        ("prompt", "prompts"),
        ("model's permissions", "models' permissions"),
    ];
    let what: Vec<String> = omitted
        .iter()
        .zip(names)
        .filter(|(n, _)| **n > 0)
        .map(|(n, (one, many))| format!("{n} {}", plural(*n, one, many)))
        .collect();
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
    for h in &mp.held {
        let _ = writeln!(s, "- :pause_button: **held:** {}", cell(&describe::held(h)));
    }
    if !mp.errors.is_empty() || !mp.held.is_empty() {
        s.push('\n');
    }
    if mp.actions.is_empty() {
        return s;
    }
    let mut table = String::from("| change | gates |\n| --- | --- |\n");
    for action in &mp.actions {
        let mut change = cell(&describe::action(action));
        for detail in describe::details(action) {
            change.push_str("<br>");
            change.push_str(&cell(&detail));
        }
        let change = if action.is_blocked() {
            format!(":no_entry: **blocked:** {change}")
        } else {
            change
        };
        let _ = writeln!(table, "| {change} | {} |", gates(action));
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
        let _ = writeln!(s, "- {}", cell(&describe::experiment_action(a)));
    }
    s.push('\n');
    s
}

/// A prompt's changes; an alias move shows its template diff in a `diff`
/// block.
fn prompt_section(pp: &PromptPlan) -> String {
    let mut s = format!("### prompt {}\n\n", code(&pp.prompt));
    for e in &pp.errors {
        let _ = writeln!(s, "- :x: **error:** {}", cell(e));
    }
    if !pp.warnings.is_empty() {
        s.push_str("> [!WARNING]\n> A template contains hidden or bidirectional Unicode characters: it may read differently than it displays below.\n\n");
    }
    for w in &pp.warnings {
        let _ = writeln!(s, "- :warning: **warning:** {}", cell(w));
    }
    for a in &pp.actions {
        let _ = writeln!(s, "- {}", cell(&describe::prompt_action(a)));
        if let PromptAction::SetAlias { diff, .. } = a
            && !diff.is_empty()
        {
            let fence = if diff.contains("```") { "~~~~" } else { "```" };
            let _ = write!(s, "\n  {fence}diff\n");
            for line in diff.lines() {
                let _ = writeln!(s, "  {line}");
            }
            let _ = writeln!(s, "  {fence}\n");
        }
    }
    s.push('\n');
    s
}

/// A model's permission changes (`kind: AccessPolicy`), its refusals and
/// the holes in its protection.
fn access_section(ap: &AccessPlan) -> String {
    let mut s = format!("### access {}\n\n", code(&ap.model));
    for e in &ap.errors {
        let _ = writeln!(s, "- :x: **refused:** {}", cell(e));
    }
    for w in &ap.warnings {
        let _ = writeln!(s, "- :warning: **warning:** {}", cell(w));
    }
    for a in &ap.actions {
        let _ = writeln!(s, "- {}", cell(&describe::access_action(a)));
    }
    s.push('\n');
    s
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
                GateStatus::Overridden => ":warning:",
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

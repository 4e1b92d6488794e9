//! The outputs part of a plan (`Plan::outputs`): per output, each marked
//! field that would change (file:line, marker, old -> new) and every
//! problem, in text and Markdown.

use std::fmt::Write;

use crate::outputs::{Report, Written};

/// At most this many changes are listed per output in Markdown.
const MARKDOWN_CHANGES: usize = 50;

/// Text lines: `output REPO@BRANCH:PATH`, then `  ~ change` or
/// `  error: …` lines; `(sign, line)` pairs for the caller to colour.
pub fn text_lines(report: &Report) -> Vec<(&'static str, String)> {
    let mut lines = vec![("", format!("output {}", report.output))];
    for c in &report.changes {
        lines.push(("~", format!("  ~ {c}")));
    }
    match &report.result {
        Written::Failed { error } => {
            for e in error.lines() {
                lines.push(("error", format!("  error: {e}")));
            }
        }
        Written::Unchanged => lines.push(("", "  (every marked field is up to date)".into())),
        _ => {}
    }
    lines
}

/// A Markdown section for every output.
pub fn markdown(outputs: &[Report]) -> String {
    if outputs.is_empty() {
        return String::new();
    }
    let mut s = String::from("### Outputs\n\n");
    for r in outputs {
        let _ = writeln!(s, "`{}`\n", r.output.replace('`', "'"));
        for c in r.changes.iter().take(MARKDOWN_CHANGES) {
            let _ = writeln!(
                s,
                "- `{}:{}` `{}`: `{}` → `{}`",
                c.file, c.line, c.marker, c.old, c.new
            );
        }
        if r.changes.len() > MARKDOWN_CHANGES {
            let _ = writeln!(s, "- … and {} more", r.changes.len() - MARKDOWN_CHANGES);
        }
        match &r.result {
            Written::Failed { error } => {
                for e in error.lines() {
                    let _ = writeln!(s, "- **error:** {e}");
                }
            }
            Written::Unchanged => s.push_str("- every marked field is up to date\n"),
            _ => {}
        }
        s.push('\n');
    }
    s
}

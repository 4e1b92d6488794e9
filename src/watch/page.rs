//! The status page: `GET /` and `GET /models/NAME`, HTML rendered on the
//! server (maud escapes every interpolated value), no JavaScript; the page
//! reloads itself with `<meta http-equiv="refresh">`.
//!
//! `/` shows every declared model (stage holders and aliases with their
//! versions and sources, in sync / drifted / blocked / failed with why),
//! the last applied and attempted revisions (commit, author, time), the
//! last error (manifest problems with file:line:column), a refused
//! unsigned commit, and the recent actions. `/models/NAME` shows the
//! promotions the model's audit tags record (what `modelsync history`
//! prints), from the registry as read at the last pass.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::App;
use super::models::{Holder, ModelState, ModelView};
use super::status::{Status, now_rfc3339};
use crate::source::git::CommitInfo;
use crate::state::history::{Promotion, promotions};

/// Seconds between reloads.
const REFRESH: u32 = 10;

const CSS: &str = "
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#f7f8fa}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #d8dce3;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#eef0f4}code{font-size:.85rem}.muted{color:#667}
.badge{display:inline-block;padding:.1rem .45rem;border-radius:.6rem;font-weight:600;font-size:.8rem}
.in_sync{background:#d7f5dd;color:#145c25}.drifted{background:#fff1c7;color:#6b4b00}
.blocked{background:#ffe0c2;color:#7a3300}.failed{background:#ffd6d6;color:#8a0d0d}
.frozen{background:#d6e4ff;color:#0d2f8a}.held{background:#fff3bf;color:#6b5200}
.alert{border:1px solid #e3a0a0;background:#fff0f0;padding:.6rem .8rem;margin:.8rem 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}dt{font-weight:600}
";

/// `GET /`.
pub async fn index(State(app): State<App>) -> impl IntoResponse {
    let status = app.shared.lock().status.clone();
    Html(render_index(&status).into_string())
}

/// `GET /models/NAME`.
pub async fn model(State(app): State<App>, Path(name): Path<String>) -> impl IntoResponse {
    let (view, live) = {
        let state = app.shared.lock();
        let view = state.status.models.iter().find(|m| m.name == name).cloned();
        (view, state.live.get(&name).cloned())
    };
    match view {
        Some(view) => {
            let events = live.as_ref().map(promotions).unwrap_or_default();
            (StatusCode::OK, Html(render_model(&view, &events).into_string()))
        }
        None => (
            StatusCode::NOT_FOUND,
            Html(
                page(
                    "unknown model",
                    html! { p { "No declared model named " code { (name) } ". " a href="/" { "All models" } } },
                )
                .into_string(),
            ),
        ),
    }
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "modelsync: " (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                (body)
                p.muted { "Rendered " (now_rfc3339()) "; reloads every " (REFRESH) " s." }
            }
        }
    }
}

/// The whole index page.
pub fn render_index(s: &Status) -> Markup {
    page(
        "status",
        html! {
            h1 { "modelsync" }
            p.muted {
                "Source " code { (s.source) } " · registry " code { (s.registry) }
                " · drift " (s.drift_mode) " · " (s.reconciles) " reconcile(s)"
            }
            (signature(s))
            (last_error(s))
            h2 { "Revisions" }
            dl id="revisions" {
                dt { "Last applied" }
                dd id="last-applied" { (revision(s.last_applied_revision.as_deref(), s.last_applied_commit.as_ref())) }
                dt { "Last attempted" }
                dd id="last-attempted" { (revision(s.last_attempted_revision.as_deref(), s.last_attempted_commit.as_ref())) }
            }
            h2 { "Models" }
            (models_table(&s.models))
            @if s.pending_drift.count > 0 {
                h2 { "Drift not repaired (--drift warn)" }
                ul id="drift" { @for a in &s.pending_drift.actions { li { (a) } } }
            }
            h2 { "Recent actions" }
            (recent(s))
        },
    )
}

fn signature(s: &Status) -> Markup {
    html! {
        @if let Some(sig) = s.signature.as_ref().filter(|g| !g.verified) {
            div.alert id="signature" {
                strong { "Commit " code { (sig.commit) } " not applied: " }
                (sig.reason.as_deref().unwrap_or("its signature did not verify"))
                @if let Some(who) = &sig.signer { " (signer " code { (who) } ")" }
                ". The last verified revision stays applied."
            }
        }
    }
}

fn last_error(s: &Status) -> Markup {
    html! {
        @if let Some(e) = &s.last_error {
            div.alert id="last-error" {
                strong { "Last error (" (e.kind) ", " (e.at) "): " } (e.message)
                @if !e.diagnostics.is_empty() {
                    ul { @for d in &e.diagnostics { li { code { (d) } } } }
                }
            }
        }
    }
}

fn revision(id: Option<&str>, commit: Option<&CommitInfo>) -> Markup {
    html! {
        @match (id, commit) {
            (_, Some(c)) => { code { (c.id) } " by " (c.author) " at " (c.time) " — " (c.summary) }
            (Some(id), None) => { code { (id) } }
            (None, None) => { span.muted { "none yet" } }
        }
    }
}

fn models_table(models: &[ModelView]) -> Markup {
    html! {
        @if models.is_empty() {
            p.muted { "No models yet." }
        } @else {
            table id="models" {
                thead { tr { th { "Model" } th { "State" } th { "Stages" } th { "Aliases" } th { "Why" } th { "Reconciled" } } }
                tbody {
                    @for m in models {
                        tr.model id={ "model-" (m.name) } data-state=(m.state.as_str()) {
                            td {
                                @if m.kind == "prompt" { span.muted { "prompt " } (m.name) }
                                @else { a href={ "/models/" (urlencode(&m.name)) } { (m.name) } }
                            }
                            td { span class={ "badge " (m.state.as_str()) } { (m.state.as_str().replace('_', " ")) } }
                            td { (holders(&m.stages)) }
                            td { (holders(&m.aliases)) }
                            td.why { (why(&m.state)) }
                            td.reconciled { (m.last_reconciled.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
    }
}

fn holders(hs: &[Holder]) -> Markup {
    html! {
        @for h in hs {
            div.holder {
                strong { (h.target) } ": version " (h.version)
                @if !h.source.is_empty() { " " code.muted { (h.source) } }
                @if let Some(v) = &h.verification {
                    " " span.verification { (v) }
                }
                @if !h.approved_by.is_empty() {
                    " " span.approvers { "approved by " (h.approved_by.join(", ")) }
                }
            }
        }
        @if hs.is_empty() { span.muted { "—" } }
    }
}

fn why(state: &ModelState) -> Markup {
    html! {
        @match state {
            ModelState::InSync => {}
            ModelState::Drifted { actions } => { ul { @for a in actions { li { (a) } } } }
            ModelState::Blocked { action, gate, observed } => {
                (action) ": gate " code.gate { (gate) }
                @if !observed.is_empty() { " observed " code.observed { (observed) } }
            }
            ModelState::Failed { error } => { span.error { (error) } }
            ModelState::Frozen { action, freeze } => {
                (action) ": " span.error { (freeze) }
            }
            ModelState::Held { holds } => { ul { @for h in holds { li { (h) } } } }
        }
    }
}

fn recent(s: &Status) -> Markup {
    html! {
        @if s.recent_actions.is_empty() {
            p.muted { "No actions yet." }
        } @else {
            table id="recent" {
                thead { tr { th { "When" } th { "Revision" } th { "Object" } th { "Action" } th { "Result" } } }
                tbody {
                    @for a in &s.recent_actions {
                        tr {
                            td { (a.at) }
                            td { code { (short(&a.revision)) } }
                            td { (a.result.object) }
                            td { (a.result.action) }
                            td { (outcome(&a.result.outcome)) }
                        }
                    }
                }
            }
        }
    }
}

fn outcome(o: &crate::apply::Outcome) -> Markup {
    use crate::apply::Outcome::*;
    html! {
        @match o {
            Applied => { "ok" }
            Failed(r) | Conflict(r) => { span.failed { "failed: " (r) } }
            Blocked(r) => { span.blocked { "blocked: " (r) } }
            Skipped(r) => { span.muted { "skipped: " (r) } }
        }
    }
}

/// `/models/NAME`.
pub fn render_model(view: &ModelView, events: &[Promotion]) -> Markup {
    page(
        &view.name,
        html! {
            p { a href="/" { "← all models" } }
            h1 { (view.name) " " span class={ "badge " (view.state.as_str()) } { (view.state.as_str().replace('_', " ")) } }
            p { (why(&view.state)) }
            @if let Some(at) = &view.last_reconciled { p.muted id="reconciled" { "Last reconciled " (at) } }
            h2 { "Now" }
            (holders(&view.stages))
            (holders(&view.aliases))
            h2 { "Promotion history (audit tags)" }
            @if events.is_empty() {
                p.muted id="history" { "No promotions of " (view.name) " recorded by modelsync." }
            } @else {
                table id="history" {
                    thead { tr { th { "When" } th { "Target" } th { "Version" } th { "Replaced" } th { "Approved by" } th { "Revision" } } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (e.at) } td { (e.target) } td { (e.version) }
                                td { @if let Some(p) = e.previous { (p) } }
                                td { (e.approved_by.join(", ")) }
                                td { @if let Some(r) = &e.revision { code { (r) } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A commit's first 12 hex digits; a folder digest's first 12 after `sha256:`.
fn short(rev: &str) -> &str {
    match rev.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => &rev[..19],
        _ if rev.len() == 40 => &rev[..12],
        _ => rev,
    }
}

/// Percent-encodes a path segment (model names may hold spaces, `%`, …).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_from_manifests_and_registry_is_escaped() {
        let s = Status {
            source: "<b>src</b>".into(),
            models: vec![ModelView {
                name: "m<script>".into(),
                kind: "model",
                state: ModelState::Failed {
                    error: "<img src=x onerror=alert(1)>".into(),
                },
                stages: vec![Holder {
                    target: "Production".into(),
                    version: 1,
                    source: "s3://b/\"><script>alert(1)</script>".into(),
                    approved_by: vec!["<script>eve</script>".into()],
                    verification: Some("failed at x: <script>bad</script>".into()),
                }],
                aliases: vec![],
                last_reconciled: None,
            }],
            ..Status::default()
        };
        let html = render_index(&s).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>src"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("href=\"/models/m%3Cscript%3E\""), "{html}");
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    }

    #[test]
    fn holders_and_history_name_the_approvers() {
        let view = ModelView {
            name: "m".into(),
            kind: "model",
            state: ModelState::InSync,
            stages: vec![Holder {
                target: "Production".into(),
                version: 2,
                source: "s3://b/m/2".into(),
                approved_by: vec!["alice".into(), "bob@example.com".into()],
                verification: Some("verified at 2026-05-01T12:00:00Z".into()),
            }],
            aliases: vec![],
            last_reconciled: Some("2026-05-01T12:00:01Z".into()),
        };
        let events = [Promotion {
            at: "2026-05-01T12:00:00Z".into(),
            target: "Production".into(),
            version: 2,
            previous: Some(1),
            approved_by: vec!["alice".into(), "bob@example.com".into()],
            revision: None,
            rollback: false,
            break_glass: false,
            by: None,
            reason: None,
            verification: None,
        }];
        let html = render_model(&view, &events).into_string();
        assert!(
            html.contains("approved by alice, bob@example.com"),
            "{html}"
        );
        assert!(html.contains("<td>alice, bob@example.com</td>"), "{html}");
        assert!(
            html.contains("<span class=\"verification\">verified at 2026-05-01T12:00:00Z</span>"),
            "{html}"
        );
        assert!(
            html.contains("Last reconciled 2026-05-01T12:00:01Z"),
            "{html}"
        );
        let s = Status {
            models: vec![view],
            ..Status::default()
        };
        assert!(
            render_index(&s)
                .into_string()
                .contains("approved by alice, bob@example.com")
        );
        assert!(
            render_index(&s)
                .into_string()
                .contains("<td class=\"reconciled\">2026-05-01T12:00:01Z</td>")
        );
    }
}

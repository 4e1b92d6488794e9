//! One description of each action, for people. The text plan, the Markdown
//! plan, apply's result lines and the daemon's logs all word an action
//! through [`action`] (and [`experiment_action`]), so a change reads the
//! same wherever it is shown.
//!
//! A description names what changes and, when it replaces a value, the
//! value now and after: `stage Production: version 3 -> new version
//! (candidate)`, `alias champion: none -> version 4`, `tag team: "a" -> "b"`.
//! Actions that only add or remove read as a verb: `register version
//! (candidate) from runs:/…`, `archive version 2 (was Production)`.

use std::fmt::Write as _;

use super::{Action, ExperimentAction, GateCheck, GateStatus, VersionRef};
use crate::state::Stage;
use crate::state::tags;

/// One line describing a model action.
pub fn action(action: &Action) -> String {
    match action {
        Action::CreateModel { .. } => "create model".to_string(),
        Action::UpdateModelDescription { before, after } => {
            format!("description: {before:?} -> {after:?}")
        }
        Action::SetModelTag { key, before, after } if key == tags::MANAGED => {
            let before = before.as_deref().map_or_else(|| "none".into(), ownership);
            format!("ownership record: {before} -> {}", ownership(after))
        }
        Action::SetModelTag { key, before, after } => tag_change(key, before.as_deref(), after),
        Action::RegisterVersion {
            handle,
            declared_source,
            source,
            ..
        } => register(handle, declared_source, source),
        Action::CopyVersion { handle, from, .. } => copy(handle, from),
        Action::UpdateVersionDescription {
            version,
            before,
            after,
        } => format!("version {version} description: {before:?} -> {after:?}"),
        Action::SetVersionTag {
            version,
            key,
            after,
            ..
        } if key == tags::DIGEST_FILES => {
            format!("version {version} tag {key} = {}", listing(after))
        }
        Action::SetVersionTag {
            version,
            key,
            before,
            after,
        } => format!(
            "version {version} {}",
            tag_change(key, before.as_deref(), after)
        ),
        Action::TransitionStage {
            version,
            from,
            to,
            holders,
            ..
        } => transition(version, *from, *to, holders),
        Action::SetAlias {
            alias,
            version,
            before,
            ..
        } => {
            let before = before.map_or_else(|| "none".to_string(), |b| format!("version {b}"));
            format!("alias {alias}: {before} -> {version}")
        }
        Action::ArchiveVersion {
            version,
            from,
            replaced_by: Some(_),
        } => format!("archive version {version} (was {from})"),
        Action::ArchiveVersion {
            version,
            from,
            replaced_by: None,
        } => format!("archive version {version} (was {from}, no longer declared)"),
        Action::DeleteAlias { alias, before } => {
            format!("delete alias {alias} (was version {before}, no longer declared)")
        }
        Action::ReleaseHold { target, hold } => format!(
            "release hold on {} (the manifests declare version {}; {})",
            target_text(target),
            hold.version,
            hold.describe()
        ),
    }
}

/// `register version (candidate) from runs:/… [as …]`.
fn register(handle: &str, declared_source: &str, source: &str) -> String {
    let mut text = format!("register version ({handle}) from {declared_source}");
    if source != declared_source {
        let _ = write!(text, " as {source}");
    }
    text
}

/// `stage Production: version 2 -> version 3 [(from Staging)]`.
fn transition(version: &VersionRef, from: Stage, to: Stage, holders: &[u64]) -> String {
    let mut text = format!("stage {to}: {} -> {version}", holders_text(holders));
    if from != Stage::None {
        let _ = write!(text, " (from {from})");
    }
    text
}

/// `stage Production` or `alias champion`, for a target's key.
pub fn target_text(target: &str) -> String {
    match Stage::parse(target).filter(|s| s.as_str() == target) {
        Some(s) => format!("stage {s}"),
        None => format!("alias {target}"),
    }
}

/// One line for a move a hold keeps from happening: `alias champion:
/// version 1 held (the manifests declare version 2): version 1, held by
/// alice since …`.
pub fn held(h: &super::Held) -> String {
    let live = h
        .live
        .map_or_else(|| "none".to_string(), |v| format!("version {v}"));
    let declared = match &h.declared {
        Some(t) => format!("the manifests declare {t}"),
        None => "a prune would remove it".to_string(),
    };
    format!(
        "{}: {live} held ({declared}): {}",
        target_text(&h.target),
        h.hold.describe()
    )
}

/// What a created model or registered version starts with (its
/// description and tags), one item per line under the action's line.
pub fn details(action: &Action) -> Vec<String> {
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
            out.push(format!("ownership record: {}", ownership(v)));
        } else if k == tags::DIGEST_FILES {
            out.push(format!("tag {k} = {}", listing(v)));
        } else if k != tags::SOURCE {
            out.push(format!("tag {k} = {v:?}"));
        }
    }
    out
}

/// One `prompt NAME: action` line per action of `plans`: every declared
/// alias that does not point at its template, and every declared template
/// not registered (what is left to do, after an apply, for the
/// verification).
pub fn prompt_lines(plans: &[crate::plan::prompts::PromptPlan]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|p| {
            p.actions
                .iter()
                .map(move |a| format!("prompt {}: {}", p.prompt, prompt_action(a)))
        })
        .collect()
}

/// One `access MODEL: action` line per action of `plans`, for pending
/// and drift reports.
pub fn access_lines(plans: &[crate::plan::access::AccessPlan]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|p| {
            p.actions
                .iter()
                .map(move |a| format!("access {}: {}", p.model, access_action(a)))
        })
        .collect()
}

/// A digest's file listing, shortened to its size (the listing itself is
/// in the tag, one line per file).
fn listing(text: &str) -> String {
    let n = text.lines().count();
    format!("listing of {n} file{}", if n == 1 { "" } else { "s" })
}

/// One line describing a prompt action.
pub fn prompt_action(action: &crate::plan::prompts::PromptAction) -> String {
    use crate::plan::prompts::PromptAction;
    match action {
        PromptAction::CreatePrompt => "create prompt".to_string(),
        PromptAction::RegisterVersion {
            handle, template, ..
        } => {
            let lines = template.lines().count().max(1);
            let chars = template.chars().count();
            let size = format!(
                "{lines} {}, {chars} {}",
                if lines == 1 { "line" } else { "lines" },
                if chars == 1 {
                    "character"
                } else {
                    "characters"
                }
            );
            format!("register version ({handle}): template of {size}")
        }
        PromptAction::SetAlias {
            alias,
            handle,
            version,
            from,
            ..
        } => {
            let to = match version {
                Some(n) => format!("version {n}"),
                None => format!("new version ({handle})"),
            };
            match from {
                Some(f) => format!("alias {alias}: version {f} -> {to}"),
                None => format!("alias {alias}: none -> {to}"),
            }
        }
    }
}

/// One line describing a permission change: `grant user alice READ
/// (policy p)`, `user alice: EDIT -> READ (policy p)`, `revoke user bob
/// EDIT (granted by modelsync, no longer declared)`, `ownership record:
/// none -> user alice READ`.
pub fn access_action(action: &crate::plan::access::AccessAction) -> String {
    use crate::plan::access::AccessAction;
    match action {
        AccessAction::Grant {
            principal,
            level,
            before: None,
            policy,
        } => format!("grant {principal} {level} (policy {policy})"),
        AccessAction::Grant {
            principal,
            level,
            before: Some(b),
            policy,
        } => format!("{principal}: {b} -> {level} (policy {policy})"),
        AccessAction::Revoke { principal, before } => {
            format!("revoke {principal} {before} (granted by modelsync, no longer declared)")
        }
        AccessAction::Record { before, after, .. } => {
            let list = |g: &crate::state::access::Grants| {
                if g.is_empty() {
                    return "none".to_string();
                }
                let items: Vec<String> = g.iter().map(|(p, l)| format!("{p} {l}")).collect();
                items.join(", ")
            };
            let before = before.as_ref().map_or_else(|| "none".to_string(), list);
            format!("ownership record: {before} -> {}", list(after))
        }
    }
}

/// One line describing an experiment action.
pub fn experiment_action(action: &ExperimentAction) -> String {
    match action {
        ExperimentAction::CreateExperiment {
            artifact_location: Some(loc),
            ..
        } => format!("create experiment at {loc}"),
        ExperimentAction::CreateExperiment { .. } => "create experiment".to_string(),
        ExperimentAction::SetExperimentTag { key, before, after } => {
            tag_change(key, before.as_deref(), after)
        }
    }
}

/// Why a move is gate-blocked: each blocking gate with what was observed,
/// `metric accuracy >= 0.9 (accuracy 0.85 < 0.90); …` (the executor's
/// outcome of a blocked move, and of one blocked again at its re-check).
pub fn blocked_gates(checks: &[GateCheck]) -> String {
    checks
        .iter()
        .filter(|c| c.status == GateStatus::Blocked)
        .map(|c| format!("{} ({})", c.gate, c.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `tag k = "v"` for a new tag, `tag k: "a" -> "b"` for a changed one.
fn tag_change(key: &str, before: Option<&str>, after: &str) -> String {
    match before {
        None => format!("tag {key} = {after:?}"),
        Some(before) => format!("tag {key}: {before:?} -> {after:?}"),
    }
}

/// `none`, `version 3`, or `versions 3, 4`.
pub fn holders_text(holders: &[u64]) -> String {
    match holders {
        [] => "none".to_string(),
        [one] => format!("version {one}"),
        many => {
            let nums: Vec<String> = many.iter().map(u64::to_string).collect();
            format!("versions {}", nums.join(", "))
        }
    }
}

/// The ownership inventory tag (`{"aliases":[..],"stages":[..]}`) for
/// people: `aliases challenger, champion; stages Staging, Production`.
pub fn ownership(raw: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(raw) else {
        return format!("{raw:?}");
    };
    let list = |key: &str| {
        let names: Vec<&str> = value
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    format!("aliases {}; stages {}", list("aliases"), list("stages"))
}

/// `copy version 3 of "m" from registry dev (URI) as (handle): run R,
/// N files, SIZE`.
fn copy(handle: &str, from: &crate::state::CopySource) -> String {
    let run = if from.run_id.is_empty() {
        "no run".to_string()
    } else {
        format!("run {}", from.run_id)
    };
    let model_id = from
        .model_id
        .as_deref()
        .map(|m| format!(", logged model {m}"))
        .unwrap_or_default();
    format!(
        "copy version {} of {:?} from registry {} ({}) as ({handle}): {run}{model_id}, {} file(s), {}",
        from.version,
        from.model,
        from.registry,
        from.uri,
        from.files.len(),
        human_bytes(from.bytes())
    )
}

/// A byte count for people: `512 B`, `12.3 kB`, `48.0 MB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::VersionRef;

    #[test]
    fn moves_name_the_target_the_holder_now_and_the_new_one() {
        let stage = Action::TransitionStage {
            version: VersionRef::New("candidate".into()),
            from: Stage::None,
            to: Stage::Production,
            holders: vec![3],
            gates: Vec::new(),
        };
        assert_eq!(
            action(&stage),
            "stage Production: version 3 -> new version (candidate)"
        );
        let alias = Action::SetAlias {
            alias: "champion".into(),
            version: VersionRef::Existing(4),
            before: None,
            gates: Vec::new(),
        };
        assert_eq!(action(&alias), "alias champion: none -> version 4");
        let delete = Action::DeleteAlias {
            alias: "old".into(),
            before: 2,
        };
        assert_eq!(
            action(&delete),
            "delete alias old (was version 2, no longer declared)"
        );
    }

    #[test]
    fn tags_show_new_and_changed_values() {
        let new = Action::SetVersionTag {
            version: 3,
            key: "k".into(),
            before: None,
            after: "v".into(),
        };
        assert_eq!(action(&new), r#"version 3 tag k = "v""#);
        let changed = ExperimentAction::SetExperimentTag {
            key: "k".into(),
            before: Some("a".into()),
            after: "b".into(),
        };
        assert_eq!(experiment_action(&changed), r#"tag k: "a" -> "b""#);
    }
}

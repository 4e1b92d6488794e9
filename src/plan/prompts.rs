//! The plan of one prompt (`kind: Prompt`): which templates to register and
//! which aliases to move, with a unified diff of the template text when an
//! alias moves. Pure, like the rest of `plan/`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{DesiredPrompt, Template};
pub use crate::state::LivePrompt;

/// The actions for one prompt, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptPlan {
    pub prompt: String,
    pub actions: Vec<PromptAction>,
    /// Problems that keep the prompt from being planned (its name is held
    /// by a registered model). A prompt with errors has no actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Hidden or bidirectional Unicode characters in a template the plan
    /// registers or points an alias at (see [`super::hidden`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One step for a prompt, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PromptAction {
    /// Create the prompt (the registered model with MLflow's prompt tag).
    CreatePrompt,
    /// Register a version with this template; no live version has it.
    RegisterVersion {
        handle: String,
        template: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit_message: Option<String>,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        tags: BTreeMap<String, String>,
    },
    /// Point `alias` at the version holding `handle`'s template.
    SetAlias {
        alias: String,
        handle: String,
        /// The version that holds the template now (`None`: registered by
        /// an earlier action of this plan).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
        /// The version it held, if any (observed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u64>,
        /// Unified diff from the template it held to the declared one
        /// (empty when it held none).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        diff: String,
    },
}

impl PromptAction {
    /// A stable short name of the kind of action (for metrics and logs).
    pub fn kind(&self) -> &'static str {
        match self {
            PromptAction::CreatePrompt => "create_prompt",
            PromptAction::RegisterVersion { .. } => "register_prompt_version",
            PromptAction::SetAlias { .. } => "set_prompt_alias",
        }
    }
}

/// The plan of every declared prompt with an action or a problem, by name.
pub fn plan_prompts(
    desired: &BTreeMap<String, DesiredPrompt>,
    live: &BTreeMap<String, LivePrompt>,
) -> Vec<PromptPlan> {
    desired
        .iter()
        .filter_map(|(name, d)| {
            let l = live.get(name);
            if l.is_some_and(|l| l.not_a_prompt) {
                return Some(PromptPlan {
                    prompt: name.clone(),
                    actions: Vec::new(),
                    errors: vec![format!(
                        "\"{name}\" is a registered model, not a prompt: modelsync will not touch it as one"
                    )],
                    warnings: Vec::new(),
                });
            }
            let actions = plan_prompt(d, l);
            (!actions.is_empty()).then(|| PromptPlan {
                prompt: name.clone(),
                warnings: hidden_characters(d, &actions),
                actions,
                errors: Vec::new(),
            })
        })
        .collect()
}

/// The actions for `desired` against `live` (`None`: the prompt does not
/// exist). A template already registered is never registered again; when
/// several live versions hold it, the newest is used.
pub fn plan_prompt(desired: &DesiredPrompt, live: Option<&LivePrompt>) -> Vec<PromptAction> {
    let empty = LivePrompt::default();
    let mut actions = Vec::new();
    if live.is_none() {
        actions.push(PromptAction::CreatePrompt);
    }
    let live = live.unwrap_or(&empty);
    let mut registered: Vec<&str> = Vec::new();
    for (handle, v) in &desired.versions {
        let text = v.template.text().unwrap_or_default();
        if live.holder(text).is_none() && !registered.contains(&text) {
            registered.push(text);
            actions.push(PromptAction::RegisterVersion {
                handle: handle.clone(),
                template: text.to_string(),
                commit_message: v.commit_message.clone(),
                tags: v.tags.clone(),
            });
        }
    }
    for (alias, handle) in &desired.aliases {
        let text = desired.versions[handle].template.text().unwrap_or_default();
        let from = live.aliases.get(alias).copied();
        let held = from.and_then(|n| live.versions.get(&n));
        if held.is_some_and(|t| t == text) {
            continue;
        }
        let diff = held
            .map(|old| template_diff(alias, old, text))
            .unwrap_or_default();
        actions.push(PromptAction::SetAlias {
            alias: alias.clone(),
            handle: registered_handle(desired, handle, text),
            version: live.holder(text),
            from,
            diff,
        });
    }
    actions
}

/// The warnings for the hidden characters in the templates `actions`
/// register or point an alias at, each template once.
fn hidden_characters(desired: &DesiredPrompt, actions: &[PromptAction]) -> Vec<String> {
    let mut handles: Vec<&str> = Vec::new();
    for action in actions {
        if let PromptAction::RegisterVersion { handle, .. } | PromptAction::SetAlias { handle, .. } =
            action
            && !handles.contains(&handle.as_str())
        {
            handles.push(handle);
        }
    }
    let mut texts: Vec<&str> = Vec::new();
    let mut warnings = Vec::new();
    for handle in handles {
        let Some(v) = desired.versions.get(handle) else {
            continue;
        };
        let text = v.template.text().unwrap_or_default();
        if texts.contains(&text) {
            continue;
        }
        texts.push(text);
        let what = match &v.template {
            Template::File { path, .. } => format!("template of {handle} ({path})"),
            Template::Text(_) => format!("template of {handle}"),
        };
        warnings.extend(super::hidden::warnings(&what, text));
    }
    warnings
}

/// The handle whose registration creates `text` (the first declaring it),
/// so that an alias names the action that registers its version.
fn registered_handle(desired: &DesiredPrompt, handle: &str, text: &str) -> String {
    desired
        .versions
        .iter()
        .find(|(_, v)| v.template.text() == Some(text))
        .map_or(handle, |(h, _)| h.as_str())
        .to_string()
}

/// A unified diff of two templates, line by line.
pub fn template_diff(alias: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{alias} (live)"), &format!("{alias} (declared)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{DesiredPromptVersion, Origin};
    use std::collections::BTreeMap;

    fn desired(versions: &[(&str, &str)], aliases: &[(&str, &str)]) -> DesiredPrompt {
        DesiredPrompt {
            name: "summarize".into(),
            origin: Origin::default(),
            versions: versions
                .iter()
                .map(|(h, t)| {
                    let v = DesiredPromptVersion {
                        handle: h.to_string(),
                        origin: Origin::default(),
                        template: Template::Text(t.to_string()),
                        commit_message: None,
                        tags: BTreeMap::new(),
                    };
                    (h.to_string(), v)
                })
                .collect(),
            aliases: aliases
                .iter()
                .map(|(a, h)| (a.to_string(), h.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_new_prompt_is_created_registered_and_aliased() {
        let d = desired(&[("v1", "Hi {{name}}")], &[("production", "v1")]);
        let actions = plan_prompt(&d, None);
        assert_eq!(actions.len(), 3);
        assert_eq!(actions[0], PromptAction::CreatePrompt);
        assert!(
            matches!(&actions[2], PromptAction::SetAlias { diff, from: None, .. } if diff.is_empty())
        );
    }

    #[test]
    fn a_registered_template_is_not_registered_again() {
        let d = desired(&[("v1", "Hi {{name}}")], &[("production", "v1")]);
        let live = LivePrompt {
            versions: BTreeMap::from([(1, "Hi {{name}}".to_string())]),
            aliases: BTreeMap::from([("production".to_string(), 1)]),
            not_a_prompt: false,
        };
        assert!(plan_prompt(&d, Some(&live)).is_empty());
    }

    #[test]
    fn a_moved_alias_shows_the_template_diff() {
        let d = desired(
            &[
                ("v1", "Hi {{name}}\nBye\n"),
                ("v2", "Hello {{name}}\nBye\n"),
            ],
            &[("production", "v2")],
        );
        let live = LivePrompt {
            versions: BTreeMap::from([(1, "Hi {{name}}\nBye\n".to_string())]),
            aliases: BTreeMap::from([("production".to_string(), 1)]),
            not_a_prompt: false,
        };
        let actions = plan_prompt(&d, Some(&live));
        assert!(
            matches!(&actions[0], PromptAction::RegisterVersion { handle, .. } if handle == "v2"),
            "{actions:?}"
        );
        let PromptAction::SetAlias { diff, from, .. } = &actions[1] else {
            panic!("an alias move: {actions:?}");
        };
        assert_eq!(*from, Some(1));
        assert_eq!(
            diff,
            "--- production (live)\n+++ production (declared)\n@@ -1,2 +1,2 @@\n-Hi {{name}}\n+Hello {{name}}\n Bye\n"
        );
    }

    #[test]
    fn an_exported_prompt_plans_to_no_changes() {
        let live = LivePrompt {
            versions: BTreeMap::from([
                (1, "Hi {{name}}".to_string()),
                (
                    2,
                    "Line one: {{a}}\n  - indented # not a comment\n\ntrailing\n".to_string(),
                ),
                (3, "Hi {{name}}".to_string()),
                (4, "'quoted' \"double\" *star* &amp; ~ null".to_string()),
            ]),
            aliases: BTreeMap::from([("production".to_string(), 1), ("staging".to_string(), 2)]),
            not_a_prompt: false,
        };
        let state = crate::state::LiveState {
            prompts: BTreeMap::from([("p".to_string(), live.clone())]),
            ..Default::default()
        };
        let text = crate::manifest::export::render(&state);
        let desired = crate::manifest::load(&[crate::manifest::SourceFile {
            path: "export.yaml".into(),
            contents: text.clone().into_bytes(),
        }])
        .unwrap_or_else(|d| panic!("the export validates: {d:?}\n{text}"));
        let plans = plan_prompts(&desired.prompts, &state.prompts);
        assert!(plans.is_empty(), "{plans:?}\n{text}");
        assert_eq!(desired.prompts["p"].versions.len(), 3, "each template once");
    }

    #[test]
    fn the_text_plan_shows_the_diff_under_the_alias_move() {
        let d = desired(
            &[("v1", "a\nb\n"), ("v2", "a\nc\n")],
            &[("production", "v2")],
        );
        let live = LivePrompt {
            versions: BTreeMap::from([(1, "a\nb\n".to_string())]),
            aliases: BTreeMap::from([("production".to_string(), 1)]),
            not_a_prompt: false,
        };
        let plan = crate::plan::Plan {
            prompts: plan_prompts(
                &BTreeMap::from([("summarize".to_string(), d)]),
                &BTreeMap::from([("summarize".to_string(), live)]),
            ),
            ..crate::plan::Plan::empty()
        };
        insta::assert_snapshot!(crate::plan::render::text(&plan, false), @r"
        prompt summarize
          + register version (v2): template of 2 lines, 4 characters
          ~ alias production: version 1 -> new version (v2)
              --- production (live)
              +++ production (declared)
              @@ -1,2 +1,2 @@
               a
              -b
              +c

        Plan: 1 to register, 1 to move, 0 to archive, 0 to delete, 0 other changes.
        ");
    }

    #[test]
    fn a_name_held_by_a_model_is_an_error() {
        let d = desired(&[("v1", "x")], &[]);
        let live = LivePrompt {
            not_a_prompt: true,
            ..LivePrompt::default()
        };
        let plans = plan_prompts(
            &BTreeMap::from([("summarize".to_string(), d)]),
            &BTreeMap::from([("summarize".to_string(), live)]),
        );
        assert!(plans[0].actions.is_empty());
        assert!(plans[0].errors[0].contains("is a registered model, not a prompt"));
    }
}

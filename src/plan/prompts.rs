//! The plan of one prompt (`kind: Prompt`): which templates to register and
//! which aliases to move, with a unified diff of the template text when an
//! alias moves. Pure, like the rest of `plan/`; `plan` and `apply` do not
//! call it yet (README, "Prompts as code").

use serde::{Deserialize, Serialize};

use crate::manifest::DesiredPrompt;
pub use crate::state::LivePrompt;

/// One step for a prompt, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PromptAction {
    /// Create the prompt (the registered model with MLflow's prompt tag).
    CreatePrompt,
    /// Register a version with this template; no live version has it.
    RegisterVersion { handle: String },
    /// Point `alias` at the version holding `handle`'s template.
    SetAlias {
        alias: String,
        handle: String,
        /// The version it held, if any.
        from: Option<u64>,
        /// Unified diff from the template it held to the declared one
        /// (empty when it held none).
        diff: String,
    },
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
    let holder = |text: &str| {
        live.versions
            .iter()
            .rev()
            .find(|(_, t)| t.as_str() == text)
            .map(|(n, _)| *n)
    };
    let mut registered: Vec<&str> = Vec::new();
    for (handle, v) in &desired.versions {
        let text = v.template.text().unwrap_or_default();
        if holder(text).is_none() && !registered.contains(&text) {
            registered.push(text);
            actions.push(PromptAction::RegisterVersion {
                handle: handle.clone(),
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
            handle: handle.clone(),
            from,
            diff,
        });
    }
    actions
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
    use crate::manifest::{DesiredPromptVersion, Origin, Template};
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
        };
        let actions = plan_prompt(&d, Some(&live));
        assert_eq!(
            actions[0],
            PromptAction::RegisterVersion {
                handle: "v2".into()
            }
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
}

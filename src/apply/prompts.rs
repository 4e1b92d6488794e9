//! Applying a prompt's plan: create the prompt, register the templates no
//! version holds, move the aliases. The prompt is read again before its
//! first write (read-check-write): a template someone registered meanwhile
//! is used, never registered twice, and an alias moved since the plan is a
//! conflict, not a lost update. A failed action skips the rest of its
//! prompt.

use std::collections::{BTreeMap, BTreeSet};

use super::model::log_outcome;
use super::{ActionResult, ApplyOptions, Outcome};
use crate::plan::describe;
use crate::plan::prompts::{PromptAction, PromptPlan};
use crate::registry::{NewPromptVersion, Registry, RegistryError};
use crate::state::LivePrompt;

/// Applies one prompt's actions in order; one result per action.
pub async fn apply_prompt<R: Registry>(
    reg: &R,
    pp: &PromptPlan,
    opts: &ApplyOptions,
) -> Vec<ActionResult> {
    let cancelled = opts.cancel.as_ref().is_some_and(|c| c.is_cancelled());
    // A prompt the plan creates needs no read first: its create is the
    // check (an existing name answers RESOURCE_ALREADY_EXISTS: a conflict).
    let creates = matches!(pp.actions.first(), Some(PromptAction::CreatePrompt));
    let mut step = Step {
        live: creates.then_some(None),
        made: BTreeMap::new(),
        stop: cancelled.then(|| "shutting down".to_string()),
    };
    let mut results = Vec::with_capacity(pp.actions.len());
    for action in &pp.actions {
        let outcome = match (&step.stop, opts.may_write()) {
            (Some(why), _) => Outcome::Skipped(why.clone()),
            (None, Err(lost)) => Outcome::Skipped(lost),
            (None, Ok(())) => match step.run(reg, &pp.prompt, action).await {
                // Under a lease lost meanwhile, the conflict is that loss.
                Outcome::Conflict(why) => match opts.lease_held_still().await {
                    Ok(()) => Outcome::Conflict(why),
                    Err(lost) => Outcome::Skipped(lost),
                },
                other => other,
            },
        };
        if matches!(outcome, Outcome::Failed(_) | Outcome::Conflict(_)) {
            step.stop = Some("an earlier action of this prompt did not apply".into());
        }
        let description = describe::prompt_action(action);
        log_outcome(&pp.prompt, &description, &outcome);
        results.push(ActionResult {
            object: pp.prompt.clone(),
            action: description,
            kind: action.kind(),
            outcome,
        });
    }
    results
}

/// What one prompt's apply knows so far.
struct Step {
    /// The prompt as read before the first write (`Some(None)`: absent),
    /// updated with each write.
    live: Option<Option<LivePrompt>>,
    /// Handle -> the version holding its template.
    made: BTreeMap<String, u64>,
    /// Why the remaining actions are skipped.
    stop: Option<String>,
}

impl Step {
    async fn run<R: Registry>(&mut self, reg: &R, name: &str, action: &PromptAction) -> Outcome {
        if self.live.is_none() {
            match read(reg, name).await {
                Ok(p) => self.live = Some(p),
                Err(e) => return Outcome::Failed(format!("could not read the prompt again: {e}")),
            }
        }
        let live = self.live.as_mut().expect("read");
        if live.as_ref().is_some_and(|p| p.not_a_prompt) {
            return Outcome::Conflict(format!(
                "\"{name}\" is now a registered model, not a prompt"
            ));
        }
        match action {
            PromptAction::CreatePrompt => {
                if live.is_some() {
                    return Outcome::Conflict("the prompt now exists, the plan saw none".into());
                }
                match reg.create_prompt(name).await {
                    Ok(()) => {
                        *live = Some(LivePrompt::default());
                        Outcome::Applied
                    }
                    Err(RegistryError::AlreadyExists(_)) => Outcome::Conflict(
                        "the name now exists in the registry, the plan saw none".into(),
                    ),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            PromptAction::RegisterVersion {
                handle,
                template,
                commit_message,
                tags,
            } => {
                let new = NewPromptVersion {
                    template: template.clone(),
                    commit_message: commit_message.clone(),
                    tags: tags.clone(),
                };
                self.register(reg, name, handle, &new).await
            }
            PromptAction::SetAlias {
                alias,
                handle,
                version,
                from,
                ..
            } => {
                let now = live.as_ref().and_then(|p| p.aliases.get(alias).copied());
                if now != *from {
                    return Outcome::Conflict(format!(
                        "alias {alias} points at {}, the plan saw {}",
                        target(now),
                        target(*from)
                    ));
                }
                let Some(n) = version.or_else(|| self.made.get(handle).copied()) else {
                    return Outcome::Failed(format!("no version holds {handle}'s template"));
                };
                match reg.set_prompt_alias(name, alias, n).await {
                    Ok(()) => {
                        if let Some(p) = self.live.as_mut().and_then(Option::as_mut) {
                            p.aliases.insert(alias.clone(), n);
                        }
                        Outcome::Applied
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
        }
    }

    /// Registers `new` unless a version holds its template already; after
    /// an answer lost on the way (outcome unknown), reads again rather
    /// than send it twice.
    async fn register<R: Registry>(
        &mut self,
        reg: &R,
        name: &str,
        handle: &str,
        new: &NewPromptVersion,
    ) -> Outcome {
        let held = self
            .live
            .as_ref()
            .and_then(Option::as_ref)
            .and_then(|p| p.holder(&new.template));
        if let Some(n) = held {
            self.made.insert(handle.to_string(), n);
            return Outcome::Skipped(format!(
                "the template is registered already, as version {n}"
            ));
        }
        let result = match reg.create_prompt_version(name, new).await {
            Err(RegistryError::Ambiguous(m)) => match read(reg, name).await {
                Ok(Some(p)) => p.holder(&new.template).ok_or(RegistryError::Ambiguous(m)),
                Ok(None) => Err(RegistryError::Ambiguous(m)),
                Err(e) => Err(e),
            },
            other => other,
        };
        match result {
            Ok(n) => {
                self.made.insert(handle.to_string(), n);
                if let Some(p) = self.live.as_mut().and_then(Option::as_mut) {
                    p.versions.insert(n, new.template.clone());
                }
                Outcome::Applied
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

async fn read<R: Registry>(reg: &R, name: &str) -> Result<Option<LivePrompt>, RegistryError> {
    let names = BTreeSet::from([name.to_string()]);
    Ok(reg.read_prompts(&names).await?.remove(name))
}

fn target(v: Option<u64>) -> String {
    v.map_or_else(|| "no version".to_string(), |n| format!("version {n}"))
}

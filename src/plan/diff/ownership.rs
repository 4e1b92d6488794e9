//! The ownership inventory: which aliases and stages modelsync manages on a
//! model, recorded in the model tag `modelsync.managed` as compact JSON
//! `{"aliases":[...],"stages":[...]}` (like Flux's inventory).
//!
//! The inventory lists what modelsync itself *set*: a target enters it when
//! a plan moves a version into it, not merely because a manifest declares it
//! (so adopting a registry with `export` plans no change). Prune only ever
//! removes what this inventory lists. Without prune, entries the manifests no
//! longer declare stay listed, so that a later `--prune` still knows
//! modelsync set them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::manifest::{DesiredModel, GateTarget};
use crate::plan::Action;
use crate::state::tags;
use crate::state::{LiveModel, Stage};

/// Aliases and stages modelsync manages on one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub aliases: BTreeSet<String>,
    pub stages: BTreeSet<Stage>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    stages: Vec<String>,
}

impl Inventory {
    /// The inventory recorded on `model`; empty when absent or unreadable
    /// (then modelsync owns nothing there and prunes nothing).
    pub fn read(model: Option<&LiveModel>) -> Inventory {
        model
            .and_then(|m| m.tags.get(tags::MANAGED))
            .map(|raw| Inventory::decode(raw))
            .unwrap_or_default()
    }

    /// Parses a tag value; empty when unreadable.
    pub fn decode(raw: &str) -> Inventory {
        let Ok(wire) = serde_json::from_str::<Wire>(raw) else {
            return Inventory::default();
        };
        Inventory {
            aliases: wire.aliases.into_iter().collect(),
            stages: wire.stages.iter().filter_map(|s| Stage::parse(s)).collect(),
        }
    }

    /// The inventory a run actually earned: `planned` (a tag value) minus
    /// the targets whose move did not take effect (`not_set`), unless
    /// `before` (the value already recorded) owned them. The ownership
    /// record only ever holds what modelsync did.
    pub fn earned(planned: &str, before: Option<&str>, not_set: &BTreeSet<GateTarget>) -> String {
        let before = before.map(Inventory::decode).unwrap_or_default();
        let mut inv = Inventory::decode(planned);
        inv.aliases.retain(|a| {
            !not_set.contains(&GateTarget::Alias(a.clone())) || before.aliases.contains(a)
        });
        inv.stages
            .retain(|s| !not_set.contains(&GateTarget::Stage(*s)) || before.stages.contains(s));
        inv.encode()
    }

    /// What the model's inventory should be after this plan: what it owned
    /// before (with prune: only what is still declared, the rest is being
    /// pruned), plus what this plan sets (`moved`).
    pub fn next(dm: &DesiredModel, old: &Inventory, moved: Inventory, prune: bool) -> Inventory {
        let mut inv = moved;
        inv.aliases.extend(
            old.aliases
                .iter()
                .filter(|a| !prune || dm.aliases.contains_key(*a))
                .cloned(),
        );
        inv.stages.extend(
            old.stages
                .iter()
                .filter(|s| !prune || dm.stages.contains_key(*s))
                .copied(),
        );
        inv
    }

    /// The targets that `actions` set (gate-blocked moves excepted).
    pub fn moved_by(actions: &[Action]) -> Inventory {
        let mut inv = Inventory::default();
        for action in actions.iter().filter(|a| !a.is_blocked()) {
            match action {
                Action::TransitionStage { to, .. } => {
                    inv.stages.insert(*to);
                }
                Action::SetAlias { alias, .. } => {
                    inv.aliases.insert(alias.clone());
                }
                _ => {}
            }
        }
        inv
    }

    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty() && self.stages.is_empty()
    }

    /// The tag value: compact JSON, aliases sorted by name, stages in
    /// MLflow's order.
    pub fn encode(&self) -> String {
        let wire = Wire {
            aliases: self.aliases.iter().cloned().collect(),
            stages: self.stages.iter().map(|s| s.as_str().to_string()).collect(),
        };
        serde_json::to_string(&wire).expect("an inventory of strings serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage names and `@alias`es.
    fn set(items: &[&str]) -> BTreeSet<GateTarget> {
        items
            .iter()
            .map(|s| match s.strip_prefix('@') {
                Some(alias) => GateTarget::Alias(alias.to_string()),
                None => GateTarget::Stage(Stage::parse(s).expect("a stage")),
            })
            .collect()
    }

    const PLANNED: &str =
        r#"{"aliases":["champion","challenger"],"stages":["Staging","Production"]}"#;

    #[test]
    fn earned_is_what_was_planned_when_every_move_took_effect() {
        let all = Inventory::decode(PLANNED).encode();
        assert_eq!(Inventory::earned(PLANNED, None, &set(&[])), all);
    }

    #[test]
    fn earned_leaves_out_moves_that_did_not_happen() {
        let earned = Inventory::earned(PLANNED, None, &set(&["Production", "@champion"]));
        assert_eq!(earned, r#"{"aliases":["challenger"],"stages":["Staging"]}"#);
    }

    #[test]
    fn earned_keeps_what_was_owned_before_even_if_not_moved_now() {
        let before = r#"{"aliases":["champion"],"stages":[]}"#;
        let earned = Inventory::earned(PLANNED, Some(before), &set(&["Production", "@champion"]));
        assert_eq!(
            earned,
            r#"{"aliases":["challenger","champion"],"stages":["Staging"]}"#
        );
    }

    #[test]
    fn earned_never_adds_what_was_not_planned() {
        let planned = r#"{"aliases":[],"stages":["Staging"]}"#;
        let before = r#"{"aliases":["champion"],"stages":["Production"]}"#;
        let earned = Inventory::earned(planned, Some(before), &set(&["Staging"]));
        assert_eq!(earned, r#"{"aliases":[],"stages":[]}"#);
    }

    #[test]
    fn an_alias_named_like_a_stage_is_not_that_stage() {
        let planned = r#"{"aliases":["Staging"],"stages":["Staging"]}"#;
        let earned = Inventory::earned(planned, None, &set(&["@Staging"]));
        assert_eq!(earned, r#"{"aliases":[],"stages":["Staging"]}"#);
        let earned = Inventory::earned(planned, None, &set(&["Staging"]));
        assert_eq!(earned, r#"{"aliases":["Staging"],"stages":[]}"#);
    }

    #[test]
    fn earned_of_an_unreadable_record_is_empty() {
        assert_eq!(
            Inventory::earned("not json", None, &set(&[])),
            Inventory::default().encode()
        );
    }
}

//! What a saved plan observed of the permissions its policies cover
//! (`kind: AccessPolicy`): every covered model's grants and ownership
//! record, the grants on every model, the server's default permission. A
//! grant someone changes by hand before `apply --plan` makes the plan
//! stale.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::DesiredState;
use crate::state::LiveState;
use crate::state::access::{Grants, Level, LiveAccess, ModelAccess};

/// The permissions as observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedAccess {
    /// Every covered model (also one the plan creates: no grants yet).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelAccess>,
    /// Grants on every registered model.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wildcard: Grants,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_permission: Option<Level>,
}

impl ObservedAccess {
    /// What `live` holds for the models `desired`'s policies cover; `None`
    /// when permissions were not read.
    pub fn capture(desired: &DesiredState, live: &LiveState) -> Option<ObservedAccess> {
        let access = live.access.as_ref()?;
        let covered = crate::plan::access::covered(desired, live);
        Some(ObservedAccess {
            models: covered
                .into_iter()
                .map(|n| {
                    let m = access.models.get(&n).cloned().unwrap_or_default();
                    (n, m)
                })
                .collect(),
            wildcard: access.wildcard.clone(),
            default_permission: access.default_permission,
        })
    }

    /// Every observed value `now` no longer shows, one line each.
    pub fn differences(&self, now: Option<&LiveAccess>) -> Vec<String> {
        let Some(now) = now else {
            return vec!["permissions: were read when the plan was made, not now".to_string()];
        };
        let mut lines = Vec::new();
        for (name, seen) in &self.models {
            let empty = ModelAccess::default();
            let cur = now.models.get(name).unwrap_or(&empty);
            let what = format!("permissions on {name}");
            lines.extend(grant_differences(&what, &seen.grants, &cur.grants));
            if seen.record != cur.record {
                lines.push(format!("{what}: modelsync's ownership record changed"));
            }
        }
        lines.extend(grant_differences(
            "permissions on every model",
            &self.wildcard,
            &now.wildcard,
        ));
        if self.default_permission != now.default_permission {
            lines.push(format!(
                "the default permission was {}, now {}",
                shown(self.default_permission),
                shown(now.default_permission)
            ));
        }
        lines
    }
}

fn grant_differences(what: &str, seen: &Grants, now: &Grants) -> Vec<String> {
    let keys: BTreeSet<_> = seen.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|p| seen.get(*p) != now.get(*p))
        .map(|p| {
            format!(
                "{what}: {p} held {}, now {}",
                shown(seen.get(p).copied()),
                shown(now.get(p).copied())
            )
        })
        .collect()
}

fn shown(level: Option<Level>) -> String {
    level.map_or_else(|| "no grant".to_string(), |l| l.to_string())
}

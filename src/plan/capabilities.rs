//! What the manifests need of the registry that it may lack: checked once
//! per run against the probed [`Capabilities`], before anything is planned
//! or written. Pure.

use crate::manifest::{DesiredState, Diagnostic, Gate};
use crate::state::capabilities::Capabilities;

/// One diagnostic per declaration the registry cannot serve, at the
/// declaration (file:line:column), sorted; empty when it can serve all.
pub fn missing(desired: &DesiredState, caps: &Capabilities) -> Vec<Diagnostic> {
    let server = &caps.server;
    let mut out = Vec::new();
    if !caps.prompts {
        let why = if caps.permission_api == crate::state::capabilities::PermissionApi::None {
            format!("{server} has no prompt registry; prompts need an MLflow 3 server")
        } else {
            format!("{server} has no prompt registry; prompts need MLflow 3.0 or later")
        };
        out.extend(desired.prompts.values().map(|p| Diagnostic {
            origin: p.origin.clone(),
            message: format!("prompt \"{}\": {why}", p.name),
        }));
    }
    out.extend(super::access::missing(desired, caps));
    for m in desired.models.values() {
        if !caps.aliases && !m.aliases.is_empty() {
            let names: Vec<&str> = m.aliases.keys().map(String::as_str).collect();
            out.push(Diagnostic {
                origin: m.origin.clone(),
                message: format!(
                    "model \"{}\" declares aliases ({}); {server} has no registered-model aliases (MLflow 2.3 or later)",
                    m.name,
                    names.join(", ")
                ),
            });
        }
        let by_dataset = m.gates.values().flatten().any(|g| {
            matches!(
                g,
                Gate::Metric {
                    dataset: Some(_),
                    ..
                } | Gate::Beats {
                    dataset: Some(_),
                    ..
                }
            )
        });
        if !caps.logged_models && by_dataset {
            out.push(Diagnostic {
                origin: m.origin.clone(),
                message: format!(
                    "model \"{}\": a gate narrowed by dataset reads logged-model metrics, which {server} does not have (MLflow 3)",
                    m.name
                ),
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{DesiredModel, DesiredPrompt, Origin};
    use crate::state::capabilities::MlflowVersion;
    use std::collections::BTreeMap;

    fn desired() -> DesiredState {
        let mut d = DesiredState::default();
        d.prompts.insert(
            "summarize".into(),
            DesiredPrompt {
                name: "summarize".into(),
                origin: Origin::default(),
                versions: BTreeMap::new(),
                aliases: BTreeMap::new(),
            },
        );
        d.models.insert(
            "churn".into(),
            DesiredModel {
                name: "churn".into(),
                origin: Origin::default(),
                description: None,
                tags: BTreeMap::new(),
                versions: BTreeMap::new(),
                stages: Default::default(),
                aliases: [("champion".into(), "v1".into())].into_iter().collect(),
                gates: BTreeMap::new(),
                verify: BTreeMap::new(),
            },
        );
        d
    }

    #[test]
    fn prompts_need_mlflow_3() {
        let d = desired();
        assert!(missing(&d, &MlflowVersion(3, 0, 0).capabilities()).is_empty());
        let two = missing(&d, &MlflowVersion(2, 22, 5).capabilities());
        assert_eq!(two.len(), 1, "{two:?}");
        assert!(
            two[0]
                .message
                .contains("MLflow 2.22.5 has no prompt registry")
        );
        let embedded = missing(&d, &Capabilities::embedded());
        assert!(
            embedded[0]
                .message
                .contains("the embedded registry has no prompt registry")
        );
    }

    #[test]
    fn aliases_need_mlflow_2_3() {
        let mut d = desired();
        d.prompts.clear();
        let old = missing(&d, &MlflowVersion(2, 2, 1).capabilities());
        assert_eq!(old.len(), 1);
        assert!(
            old[0].message.contains("declares aliases (champion)"),
            "{old:?}"
        );
    }
}

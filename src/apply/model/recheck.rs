//! A move's gates evaluated again just before it, against a fresh read of
//! the model (its approval tags) and of the evidence they weigh (the
//! candidate's run and logged model, and the holder of every alias a
//! `beats` gate names): a gate that no longer passes blocks the move, and
//! the model goes on; one that passes names the approvers it counted.

use super::{ModelRun, StepError};
use crate::manifest::{Gate, GateTarget};
use crate::plan::{GateStatus, describe, gates};
use crate::registry::evidence::read_evidence;
use crate::registry::{Registry, RegistryError};
use crate::state::{LiveState, LiveVersion};

impl<R: Registry> ModelRun<'_, R> {
    /// Evaluates the gates of moving `version` into `target` again: the
    /// principals whose approvals counted, or `Err(StepError::Blocked)`
    /// with the failing gates when one no longer passes.
    pub(super) async fn recheck_gates(
        &self,
        target: &GateTarget,
        version: u64,
    ) -> Result<Vec<String>, StepError> {
        let Some(gates) = self.opts.gates.get(self.model).and_then(|g| g.get(target)) else {
            return Ok(Vec::new());
        };
        let model = self.reg.get_model(self.model).await?.ok_or_else(|| {
            StepError::Registry(RegistryError::NotFound(format!("model {:?}", self.model)))
        })?;
        let candidate = model.versions.get(&version);
        let mut evidence: Vec<&LiveVersion> = candidate.into_iter().collect();
        for gate in gates {
            if let Gate::Beats { alias, .. } = gate
                && let Some(holder) = model.aliases.get(alias).and_then(|n| model.versions.get(n))
            {
                evidence.push(holder);
            }
        }
        let run_ids: Vec<String> = evidence.iter().map(|v| v.run_id.clone()).collect();
        let model_ids: Vec<String> = evidence.iter().map(|v| v.model_id.clone()).collect();
        let mut live = read_evidence(self.reg, &run_ids, &model_ids).await?;
        if gates.contains(&Gate::DigestUnchanged)
            && let Some(v) = candidate
        {
            self.read_bytes(v, &mut live).await?;
        }
        let registry = self.reg.uri();
        let env = gates::Env {
            now_ms: self.opts.now_ms,
            registry: &registry,
            approvals: &self.opts.approvals,
        };
        let checks = gates::evaluate(
            gates,
            &gates::Candidate {
                model: self.model,
                target,
                live: candidate,
                run_id: candidate
                    .map(|v| v.run_id.as_str())
                    .filter(|r| !r.is_empty()),
                model_id: candidate
                    .map(|v| v.model_id.as_str())
                    .filter(|m| !m.is_empty()),
                pinned: None,
            },
            Some(&model),
            &live,
            &env,
        );
        if checks.iter().all(|c| c.status != GateStatus::Blocked) {
            return Ok(gates::approvers(&checks));
        }
        Err(StepError::Blocked(format!(
            "gate no longer passes just before the move: {}",
            describe::blocked_gates(&checks)
        )))
    }

    /// The bytes behind `v`, read again for a `digest: unchanged` gate's
    /// re-check just before the move (files hashed earlier in this pass,
    /// unchanged in size and stamp, are not read again).
    async fn read_bytes(&self, v: &LiveVersion, live: &mut LiveState) -> Result<(), StepError> {
        let tree = self.reg.version_tree(self.model, v).await?;
        live.version_trees
            .entry(self.model.to_string())
            .or_default()
            .insert(v.version, tree.map(|t| t.tree));
        Ok(())
    }
}
